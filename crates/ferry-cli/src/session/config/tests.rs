//! The `[session]` table's tests: every key read, errors that name the key
//! and line, key files relative to the configuration file.

use super::*;
use ferry_proto::crypto::PreSharedKey;

fn origin() -> &'static Path {
    Path::new("test.toml")
}

#[test]
fn defaults_without_a_table() {
    let s = parse(
        "mtu = 9000\n[receiver]\nblock_expiration_timeout = 5\n",
        origin(),
    )
    .unwrap();
    assert_eq!(s, SessionSettings::default());
}

#[test]
fn every_key_is_read() {
    let s = parse(
        "heartbeat = 500\n[session]\nmtu = 1400\nmax_mtu = 8952\ncongestion = \"cubic\"\n\
         handshake_timeout = 3000\nping_interval = 200\nping_packet_count = 7\n\
         delivery_timeout = 30\ninitial_rtt = 50\nmax_ack_delay = 5\n\
         max_message_size = 1000000\nrecv_window = 2000000\nmax_recv_window = 4000000\n\
         stream_recv_window = 2000000\nmax_stream_recv_window = 3000000\n\
         send_buffer = 1000000\nmax_send_buffer = 5000000\nstream_send_buffer = 1000000\n\
         send_window = 999999\nmax_streams = 9\nmax_sessions = 8\n\
         max_handshakes_per_source = 0\nmax_pending_handshakes = 4\n\
         amplification_factor = 2\nmax_recv_memory = 9000000\n\
         udp_send_buffer = 1234\nudp_recv_buffer = 4321\ncipher = \"aes-256-gcm\"\n\
         server_id = \"2:beef\"\nshards = 3\ngrace_period = 2500\n\
         metrics = \"127.0.0.1:9100\"\ntcp_fallback = true\n\
         tcp_fallback_listen = \"127.0.0.1:443\"\nfallback_after = 1500\n",
        origin(),
    )
    .unwrap();
    let c = &s.endpoint.protocol;
    assert_eq!(c.mtu, 1400);
    assert_eq!(c.max_mtu, 8952);
    assert_eq!(c.congestion, CongestionControl::Cubic);
    assert_eq!(c.handshake_timeout, Duration::from_secs(3));
    assert_eq!(c.ping_interval, Duration::from_millis(200));
    assert_eq!(c.ping_packet_count, 7);
    assert_eq!(c.delivery_timeout, Duration::from_millis(30));
    assert_eq!(c.initial_rtt, Duration::from_millis(50));
    assert_eq!(c.max_ack_delay, Duration::from_millis(5));
    assert_eq!(c.max_message_size, 1_000_000);
    assert_eq!(c.recv_window, 2_000_000);
    assert_eq!(c.max_recv_window, 4_000_000);
    assert_eq!(c.stream_recv_window, 2_000_000);
    assert_eq!(c.max_stream_recv_window, 3_000_000);
    assert_eq!(c.send_buffer, 1_000_000);
    assert_eq!(c.max_send_buffer, 5_000_000);
    assert_eq!(c.stream_send_buffer, 1_000_000);
    assert_eq!(c.send_window, 999_999);
    assert_eq!(c.max_streams, 9);
    assert_eq!(c.max_sessions, 8);
    assert_eq!(c.max_handshakes_per_source, 0);
    assert_eq!(c.max_pending_handshakes, 4);
    assert_eq!(c.amplification_factor, 2);
    assert_eq!(c.max_recv_memory, 9_000_000);
    assert_eq!(s.endpoint.socket_send_buffer, 1234);
    assert_eq!(s.endpoint.socket_recv_buffer, 4321);
    assert_eq!(c.cipher, CipherPreference::Aes256Gcm);
    assert_eq!(c.server_id, Some("2:beef".parse().unwrap()));
    assert_eq!(s.endpoint.shards, 3);
    assert_eq!(s.metrics, Some("127.0.0.1:9100".parse().unwrap()));
    assert_eq!(s.grace_period, Some(Duration::from_millis(2500)));
    assert!(s.endpoint.fallback.listen);
    assert_eq!(
        s.endpoint.fallback.listen_addr,
        Some("127.0.0.1:443".parse().unwrap())
    );
    assert_eq!(s.endpoint.fallback.after, Some(Duration::from_millis(1500)));
    assert_eq!(s.describe().len(), 37);
}

