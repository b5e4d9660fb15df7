"""boto3 against a Rekognition-compatible endpoint, as an independent client.

Creates a collection, indexes the photos (largest face, every attribute), searches every face by
id and the first photo by image, lists the faces two per page with boto3's paginator, deletes a
face and a collection (a scratch one, so that the first stays for comparison), checks the answers
to a bad secret, an unknown key and an invalid collection id, and prints what it saw as one JSON
object. scripts/boto3-check installs boto3 and runs
this; tests/rekognition.rs compares the report with the local engine's own answers.
"""

import json
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def client(endpoint, key, secret):
    return boto3.client(
        "rekognition",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        # One attempt: a refusal must come back as it was answered, not after retries.
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def refusal(call):
    """The error code, HTTP status and message of a call that must fail."""
    try:
        call()
    except ClientError as e:
        return {
            "code": e.response["Error"]["Code"],
            "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
            "message": e.response["Error"].get("Message", ""),
        }
    return None


def main(argv):
    endpoint, collection, pairs = argv[0], argv[1], argv[2:]
    key = os.environ["AWS_ACCESS_KEY_ID"]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    rk = client(endpoint, key, secret)
    report = {}

    created = rk.create_collection(CollectionId=collection)
    report["create"] = {
        "status_code": created["StatusCode"],
        "face_model_version": created["FaceModelVersion"],
        "arn": created["CollectionArn"],
    }
    report["create_again"] = refusal(lambda: rk.create_collection(CollectionId=collection))

    photos = []
    report["indexed"] = {}
    for pair in pairs:
        ext, path = pair.split("=", 1)
        with open(path, "rb") as f:
            data = f.read()
        photos.append(data)
        r = rk.index_faces(
            CollectionId=collection,
            Image={"Bytes": data},
            ExternalImageId=ext,
            DetectionAttributes=["ALL"],
            MaxFaces=1,
            QualityFilter="AUTO",
        )
        report["indexed"][ext] = [
            {
                "face_id": rec["Face"]["FaceId"],
                "image_id": rec["Face"]["ImageId"],
                "external_image_id": rec["Face"].get("ExternalImageId"),
                "gender": rec["FaceDetail"].get("Gender", {}).get("Value"),
                "landmarks": len(rec["FaceDetail"].get("Landmarks", [])),
            }
            for rec in r["FaceRecords"]
        ]

    report["searches"] = {}
    for faces in report["indexed"].values():
        for face in faces:
            r = rk.search_faces(
                CollectionId=collection,
                FaceId=face["face_id"],
                FaceMatchThreshold=0,
                MaxFaces=100,
            )
            report["searches"][face["face_id"]] = [
                [m["Face"]["FaceId"], m["Similarity"]] for m in r["FaceMatches"]
            ]

    by_image = rk.search_faces_by_image(
        CollectionId=collection, Image={"Bytes": photos[0]}, FaceMatchThreshold=0, MaxFaces=100
    )
    report["by_image"] = [[m["Face"]["FaceId"], m["Similarity"]] for m in by_image["FaceMatches"]]

    pages = rk.get_paginator("list_faces").paginate(
        CollectionId=collection, PaginationConfig={"PageSize": 2}
    )
    listed, page_count = [], 0
    for page in pages:
        page_count += 1
        listed.extend(f["FaceId"] for f in page["Faces"])
    report["listed"] = {"pages": page_count, "face_ids": listed}

    report["face_count"] = rk.describe_collection(CollectionId=collection)["FaceCount"]

    # Deletions go to a scratch collection, so that the faces above stay for the comparison.
    scratch = collection + "-scratch"
    rk.create_collection(CollectionId=scratch)
    report["collections"] = [
        c for page in rk.get_paginator("list_collections").paginate() for c in page["CollectionIds"]
    ]
    face = rk.index_faces(
        CollectionId=scratch, Image={"Bytes": photos[0]}, ExternalImageId="scratch", MaxFaces=1
    )["FaceRecords"][0]["Face"]["FaceId"]
    deleted = rk.delete_faces(CollectionId=scratch, FaceIds=[face])
    report["deleted"] = {
        "asked": face,
        "deleted": deleted["DeletedFaces"],
        "unsuccessful": deleted["UnsuccessfulFaceDeletions"],
        "face_count_after": rk.describe_collection(CollectionId=scratch)["FaceCount"],
    }
    report["delete_collection"] = rk.delete_collection(CollectionId=scratch)["StatusCode"]
    report["describe_deleted"] = refusal(lambda: rk.describe_collection(CollectionId=scratch))

    report["bad_secret"] = refusal(
        lambda: client(endpoint, key, secret + "x").describe_collection(CollectionId=collection)
    )
    report["unknown_key"] = refusal(
        lambda: client(endpoint, "AKIDUNKNOWN0000", secret).describe_collection(
            CollectionId=collection
        )
    )
    report["invalid_collection_id"] = refusal(
        lambda: rk.describe_collection(CollectionId="bad id!")
    )
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
