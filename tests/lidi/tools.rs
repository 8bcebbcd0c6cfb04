//! Lidi's flag names, files' mode and modification time, and
//! `diode-send-dir`'s `--ignore` and `--maximum-delay`.

use super::*;

/// The in-process chain with Ferry's flags under Lidi's names.
struct Chain {
    files: ReceiveFileServer,
    receive: DiodeReceiveServer,
    send: DiodeSendServer,
    out: TempDir,
}

impl Chain {
    fn start() -> Chain {
        let out = TempDir::new().unwrap();
        let any = "127.0.0.1:0";
        let dir = out.path().to_str().unwrap().to_owned();
        let Command::DiodeReceiveFile(args) = parse(&[
            "ferry",
            "diode-receive-file",
            "--from-tcp",
            any,
            "--dir",
            &dir,
        ]) else {
            unreachable!()
        };
        let files = ReceiveFileServer::start(&args).unwrap();
        let to = files.tcp_addr().to_string();
        let Command::DiodeReceive(args) = parse(&[
            "ferry",
            "diode-receive",
            "--from",
            any,
            "--to-tcp",
            &to,
            "--heartbeat",
            "300",
        ]) else {
            unreachable!()
        };
        let receive = DiodeReceiveServer::start(&args).unwrap();
        let udp = receive.udp_addr().to_string();
        let Command::DiodeSend(args) = parse(&[
            "ferry",
            "diode-send",
            "--from-tcp",
            any,
            "--to-udp",
            &udp,
            "--bandwidth",
            "200",
            "--heartbeat",
            "300",
        ]) else {
            unreachable!()
        };
        let send = DiodeSendServer::start(&args).unwrap();
        Chain {
            files,
            receive,
            send,
            out,
        }
    }

    fn stop(self) {
        self.send.stop();
        self.receive.stop();
        self.files.stop();
    }
}

#[test]
fn lidi_flag_names_are_aliases_of_ferrys() {
    let Command::DiodeSendDir(args) = parse(&[
        "ferry",
        "diode-send-dir",
        "/spool",
        "--to-tcp",
        "127.0.0.1:5001",
        "--maximum-files",
        "7",
        "--maximum-delay",
        "2500",
        "--ignore",
        "*.tmp",
        "--ignore",
        r"^\..*$",
        "--hash",
        "--buffer-size",
        "8196",
        "-c",
        "/etc/lidi/config.toml",
    ]) else {
        unreachable!()
    };
    assert_eq!(args.to, "127.0.0.1:5001".parse().unwrap());
    assert_eq!(args.files_per_session, 7);
    assert_eq!(args.maximum_delay, Some(2500));
    assert_eq!(args.ignore.len(), 2);
    assert!(args.ignore[0].matches("x.tmp"));
    assert!(args.ignore[1].matches(".hidden"), "Lidi's default regex");
    assert!(args.options.hash);
    assert_eq!(args.options.buffer_size, 8196);
    assert_eq!(
        args.config.config.as_deref(),
        Some(Path::new("/etc/lidi/config.toml"))
    );

    let Command::DiodeSend(args) = parse(&[
        "ferry",
        "diode-send",
        "--bind-tcp",
        "127.0.0.1:5001",
        "--to-udp",
        "10.0.0.2:5000",
        "--bind-udp",
        "10.0.0.1:0",
    ]) else {
        unreachable!()
    };
    assert_eq!(args.listen, Some("127.0.0.1:5001".parse().unwrap()));
    assert_eq!(args.to, Some("10.0.0.2:5000".parse().unwrap()));
    assert_eq!(args.bind, Some("10.0.0.1:0".parse().unwrap()));

    let Command::DiodeReceive(args) = parse(&[
        "ferry",
        "diode-receive",
        "--from-udp",
        "10.0.0.2:5000",
        "--to-tcp",
        "127.0.0.1:5002",
    ]) else {
        unreachable!()
    };
    assert_eq!(args.listen, Some("10.0.0.2:5000".parse().unwrap()));
    assert_eq!(args.to, Some("127.0.0.1:5002".parse().unwrap()));

    let Command::DiodeReceiveFile(args) = parse(&[
        "ferry",
        "diode-receive-file",
        "--from-tcp",
        "127.0.0.1:7000",
        "--hash",
        "/srv/in",
    ]) else {
        unreachable!()
    };
    assert_eq!(args.listen, "127.0.0.1:7000".parse().unwrap());
    assert_eq!(args.output_dir().unwrap(), PathBuf::from("/srv/in"));

    // A regular expression other than Lidi's default is refused with advice.
    let err = Cli::try_parse_from([
        "ferry",
        "diode-send-dir",
        "/spool",
        "--to",
        "127.0.0.1:1",
        "--ignore",
        r"^.*\.tmp$",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("takes a glob"), "{err}");
}

#[cfg(unix)]
#[test]
fn files_arrive_with_their_mode_and_modification_time() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::UNIX_EPOCH;

    let chain = Chain::start();
    let source = make_files(&[("script.sh", b"#!/bin/sh\n"), ("secret", b"s")]);
    let when = UNIX_EPOCH + Duration::new(1_000_000_000, 500_000_000);
    for (name, mode) in [("script.sh", 0o750), ("secret", 0o4600)] {
        let path = source.path().join(name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(when).unwrap();
    }
    send_files(
        chain.send.tcp_addr(),
        &[
            source.path().join("script.sh"),
            source.path().join("secret"),
        ],
    )
    .unwrap();
    wait_until("both files are saved", || chain.files.stats().saved == 2);
    for (name, mode) in [("script.sh", 0o750), ("secret", 0o600)] {
        let meta = std::fs::metadata(chain.out.path().join(name)).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            mode,
            "{name}: setuid is dropped"
        );
        assert_eq!(meta.modified().unwrap(), when, "{name}");
    }
    chain.stop();
}