#[test]
fn errors_name_the_key_and_line() {
    for (text, key, line) in [
        ("[session]\nmtu = 10", "`mtu`", Some("line 2")),
        (
            "[session]\n\nping_interval = 0",
            "`ping_interval`",
            Some("line 3"),
        ),
        ("[session]\nshards = 65", "`shards`", Some("line 2")),
        (
            "[session]\nserver_id = \"4:01\"",
            "`server_id`",
            Some("line 2"),
        ),
        (
            "[session]\nrecv_window = 1000",
            "`recv_window`",
            Some("line 2"),
        ),
        (
            "[session]\nmax_recv_window = 1000",
            "`max_recv_window`",
            Some("line 2"),
        ),
        (
            "[session]\nmax_streams = 0",
            "`max_streams`",
            Some("line 2"),
        ),
        (
            "[session]\nhandshake_timeout = 99999999999",
            "`handshake_timeout`",
            None,
        ),
        ("[session]\nudp_recv_buffer = 0", "`udp_recv_buffer`", None),
        (
            "[session]\ngrace_period = 86400001",
            "`grace_period`",
            Some("line 2"),
        ),
        ("[session]\ncolour = 3", "colour", Some("line 2")),
        ("[session]\ncongestion = \"vegas\"", "vegas", Some("line 2")),
        (
            "[session]\ncipher = \"aes-128-gcm\"",
            "aes-128-gcm",
            Some("line 2"),
        ),
        ("[session]\nmtu = \"big\"", "mtu", Some("line 2")),
        ("session.send_window = 0", "`send_window`", Some("line 1")),
    ] {
        let err = parse(text, origin()).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
        assert!(err.contains("test.toml"), "{text}: {err}");
        if let Some(line) = line {
            assert!(err.contains(line), "{text}: {err}");
        }
    }
}

#[test]
fn the_cipher_key_takes_each_name_and_defaults_to_auto() {
    for (name, preference) in [
        ("auto", CipherPreference::Auto),
        ("aes-256-gcm", CipherPreference::Aes256Gcm),
        ("chacha20-poly1305", CipherPreference::ChaCha20Poly1305),
    ] {
        let s = parse(&format!("[session]\ncipher = \"{name}\"\n"), origin()).unwrap();
        assert_eq!(s.endpoint.protocol.cipher, preference, "{name}");
        assert_eq!(preference.name(), name, "the file's name is the library's");
        assert!(
            s.describe()
                .iter()
                .any(|l| l.starts_with(&format!("cipher = {name}"))),
            "{:?}",
            s.describe()
        );
    }
    let s = parse("[session]\nmtu = 1400\n", origin()).unwrap();
    assert_eq!(s.endpoint.protocol.cipher, CipherPreference::Auto);
    // Names are exact: no other spelling, no other case.
    for bad in ["AES-256-GCM", "aes256gcm", "chacha20poly1305", ""] {
        let err = parse(&format!("[session]\ncipher = \"{bad}\"\n"), origin())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cipher") || err.contains("variant"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn key_file_is_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.key"), format!("{}\n", "ab".repeat(32))).unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, "[session]\nkey_file = \"k.key\"\n").unwrap();
    let options = SessionOptions {
        config: Some(config.clone()),
        ..SessionOptions::default()
    };
    let s = options.load().unwrap();
    assert_eq!(s.key_file, Some(dir.path().join("k.key")));
    assert_eq!(
        s.endpoint.protocol.psk,
        Some(PreSharedKey::from_bytes([0xab; 32]))
    );
    // --key-file wins, and the file's key is then not even read.
    std::fs::write(&config, "[session]\nkey_file = \"missing.key\"\n").unwrap();
    std::fs::write(dir.path().join("other.key"), "cd".repeat(32)).unwrap();
    let options = SessionOptions {
        config: Some(config),
        key_file: Some(dir.path().join("other.key")),
        ..SessionOptions::default()
    };
    let s = options.load().unwrap();
    assert_eq!(
        s.endpoint.protocol.psk,
        Some(PreSharedKey::from_bytes([0xcd; 32]))
    );
    // A bad key is an authentication problem, named as such.
    std::fs::write(dir.path().join("bad.key"), "xyz").unwrap();
    let err = read_key(&dir.path().join("bad.key"), "--key-file").unwrap_err();
    assert_eq!(err.exit(), crate::exit::Exit::Authentication);
}

fn write_identity(dir: &Path, name: &str, byte: u8) -> ferry_proto::Identity {
    let identity = ferry_proto::Identity::from_private_bytes([byte; 32]);
    std::fs::write(
        dir.join(name),
        format!("{}\n", identity.private_hex().as_str()),
    )
    .unwrap();
    identity
}

