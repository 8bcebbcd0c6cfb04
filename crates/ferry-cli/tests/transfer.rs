//! `ferry send` and `ferry receive`, driven as an operator would: a tree of
//! files on loopback and through a lossy relay, with and without keys,
//! existing files, hostile names, and the exit codes of each failure.

mod common;

use std::time::Duration;

use common::{Server, assert_same_tree, key_file, make_tree, receiver, run, text};
use ferry_cli::session::wire::{
    CLOSE_DONE, Content, EntryHeader, EntryKind, Reply, ReplyCode, trailer,
};
use ferry_relay::{LinkConfig, Relay};
use ferry_tokio::{Endpoint, EndpointConfig, EndpointExt, StreamKind};

const WAIT: Duration = Duration::from_secs(30);

fn retransmitted(summary: &str) -> u64 {
    summary
        .lines()
        .find_map(|l| l.strip_prefix("session: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no session line in {summary}"))
}

#[test]
fn a_tree_arrives_intact_on_loopback() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    make_tree(src.path(), "tree", 3 << 20);
    std::fs::write(src.path().join("single.txt"), b"one file on its own").unwrap();
    let server = receiver(dst.path(), &[]);
    let to = server.addr.to_string();
    let out = run(&[
        "send",
        src.path().join("tree").to_str().unwrap(),
        src.path().join("single.txt").to_str().unwrap(),
        "--to",
        &to,
        "--progress",
        "lines",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("sent 7 files (0 already there and identical), 4 directories"),
        "{stdout}"
    );
    let (code, received, _) = server.wait(WAIT);
    assert_eq!(code, Some(0), "{received}");
    assert!(received.contains("received from 127.0.0.1:"), "{received}");
    assert_same_tree(&src.path().join("tree"), &dst.path().join("tree"));
    assert_eq!(
        std::fs::read(dst.path().join("single.txt")).unwrap(),
        b"one file on its own"
    );
}

#[test]
fn a_tree_arrives_intact_through_a_lossy_relay() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    make_tree(src.path(), "tree", 2 << 20);
    let server = receiver(dst.path(), &[]);
    let path = LinkConfig::default()
        .latency(Duration::from_millis(2))
        .random_loss(0.05)
        .reorder(0.05, Duration::from_millis(3));
    let relay = Relay::start(
        "127.0.0.1:0".parse().unwrap(),
        server.addr,
        path.clone(),
        path,
        7,
    )
    .unwrap();
    let out = run(&[
        "send",
        src.path().join("tree").to_str().unwrap(),
        "--to",
        &relay.local_addr().to_string(),
        "--progress",
        "off",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let (code, received, _) = server.wait(WAIT);
    assert_eq!(code, Some(0), "{received}");
    assert_same_tree(&src.path().join("tree"), &dst.path().join("tree"));
    let stats = relay.stats();
    assert!(stats.to_upstream.link.lost > 0, "the relay lost nothing");
    assert!(
        retransmitted(&stdout) > 0,
        "nothing retransmitted: {stdout}"
    );
}

#[test]
fn matching_keys_transfer_encrypted() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    make_tree(src.path(), "tree", 100_000);
    let keys = tempfile::tempdir().unwrap();
    key_file(&keys.path().join("shared.key"), 42);
    // The receiver takes the key from its configuration file, the sender
    // from the flag; the receiver's small message limit makes the sender cut
    // its chunks smaller.
    let config = keys.path().join("ferry.toml");
    std::fs::write(
        &config,
        "[session]\nkey_file = \"shared.key\"\nmax_message_size = 50000\n",
    )
    .unwrap();
    let server = receiver(dst.path(), &["--config", config.to_str().unwrap()]);
    let out = run(&[
        "send",
        src.path().join("tree").to_str().unwrap(),
        "--to",
        &server.addr.to_string(),
        "--key-file",
        keys.path().join("shared.key").to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("encrypted"), "{stdout}");
    assert_eq!(server.wait(WAIT).0, Some(0));
    assert_same_tree(&src.path().join("tree"), &dst.path().join("tree"));
}

#[test]
fn mismatched_keys_fail_fast_with_exit_4() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("a.txt"), b"secret").unwrap();
    let keys = tempfile::tempdir().unwrap();
    key_file(&keys.path().join("one.key"), 1);
    key_file(&keys.path().join("two.key"), 2);
    let server = receiver(
        dst.path(),
        &["--key-file", keys.path().join("one.key").to_str().unwrap()],
    );
    let to = server.addr.to_string();
    let file = src.path().join("a.txt");
    for key in [Some("two.key"), None] {
        let key_path = key.map(|k| keys.path().join(k));
        let mut args = vec!["send", file.to_str().unwrap(), "--to", &to];
        if let Some(path) = &key_path {
            args.extend(["--key-file", path.to_str().unwrap()]);
        }
        let started = std::time::Instant::now();
        let out = run(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(4), "{key:?}: {stdout}\n{stderr}");
        assert!(
            stderr.contains("refused the handshake") && stderr.contains("same --key-file"),
            "{stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(8), "no hang");
    }
    assert!(std::fs::read_dir(dst.path()).unwrap().next().is_none());
}