#[test]
fn send_dir_skips_the_names_ignore_matches() {
    let chain = Chain::start();
    let source = make_files(&[
        ("keep.txt", b"k"),
        ("skip.tmp", b"t"),
        ("upload.part", b"p"),
        (".hidden", b"h"),
    ]);
    let Command::DiodeSendDir(args) = parse(&[
        "ferry",
        "diode-send-dir",
        source.path().to_str().unwrap(),
        "--to-tcp",
        &chain.send.tcp_addr().to_string(),
        "--ignore",
        "*.tmp",
        "--ignore",
        "*.pa[rt]t",
        "--once",
    ]) else {
        unreachable!()
    };
    let report = send_dir(&args, &AtomicBool::new(false)).unwrap();
    assert_eq!((report.files, report.sessions), (1, 1));
    wait_until("the file is saved", || chain.files.stats().saved == 1);
    let names: Vec<String> = std::fs::read_dir(chain.out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["keep.txt"]);
    chain.stop();
}

#[test]
fn maximum_delay_keeps_one_session_open_for_files_that_land_meanwhile() {
    let chain = Chain::start();
    let source = TempDir::new().unwrap();
    let Command::DiodeSendDir(args) = parse(&[
        "ferry",
        "diode-send-dir",
        source.path().to_str().unwrap(),
        "--to-tcp",
        &chain.send.tcp_addr().to_string(),
        "--maximum-delay",
        "3000",
        "--interval-ms",
        "50",
    ]) else {
        unreachable!()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let watcher = std::thread::spawn(move || send_dir(&args, &flag).unwrap());

    std::fs::write(source.path().join("first"), b"1").unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(600));
    std::fs::write(source.path().join("second"), b"2").unwrap();
    // Each file crosses as soon as it is taken, in the one open session…
    wait_until("both files are saved", || chain.files.stats().saved == 2);
    // …which is cut once it has been open for the delay, while the watcher
    // goes on.
    wait_until("the session ends", || chain.files.stats().ended == 1);
    assert!(started.elapsed() >= Duration::from_millis(2500));
    assert!(!watcher.is_finished());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = watcher.join().unwrap();
    assert_eq!((report.files, report.sessions), (2, 1), "{report:?}");
    assert_eq!(chain.files.stats().connections, 1);
    chain.stop();
}