#[test]
fn identity_keys_are_read_relative_to_the_file_and_each_role_takes_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let me = write_identity(dir.path(), "id.key", 1);
    let server = ferry_proto::Identity::from_private_bytes([2; 32]).public_key();
    let alice = ferry_proto::Identity::from_private_bytes([3; 32]).public_key();
    std::fs::write(dir.path().join("server.pub"), format!("{server}\n")).unwrap();
    std::fs::write(
        dir.path().join("authorized"),
        format!("# peers\n{alice} alice\n"),
    )
    .unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        "[session]\nidentity_file = \"id.key\"\nauthorized_keys_file = \"authorized\"\n\
         peer_key = \"server.pub\"\n",
    )
    .unwrap();
    let common = SessionOptions {
        config: Some(config.clone()),
        ..SessionOptions::default()
    };
    let starter = StarterOptions {
        common: common.clone(),
        peer_key: None,
        fallback: Default::default(),
    }
    .load()
    .unwrap();
    let c = &starter.endpoint.protocol;
    assert_eq!(
        c.identity.as_ref().map(|i| i.public_key()),
        Some(me.public_key())
    );
    assert_eq!(c.listener_key, Some(server));
    assert_eq!(c.authorized_keys, None, "a starter admits no one");
    let listener = ListenerOptions {
        common,
        authorized_keys: None,
        fallback: Default::default(),
    }
    .load()
    .unwrap();
    let c = &listener.endpoint.protocol;
    assert_eq!(c.listener_key, None);
    assert_eq!(
        c.authorized_keys.as_ref().and_then(|l| l.name(&alice)),
        Some("alice")
    );
    assert!(
        listener.listener_note().contains("admits 1 key"),
        "{}",
        listener.listener_note()
    );
    // `config check` shows public keys and paths, never the private key.
    let shown = parse(&std::fs::read_to_string(&config).unwrap(), &config)
        .unwrap()
        .describe()
        .join("\n");
    assert!(shown.contains(&me.public_key().to_string()), "{shown}");
    assert!(shown.contains(&server.to_string()), "{shown}");
    assert!(shown.contains("1 key alice"), "{shown}");
    assert!(!shown.contains(me.private_hex().as_str()), "{shown}");
}

#[test]
fn flags_override_the_files_key_files_which_are_then_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        "[session]\nidentity_file = \"missing.key\"\nauthorized_keys_file = \"missing\"\n\
         peer_key = \"missing.pub\"\n",
    )
    .unwrap();
    let flag_identity = write_identity(dir.path(), "flag.key", 4);
    let server = ferry_proto::Identity::from_private_bytes([5; 32]).public_key();
    let common = SessionOptions {
        config: Some(config),
        identity: Some(dir.path().join("flag.key")),
        ..SessionOptions::default()
    };
    let s = StarterOptions {
        common: common.clone(),
        peer_key: Some(server.to_string()),
        fallback: Default::default(),
    }
    .load()
    .unwrap();
    assert_eq!(
        s.endpoint.protocol.identity.map(|i| i.public_key()),
        Some(flag_identity.public_key())
    );
    assert_eq!(s.endpoint.protocol.listener_key, Some(server));
    std::fs::write(dir.path().join("authorized"), "").unwrap();
    let s = ListenerOptions {
        common,
        authorized_keys: Some(dir.path().join("authorized")),
        fallback: Default::default(),
    }
    .load()
    .unwrap();
    assert_eq!(
        s.endpoint.protocol.authorized_keys.map(|l| l.len()),
        Some(0)
    );
}

#[test]
fn an_identity_without_its_counterpart_says_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    write_identity(dir.path(), "id.key", 6);
    let with_identity = SessionOptions {
        identity: Some(dir.path().join("id.key")),
        ..SessionOptions::default()
    };
    let err = StarterOptions {
        common: with_identity,
        peer_key: None,
        fallback: Default::default(),
    }
    .load()
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("--peer-key (the listener prints it with `ferry keygen --public FILE`)"),
        "{err}"
    );
    assert_eq!(err.exit(), crate::exit::Exit::Usage);
    let server = ferry_proto::Identity::from_private_bytes([7; 32]).public_key();
    let err = StarterOptions {
        common: SessionOptions::default(),
        peer_key: Some(server.to_string()),
        fallback: Default::default(),
    }
    .load()
    .unwrap_err();
    assert!(err.to_string().contains("give --identity FILE"), "{err}");
    std::fs::write(dir.path().join("authorized"), format!("{server}\n")).unwrap();
    let err = ListenerOptions {
        common: SessionOptions::default(),
        authorized_keys: Some(dir.path().join("authorized")),
        fallback: Default::default(),
    }
    .load()
    .unwrap_err();
    assert!(err.to_string().contains("give --identity FILE"), "{err}");
}
