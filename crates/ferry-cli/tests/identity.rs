//! Identities from the command line: `ferry keygen`, transfers between
//! identities (who gets in, who is named, who is refused), and
//! `forward-server`'s targets per peer.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Server, assert_same_tree, key_file, keygen, make_tree, path, receiver, run, text};

const WAIT: Duration = Duration::from_secs(30);

fn is_key(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads_and_the_matching_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("id.key");
    let out = run(&["keygen", path(&file)]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // One line on stdout, the public key; where the files went on stderr.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let public = stdout.trim();
    assert!(is_key(public), "{stdout}");
    assert!(stderr.contains("id.key.pub"), "{stderr}");
    let private = std::fs::read_to_string(&file).unwrap();
    assert!(is_key(private.trim_end_matches('\n')) && private.ends_with('\n'));
    assert_ne!(private.trim(), public);
    assert!(!stdout.contains(private.trim()) && !stderr.contains(private.trim()));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("id.key.pub")).unwrap(),
        format!("{public}\n")
    );
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    // --public reads it back.
    let out = run(&["keygen", "--public", path(&file)]);
    assert_eq!(text(&out).0.trim(), public);
    // An existing key is kept unless --force.
    let out = run(&["keygen", path(&file)]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), private);
    let out = run(&["keygen", "--force", path(&file)]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let replaced = text(&out).0.trim().to_owned();
    assert_ne!(replaced, public);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("id.key.pub")).unwrap(),
        format!("{replaced}\n")
    );
    // Nothing else in the directory: no temporary file left.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    // A private key others may read is used, with a warning.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = run(&["-v", "keygen", "--public", path(&file)]);
        let (stdout, stderr) = text(&out);
        assert_eq!(stdout.trim(), replaced);
        assert!(stderr.contains("readable by other users"), "{stderr}");
    }
}

#[test]
fn keygen_psk_writes_a_private_pre_shared_key_and_bad_keys_point_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.key");
    let out = run(&["keygen", "--psk", path(&file)]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "a secret is not printed: {stdout}");
    assert!(is_key(std::fs::read_to_string(&file).unwrap().trim()));
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    assert!(!dir.path().join("shared.key.pub").exists());
    // A config file naming it is accepted; a bad key says how to make one.
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, "[session]\nkey_file = \"shared.key\"\n").unwrap();
    let out = run(&["config", "check", path(&config)]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    std::fs::write(&file, "abc\n").unwrap();
    let out = run(&["config", "check", path(&config)]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("ferry keygen --psk"), "{stderr}");
}

/// Keys for a receiver and two senders, alice listed and bob not.
struct Keys {
    dir: tempfile::TempDir,
    server: String,
    alice: String,
}

impl Keys {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = keygen(dir.path(), "server.key");
        let alice = keygen(dir.path(), "alice.key");
        keygen(dir.path(), "bob.key");
        std::fs::write(
            dir.path().join("authorized_keys"),
            format!("# who may send\n{alice} alice\n"),
        )
        .unwrap();
        Self { dir, server, alice }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A receiver that admits alice only.
    fn receiver(&self, dst: &Path) -> Server {
        receiver(
            dst,
            &[
                "--identity",
                path(&self.file("server.key")),
                "--authorized-keys",
                path(&self.file("authorized_keys")),
            ],
        )
    }
}

#[test]
fn a_transfer_between_identities_arrives_intact_and_the_receiver_names_the_peer() {
    let keys = Keys::new();
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    make_tree(src.path(), "tree", 1 << 20);
    // The receiver reads its keys from its configuration file (paths
    // relative to it), a pre-shared key on top; the sender from flags, the
    // listener's key as hex digits.
    key_file(&keys.file("shared.key"), 9);
    let config = keys.file("receiver.toml");
    std::fs::write(
        &config,
        "[session]\nidentity_file = \"server.key\"\nauthorized_keys_file = \"authorized_keys\"\n\
         key_file = \"shared.key\"\n",
    )
    .unwrap();
    let server = receiver(dst.path(), &["--config", path(&config)]);
    assert!(
        server
            .first
            .contains(&format!("identity {}…, admits 1 key", &keys.server[..8])),
        "{}",
        server.first
    );
    let out = run(&[
        "send",
        path(&src.path().join("tree")),
        "--to",
        &server.addr.to_string(),
        "--identity",
        path(&keys.file("alice.key")),
        "--peer-key",
        &keys.server,
        "--key-file",
        path(&keys.file("shared.key")),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("encrypted"), "{stdout}");
    let (code, received, _) = server.wait(WAIT);
    assert_eq!(code, Some(0), "{received}");
    let named = format!("peer alice ({}…)", &keys.alice[..8]);
    assert!(
        received.contains("session from 127.0.0.1:")
            && received
                .lines()
                .any(|l| l.starts_with("received from 127.0.0.1:") && l.contains(&named)),
        "{received}"
    );
    assert_same_tree(&src.path().join("tree"), &dst.path().join("tree"));
}

#[test]
fn an_unlisted_key_is_refused_and_nothing_is_written() {
    let keys = Keys::new();
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("a.txt"), b"from bob").unwrap();
    let server = keys.receiver(dst.path());
    let started = std::time::Instant::now();
    let out = run(&[
        "send",
        path(&src.path().join("a.txt")),
        "--to",
        &server.addr.to_string(),
        "--identity",
        path(&keys.file("bob.key")),
        "--peer-key",
        path(&keys.file("server.key.pub")),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("refused the handshake") && stderr.contains("--authorized-keys"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(8), "no hang");
    assert!(std::fs::read_dir(dst.path()).unwrap().next().is_none());
}

#[test]
fn a_wrong_peer_key_fails_and_a_missing_one_is_asked_for() {
    let keys = Keys::new();
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("a.txt"), b"from alice").unwrap();
    let server = keys.receiver(dst.path());
    let to = server.addr.to_string();
    let file = src.path().join("a.txt");
    let alice = keys.file("alice.key");
    let send = |extra: &[&str]| {
        let mut args = vec!["send", path(&file), "--to", &to, "--identity", path(&alice)];
        args.extend_from_slice(extra);
        let out = run(&args);
        let (stdout, stderr) = text(&out);
        (out.status.code(), format!("{stdout}\n{stderr}"))
    };
    // Bob's key is not the listener's: only the listener can answer.
    let (code, output) = send(&["--peer-key", path(&keys.file("bob.key.pub"))]);
    assert_eq!(code, Some(4), "{output}");
    assert!(
        output.contains("--peer-key is not its public key"),
        "{output}"
    );
    // None at all: said what to give, before any packet.
    let (code, output) = send(&[]);
    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains(
            "give the listener's public key with --peer-key (the listener prints it with `ferry keygen --public FILE`)"
        ),
        "{output}"
    );
    assert!(std::fs::read_dir(dst.path()).unwrap().next().is_none());
}