#[test]
fn existing_files_are_kept_unless_overwrite() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("same.txt"), b"same").unwrap();
    std::fs::write(src.path().join("new.txt"), b"new content").unwrap();
    std::fs::write(dst.path().join("same.txt"), b"same").unwrap();
    std::fs::write(dst.path().join("new.txt"), b"old content").unwrap();
    let send = |server: &Server| {
        run(&[
            "send",
            src.path().join("same.txt").to_str().unwrap(),
            src.path().join("new.txt").to_str().unwrap(),
            "--to",
            &server.addr.to_string(),
        ])
    };
    let server = receiver(dst.path(), &[]);
    let out = send(&server);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("not sent: new.txt"), "{stdout}");
    assert!(stdout.contains("--overwrite"), "{stdout}");
    assert!(stdout.contains("1 already there and identical"), "{stdout}");
    assert_eq!(server.wait(WAIT).0, Some(1));
    assert_eq!(
        std::fs::read(dst.path().join("new.txt")).unwrap(),
        b"old content"
    );

    let server = receiver(dst.path(), &["--overwrite"]);
    let out = send(&server);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(server.wait(WAIT).0, Some(0));
    assert_eq!(
        std::fs::read(dst.path().join("new.txt")).unwrap(),
        b"new content"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dst.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("ferry-part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A hostile sender, in this process: names that try to leave the
/// directory are refused, a file whose content does not match its digest
/// is not kept.
#[test]
fn hostile_names_and_bad_digests_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let dst = outer.path().join("dst");
    let server = receiver(&dst, &[]);
    let addr = server.addr;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let replies = runtime.block_on(async move {
        let endpoint =
            Endpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default()).unwrap();
        let session = endpoint.connect(addr).await.unwrap();
        let mut replies = Vec::new();
        for (name, content, honest) in [
            ("../escape.txt", &b"x"[..], true),
            ("/tmp/absolute.txt", b"x", true),
            ("a/../../escape.txt", b"x", true),
            ("bell\u{7}.txt", b"x", true),
            ("dir\\..\\x.txt", b"x", true),
            ("good/file.txt", b"fine", true),
            ("liar.txt", b"not what the digest says", false),
        ] {
            let stream = session.open_stream(StreamKind::ReliableOrdered).unwrap();
            let digest = if honest {
                *blake3::hash(content).as_bytes()
            } else {
                [0; 32]
            };
            let header = EntryHeader {
                kind: EntryKind::File,
                name: name.into(),
                size: content.len() as u64,
            };
            stream.send(header.encode()).await.unwrap();
            let data = Content::Data(bytes::Bytes::copy_from_slice(content));
            let _ = stream.send(data.encode()).await;
            let _ = stream.send(trailer(&digest)).await;
            let _ = stream.finish();
            let reply = stream.recv().await.unwrap().expect("a reply");
            replies.push((name, Reply::decode(&reply).unwrap().code));
        }
        session.close(CLOSE_DONE);
        endpoint.close().await;
        replies
    });
    for (name, code) in &replies {
        let want = match *name {
            "good/file.txt" => ReplyCode::Stored,
            "liar.txt" => ReplyCode::Mismatch,
            _ => ReplyCode::BadName,
        };
        assert_eq!(*code, want, "{name}");
    }
    let (code, out, _) = server.wait(WAIT);
    // A digest mismatch outranks the refusals: integrity, 5.
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("not stored: liar.txt"), "{out}");
    assert_eq!(std::fs::read(dst.join("good/file.txt")).unwrap(), b"fine");
    assert!(!outer.path().join("escape.txt").exists());
    assert!(!dst.join("liar.txt").exists());
    let mut names: Vec<_> = std::fs::read_dir(&dst)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["good"], "only the good file's directory is there");
}

#[test]
fn no_receiver_gives_exit_3_and_says_what_to_start() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("a.txt");
    std::fs::write(&file, b"x").unwrap();
    let config = src.path().join("quick.toml");
    std::fs::write(&config, "[session]\nhandshake_timeout = 1500\n").unwrap();
    // A UDP port nothing listens on (bound, then released).
    let free = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = run(&[
        "send",
        file.to_str().unwrap(),
        "--to",
        &free.to_string(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("ferry receive --listen"), "{stderr}");
}

#[test]
fn local_problems_give_exit_6() {
    let out = run(&["send", "/definitely/not/here", "--to", "127.0.0.1:9"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("no such file"), "{stderr}");
}

#[test]
fn a_port_in_use_gives_exit_3_and_says_so() {
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dst = tempfile::tempdir().unwrap();
    let out = run(&[
        "receive",
        "--listen",
        &busy.local_addr().unwrap().to_string(),
        "--dir",
        dst.path().to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
}
