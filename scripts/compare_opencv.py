"""Side-by-side check of facegraph's local engine against OpenCV, the reference implementation of
the same two models (YuNet via cv2.FaceDetectorYN, SFace via cv2.FaceRecognizerSF), on the same
photos and model files.

Reads the faces that `facegraph bench-engine --json-out` wrote, runs OpenCV on the same photos with
two threads, and prints: images per second for detect + embed (imread included, as facegraph's
figure includes decoding), the cosine between facegraph's and OpenCV's embedding of each face
(faces matched by box IoU), and with --labels, detection recall, gender accuracy and the genuine and
impostor cosine distributions that docs/local-engine.md's calibration comes from.

Run it in a virtual environment with the versions it was checked with:
    python3 -m venv /tmp/cv && /tmp/cv/bin/pip install opencv-python-headless==4.14.0.94 numpy==2.4.6
scripts/compare-opencv runs facegraph and this script in one go.
"""

import argparse
import csv
import itertools
import json
import math
import os
import statistics
import sys
import time

import cv2
import numpy as np


def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def opencv_faces(path, detector, recognizer, max_side):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        return None
    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(w, h))
    small = img
    if scale < 1.0:
        # Half away from zero, as facegraph rounds (Python's round() rounds half to even).
        sw, sh = max(1, math.floor(w * scale + 0.5)), max(1, math.floor(h * scale + 0.5))
        small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    detector.setInputSize((sw, sh))
    _, faces = detector.detect(small)
    out = []
    for row in faces if faces is not None else []:
        row = row.copy()
        row[0:14:2] *= w / sw
        row[1:14:2] *= h / sh
        aligned = recognizer.alignCrop(img, row)
        feat = recognizer.feature(aligned).flatten()
        feat = feat / np.linalg.norm(feat)
        out.append({"bbox": [float(v) for v in row[:4]], "score": float(row[14]), "embedding": feat})
    return out


def labelled_faces(labels_path, images):
    """(file, identity, gender, face) for each labelled face, faces matched left to right among the
    largest detections."""
    by_file = {img["file"]: img for img in images}
    rows = []
    expected = 0
    found = 0
    with open(labels_path, newline="") as f:
        for row in csv.DictReader(f):
            ids = row["identity"].split(";")
            genders = row["gender"].split(";")
            expected += len(ids)
            img = by_file.get(row["file"])
            faces = img["faces"] if img else []
            largest = sorted(faces, key=lambda fc: -fc["bbox"][2] * fc["bbox"][3])[: len(ids)]
            found += len(largest)
            ordered = sorted(largest, key=lambda fc: fc["bbox"][0] + fc["bbox"][2] / 2)
            if len(ordered) == len(ids):
                for face, ident, gender in zip(ordered, ids, genders):
                    rows.append((row["file"], ident, gender, face))
    return rows, expected, found


def describe(values):
    v = sorted(values)
    q = lambda p: v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]
    return (f"n={len(v)} min={v[0]:.3f} p5={q(0.05):.3f} p50={q(0.5):.3f} "
            f"p95={q(0.95):.3f} max={v[-1]:.3f} mean={statistics.mean(v):.3f} sd={statistics.pstdev(v):.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", required=True)
    ap.add_argument("--models", required=True, help="facegraph's model cache directory")
    ap.add_argument("--facegraph-json", required=True)
    ap.add_argument("--labels")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--score-threshold", type=float, default=0.8)
    ap.add_argument("--max-side", type=int, default=640)
    args = ap.parse_args()

    cv2.setNumThreads(2)
    detector = cv2.FaceDetectorYN.create(
        os.path.join(args.models, "face_detection_yunet_2023mar_int8bq.onnx"), "", (320, 320),
        args.score_threshold, 0.3, 5000)
    recognizer = cv2.FaceRecognizerSF.create(
        os.path.join(args.models, "face_recognition_sface_2021dec_int8bq.onnx"), "")
    with open(args.facegraph_json) as f:
        ours = json.load(f)
    files = [img["file"] for img in ours]
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads, {len(files)} photos")
    results = {}
    for p in range(1, args.passes + 1):
        t = time.perf_counter()
        nfaces = 0
        for name in files:
            faces = opencv_faces(os.path.join(args.photos, name), detector, recognizer, args.max_side)
            results[name] = faces or []
            nfaces += len(faces or [])
        dt = time.perf_counter() - t
        print(f"opencv pass {p}: detect+embed {len(files) / dt:.2f} images/s ({nfaces} faces)")

    cosines = []
    unmatched = 0
    worst = []
    for img in ours:
        theirs = results.get(img["file"], [])
        for face in img["faces"]:
            best = max(theirs, key=lambda o: iou(o["bbox"], face["bbox"]), default=None)
            if best is None or iou(best["bbox"], face["bbox"]) < 0.5:
                unmatched += 1
                continue
            c = float(np.dot(np.asarray(face["embedding"], dtype=np.float32), best["embedding"]))
            cosines.append(c)
            worst.append((c, img["file"], round(iou(best["bbox"], face["bbox"]), 3)))
    theirs_total = sum(len(v) for v in results.values())
    ours_total = sum(len(i["faces"]) for i in ours)
    print(f"faces: facegraph {ours_total}, opencv {theirs_total}, facegraph faces without an opencv match {unmatched}")
    if cosines:
        print(f"cosine facegraph vs opencv embedding: {describe(cosines)}; "
              f"{sum(c >= 0.99 for c in cosines)}/{len(cosines)} >= 0.99")
        for c, name, i in sorted(worst)[:5]:
            print(f"  lowest: {c:.4f} {name} (box IoU {i})")

    if args.labels:
        for who, images in (("facegraph", ours), ("opencv", [
                {"file": k, "faces": [{"bbox": f["bbox"], "embedding": f["embedding"].tolist()} for f in v]}
                for k, v in results.items()])):
            rows, expected, found = labelled_faces(args.labels, images)
            print(f"{who}: detection recall {found}/{expected} = {found / expected:.3f}")
        rows, _, _ = labelled_faces(args.labels, ours)
        graded = [(g, f.get("gender")) for _, _, g, f in rows if f.get("gender")]
        right = sum(1 for g, p in graded if g.lower() == p.lower())
        print(f"facegraph gender accuracy {right}/{len(graded)} = {right / max(1, len(graded)):.3f}")
        genuine, impostor = [], []
        for (fa, ia, _, a), (fb, ib, _, b) in itertools.combinations(rows, 2):
            c = float(np.dot(a["embedding"], b["embedding"]))
            (genuine if ia == ib else impostor).append(c)
        print(f"genuine pair cosines:  {describe(genuine)}")
        print(f"impostor pair cosines: {describe(impostor)}")
        pairs = [(c, True) for c in genuine] + [(c, False) for c in impostor]
        cands = sorted(set(c for c, _ in pairs))
        best = max(((t, sum((c >= t) == s for c, s in pairs) / len(pairs)) for t in
                    [(x + y) / 2 for x, y in zip(cands, cands[1:])]), key=lambda x: x[1])
        print(f"best cosine threshold {best[0]:.3f}: pair accuracy {best[1]:.4f} over {len(pairs)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
