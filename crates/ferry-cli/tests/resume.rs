//! Resumable transfers: a `ferry send` killed in the middle of a large file
//! leaves its received prefix on the receiver, and the next `ferry send`
//! continues from there; a prefix that no longer matches the file (the file
//! changed, the prefix is corrupt) is discarded and the file sent whole. A
//! receiver killed mid-file leaves a checkpoint the next one resumes from.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Server, content, ferry, run, text};

const SIZE: usize = 64 << 20;
const WAIT: Duration = Duration::from_secs(60);

/// A `ferry receive` (serving sessions until killed) into `dir`.
fn receiver(dir: &Path) -> Server {
    Server::start(&[
        "receive",
        "--listen",
        "127.0.0.1:0",
        "--dir",
        dir.to_str().unwrap(),
        "--progress",
        "off",
    ])
}

fn send_args(file: &Path, to: &Server) -> Vec<String> {
    vec![
        "send".into(),
        file.to_str().unwrap().into(),
        "--to".into(),
        to.addr.to_string(),
        "--progress".into(),
        "off".into(),
    ]
}

/// The size of the temporary file of `name` under `dir`, if there is one.
fn part_size(dir: &Path, name: &str) -> Option<u64> {
    std::fs::read_dir(dir).ok()?.find_map(|e| {
        let e = e.ok()?;
        let n = e.file_name().into_string().ok()?;
        n.starts_with(&format!(".{name}.ferry-part-"))
            .then(|| e.metadata().ok().map(|m| m.len()))
            .flatten()
    })
}

fn kept(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!(".{name}.ferry-resume")),
        dir.join(format!(".{name}.ferry-resume.meta")),
    )
}

/// Starts sending `file` and kills the sender (SIGKILL) once the receiver
/// stored a few MiB of it; waits until the receiver kept the prefix, and
/// returns the prefix's length from its record.
fn cut_transfer(file: &Path, dir: &Path, server: &Server) -> u64 {
    let name = file.file_name().unwrap().to_str().unwrap();
    let mut child = ferry()
        .args(send_args(file, server))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        if part_size(dir, name).is_some_and(|n| n >= 4 << 20) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sender ended before it could be cut"
        );
        assert!(Instant::now() < deadline, "nothing arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The receiver notices when the session times out.
    let (data, meta) = kept(dir, name);
    let deadline = Instant::now() + WAIT;
    while !meta.exists() {
        assert!(Instant::now() < deadline, "the prefix was not kept");
        std::thread::sleep(Duration::from_millis(50));
    }
    let record = std::fs::read_to_string(&meta).unwrap();
    let offset: u64 = record
        .lines()
        .find_map(|l| l.strip_prefix("offset "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(offset > 0 && offset < SIZE as u64, "{record}");
    assert!(std::fs::metadata(&data).unwrap().len() >= offset);
    assert!(!dir.join(name).exists(), "not complete: not under its name");
    offset
}

/// `resumed N bytes` and `sent M bytes` from the sender's summary; (0, _)
/// without a resume line.
fn resumed_and_sent(stdout: &str) -> Option<(u64, u64)> {
    let line = stdout.lines().find(|l| l.starts_with("resumed "))?;
    let numbers: Vec<u64> = line
        .split(['(', ')'])
        .filter_map(|part| part.strip_suffix(" bytes")?.parse().ok())
        .collect();
    Some((numbers[0], numbers[1]))
}

fn send_again(file: &Path, server: &Server) -> String {
    let args = send_args(file, server);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    stdout
}

#[test]
fn a_killed_send_is_resumed_where_the_receiver_stopped() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let file = src.path().join("big.bin");
    let body = content(SIZE, 21);
    std::fs::write(&file, &body).unwrap();
    let server = receiver(dst.path());
    let offset = cut_transfer(&file, dst.path(), &server);
    let stdout = send_again(&file, &server);
    let (resumed, sent) = resumed_and_sent(&stdout).unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(resumed, offset, "{stdout}");
    assert_eq!(resumed + sent, SIZE as u64, "{stdout}");
    assert!(sent < SIZE as u64);
    assert!(std::fs::read(dst.path().join("big.bin")).unwrap() == body);
    let (data, meta) = kept(dst.path(), "big.bin");
    assert!(!data.exists() && !meta.exists(), "the kept prefix was used");
}

#[test]
fn a_file_changed_since_the_cut_is_sent_again_from_its_first_byte() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let file = src.path().join("changing.bin");
    std::fs::write(&file, content(SIZE, 22)).unwrap();
    let server = receiver(dst.path());
    cut_transfer(&file, dst.path(), &server);
    // Same size, another beginning.
    let body = content(SIZE, 23);
    std::fs::write(&file, &body).unwrap();
    let stdout = send_again(&file, &server);
    assert_eq!(resumed_and_sent(&stdout), None, "{stdout}");
    assert!(std::fs::read(dst.path().join("changing.bin")).unwrap() == body);
    let (data, meta) = kept(dst.path(), "changing.bin");
    assert!(!data.exists() && !meta.exists());
}

#[test]
fn a_corrupt_kept_prefix_is_discarded_not_trusted() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let file = src.path().join("flip.bin");
    let body = content(SIZE, 24);
    std::fs::write(&file, &body).unwrap();
    let server = receiver(dst.path());
    cut_transfer(&file, dst.path(), &server);
    let (data, _) = kept(dst.path(), "flip.bin");
    let mut prefix = std::fs::read(&data).unwrap();
    prefix[1000] ^= 0x40;
    std::fs::write(&data, &prefix).unwrap();
    let stdout = send_again(&file, &server);
    assert_eq!(resumed_and_sent(&stdout), None, "{stdout}");
    assert!(std::fs::read(dst.path().join("flip.bin")).unwrap() == body);
}

#[test]
fn a_killed_receiver_resumes_from_its_last_checkpoint() {
    // Larger than one checkpoint interval (32 MiB), so that one is written.
    const BIG: usize = 96 << 20;
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let file = src.path().join("huge.bin");
    let body = content(BIG, 25);
    std::fs::write(&file, &body).unwrap();
    let mut first = receiver(dst.path());
    let mut sender = ferry()
        .args(send_args(&file, &first))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (_, meta) = kept(dst.path(), "huge.bin");
    let deadline = Instant::now() + WAIT;
    let checkpointed = |meta: &Path| {
        std::fs::read_to_string(meta).is_ok_and(|r| r.contains("\ndata .huge.bin.ferry-part-"))
    };
    while !checkpointed(&meta) {
        assert!(
            sender.try_wait().unwrap().is_none(),
            "the sender ended before the receiver could be cut"
        );
        assert!(Instant::now() < deadline, "no checkpoint was written");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The receiver dies where it stands: nothing runs to keep the prefix.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    sender.kill().unwrap();
    sender.wait().unwrap();
    assert!(checkpointed(&meta), "the checkpoint outlives its writer");

    let second = receiver(dst.path());
    let stdout = send_again(&file, &second);
    let (resumed, sent) = resumed_and_sent(&stdout).unwrap_or_else(|| panic!("{stdout}"));
    assert!(resumed >= 32 << 20, "{stdout}");
    assert_eq!(resumed + sent, BIG as u64, "{stdout}");
    assert!(std::fs::read(dst.path().join("huge.bin")).unwrap() == body);
    assert!(!meta.exists(), "the checkpoint was used");
    assert_eq!(
        part_size(dst.path(), "huge.bin"),
        None,
        "no temporary file left"
    );
}
