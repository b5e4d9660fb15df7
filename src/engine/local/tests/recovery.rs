//! Crash recovery of a collection's log: a torn last record is cut off on open and loses only its
//! own call, and damage followed by good records refuses the open.

// Tests unwrap freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn a_crash_in_the_middle_of_a_record_loses_only_that_call() {
    let mut f = Fixture::new();
    let images: Vec<Img> = (0..4)
        .map(|i| one_face(&format!("i{i}"), axis(i)))
        .collect();
    let done: Vec<IndexFacesResult> = images[..3]
        .iter()
        .enumerate()
        .map(|(i, img)| f.index(img, &format!("i{i}.jpg")))
        .collect();
    let whole = std::fs::metadata(f.log_path()).unwrap().len();
    f.index(&images[3], "i3.jpg");
    let with_fourth = std::fs::metadata(f.log_path()).unwrap().len();
    // The process dies while writing the fourth record: half of it reached the disk.
    drop(std::mem::replace(&mut f.engine, open_engine(&f.dir)));
    let log = std::fs::OpenOptions::new()
        .write(true)
        .open(f.log_path())
        .unwrap();
    log.set_len(whole + (with_fourth - whole) / 2).unwrap();
    drop(log);
    f.reopen();
    assert_eq!(f.count(), 3);
    assert_eq!(std::fs::metadata(f.log_path()).unwrap().len(), whole);
    // Re-running the whole batch adds the lost image once and nothing else.
    for (i, img) in images.iter().enumerate() {
        let r = f.index(img, &format!("i{i}.jpg"));
        if let Some(earlier) = done.get(i) {
            assert_eq!(&r, earlier);
        }
    }
    assert_eq!(f.count(), 4);
    assert_eq!(f.all_faces(10).len(), 4);
}

#[test]
fn a_zero_filled_tail_is_cut_and_damage_before_good_records_is_refused() {
    let mut f = Fixture::new();
    f.index(&one_face("a", axis(0)), "a.jpg");
    let len = std::fs::metadata(f.log_path()).unwrap().len();
    // A file system may extend a file whose new blocks were never written.
    let log = std::fs::OpenOptions::new()
        .write(true)
        .open(f.log_path())
        .unwrap();
    log.set_len(len + 4096).unwrap();
    drop(log);
    f.reopen();
    assert_eq!(f.count(), 1);
    assert_eq!(std::fs::metadata(f.log_path()).unwrap().len(), len);

    f.index(&one_face("b", axis(1)), "b.jpg");
    let mut bytes = std::fs::read(f.log_path()).unwrap();
    bytes[20] ^= 0xff; // inside the first record, which a later good record follows
    std::fs::write(f.log_path(), &bytes).unwrap();
    f.reopen();
    let err = f.engine.describe_collection(&f.coll).unwrap_err();
    let chain = crate::errors::chain(&err);
    assert!(chain.contains("corrupt at byte 8"), "{chain}");
}