/// A TCP server that answers what it read, reversed, after the client's FIN.
fn reverse_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            std::thread::spawn(move || {
                let mut data = Vec::new();
                if conn.read_to_end(&mut data).is_ok() {
                    data.reverse();
                    let _ = conn.write_all(&data);
                }
            });
        }
    });
    addr
}

/// One round trip through `forward` at `addr`: what came back.
fn round_trip(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let _ = conn.write_all(data);
    let _ = conn.shutdown(Shutdown::Write);
    let mut back = Vec::new();
    let _ = conn.read_to_end(&mut back);
    back
}

#[test]
fn forward_server_allows_a_target_to_one_peer_and_refuses_it_to_another() {
    let keys = Keys::new();
    let bob = std::fs::read_to_string(keys.file("bob.key.pub")).unwrap();
    std::fs::write(
        keys.file("authorized_keys"),
        format!("{}  alice\n{} bob\n", keys.alice, bob.trim()),
    )
    .unwrap();
    let (alices, bobs) = (reverse_server(), reverse_server());
    let server = Server::start(&[
        "forward-server",
        "--listen",
        "127.0.0.1:0",
        "--identity",
        path(&keys.file("server.key")),
        "--authorized-keys",
        path(&keys.file("authorized_keys")),
        "--allow-peer",
        &format!("alice={alices}"),
        "--allow-peer",
        &format!("bob={bobs}"),
    ]);
    let to = server.addr.to_string();
    let forward = |who: &str, target: SocketAddr| {
        Server::start(&[
            "forward",
            "-v",
            "--listen",
            "127.0.0.1:0",
            "--to",
            &to,
            "--target",
            &target.to_string(),
            "--identity",
            path(&keys.file(&format!("{who}.key"))),
            "--peer-key",
            path(&keys.file("server.key.pub")),
        ])
    };
    let alice = forward("alice", alices);
    assert_eq!(round_trip(alice.addr, b"abc"), b"cba");
    let bob_own = forward("bob", bobs);
    assert_eq!(round_trip(bob_own.addr, b"xyz"), b"zyx");
    // Alice's target is not bob's: refused without a byte, and said why.
    let mut bob = forward("bob", alices);
    assert!(round_trip(bob.addr, b"let me in").is_empty());
    bob.child.kill().unwrap();
    let (_, _, stderr) = bob.wait(WAIT);
    assert!(
        stderr.contains(&format!(
            "target \\\"{alices}\\\" is not allowed for peer bob ("
        )) || stderr.contains(&format!(
            "target \"{alices}\" is not allowed for peer bob ("
        )),
        "{stderr}"
    );
}

#[test]
fn a_perf_test_between_identities_is_encrypted_and_the_server_names_the_client() {
    let keys = Keys::new();
    let mut server = Server::start(&[
        "perf",
        "server",
        "-v",
        "--listen",
        "127.0.0.1:0",
        "--once",
        "--identity",
        path(&keys.file("server.key")),
        "--authorized-keys",
        path(&keys.file("authorized_keys")),
    ]);
    let out = run(&[
        "perf",
        "client",
        &server.addr.to_string(),
        "--json",
        "-n",
        "1000000",
        "--identity",
        path(&keys.file("alice.key")),
        "--peer-key",
        path(&keys.file("server.key.pub")),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["encrypted"], true, "{report}");
    assert_eq!(report["upload"]["bytes"], 1_000_000, "{report}");
    let _ = server.child.kill();
    let (_, _, log) = server.wait(WAIT);
    assert!(
        log.contains("perf test from an authenticated peer")
            && log.contains(&format!("alice ({}…)", &keys.alice[..8])),
        "{log}"
    );
}
