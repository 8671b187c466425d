//! Things in a live tree that are not plain files, and files that change while they are read.

mod common;

use std::fs;
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use nix::sys::stat::Mode;
use nix::unistd::mkfifo;
use sysc_filetree::WriteOptions;

#[test]
fn fifos_and_sockets_are_skipped_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("top");
    fs::create_dir_all(src.join("sub")).unwrap();
    mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
    let _listener = UnixListener::bind(src.join("sub/socket")).unwrap();
    fs::write(src.join("file"), b"content").unwrap();

    // Opening the FIFO would block forever; give the walk a generous deadline instead.
    let (done, result) = mpsc::channel();
    let walk_src = src.clone();
    std::thread::spawn(move || {
        let _ = done.send(archive(&walk_src, "top", &WriteOptions::default()));
    });
    let (data, summary) = result
        .recv_timeout(Duration::from_secs(30))
        .expect("write_tree blocked");
    assert_eq!(
        summary.skipped,
        vec!["top/fifo".to_string(), "top/sub/socket".to_string()]
    );
    assert_eq!((summary.files, summary.dirs), (1, 2));

    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    unpack(&dest, &data, true).unwrap();
    let names: Vec<_> = snapshot(&dest).into_keys().collect();
    assert_eq!(names, vec![b"".to_vec(), b"file".to_vec(), b"sub".to_vec()]);
}

#[test]
fn file_changing_size_while_read_still_makes_a_well_formed_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("top");
    fs::create_dir(&src).unwrap();
    let path = src.join("changing");
    fs::write(&path, vec![1u8; 16 << 20]).unwrap();
    fs::write(src.join("zz-after"), b"after").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let path = path.clone();
        std::thread::spawn(move || {
            let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
            let mut grow = false;
            while !stop.load(Ordering::Relaxed) {
                let len = if grow { 32 << 20 } else { 1 << 20 };
                file.set_len(len).unwrap();
                grow = !grow;
            }
        })
    };
    for _ in 0..5 {
        let (data, summary) = archive(&src, "top", &WriteOptions::default());
        let mut reader = tar::Archive::new(&data[..]);
        let mut listed = Vec::new();
        for entry in reader.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
            assert_eq!(content.len() as u64, entry.size());
            listed.push(entry.path_bytes().into_owned());
        }
        assert_eq!(
            listed,
            vec![b"top/".to_vec(), b"top/changing".to_vec(), b"top/zz-after".to_vec()]
        );
        assert_eq!(summary.files, 2);

        let dest = tempfile::tempdir().unwrap();
        unpack(dest.path(), &data, true).unwrap();
        assert_eq!(fs::read(dest.path().join("zz-after")).unwrap(), b"after");
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}
