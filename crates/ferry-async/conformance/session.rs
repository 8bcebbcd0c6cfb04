// The driven API's tests shared by every async adapter (ferry-tokio,
// ferry-smol, ferry-async-std), over real sockets on loopback.
//
// Each adapter's `tests/session.rs` imports its crate's types (`BindError`,
// `CloseReason`, `Config`, `ConnectError`, `Endpoint`, `EndpointConfig`,
// `EndpointExt`, `RecvError`, `SendError`, `State`), defines
// `fn run<T>(test: impl Future<Output = T>) -> T` on its runtime and
// `async fn timeout<T>(Duration, impl Future<Output = T>) -> Option<T>`, and
// `include!`s this file. (An `include!`d file cannot hold inner doc comments,
// hence these plain ones.)

fn local() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn messages_both_ways_then_close() {
    run(async {
        let server = Endpoint::bind(local(), EndpointConfig::server()).unwrap();
        let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let session = client.connect(server.local_addr()).await.unwrap();
        assert_eq!(session.state(), State::Established);
        let incoming = server.accept().await.unwrap();
        assert_eq!(incoming.id(), session.id());
        assert_eq!(incoming.remote_addr(), client.local_addr());

        for size in [0, 1, 1199, 1200, 5000, 1 << 20] {
            let m: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            session.send(m.clone()).await.unwrap();
            assert_eq!(incoming.recv().await.unwrap(), m);
            incoming.send(m.clone()).await.unwrap();
            assert_eq!(session.recv().await.unwrap(), m);
        }
        assert_eq!(server.session_count(), 1);
        assert_eq!(server.sessions(), vec![session.id()]);

        session.close(42);
        assert_eq!(session.closed().await, CloseReason::Local { code: 42 });
        assert_eq!(incoming.closed().await, CloseReason::Remote { code: 42 });
        assert_eq!(
            incoming.recv().await,
            Err(RecvError::Closed(CloseReason::Remote { code: 42 }))
        );
        assert!(matches!(
            session.send(vec![1]).await,
            Err(SendError::Closed(CloseReason::Local { code: 42 }))
        ));
        assert!(
            session.stats().packets_sent > 0,
            "final stats survive the close"
        );
    })
}

#[test]
fn datagrams() {
    run(async {
        let server = Endpoint::bind(local(), EndpointConfig::server()).unwrap();
        let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let session = client.connect(server.local_addr()).await.unwrap();
        let incoming = server.accept().await.unwrap();
        session.send_datagram(&b"hi"[..]).unwrap();
        let d = timeout(Duration::from_secs(5), incoming.recv_datagram())
            .await
            .expect("a datagram within 5 s")
            .unwrap();
        assert_eq!(&d[..], b"hi");
        let max = session.max_datagram_size();
        assert!(session.send_datagram(vec![0; max + 1]).is_err());
    })
}

#[test]
fn binding_a_taken_port_says_so() {
    run(async {
        let first = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let err = Endpoint::bind(first.local_addr(), EndpointConfig::default()).unwrap_err();
        assert!(matches!(err, BindError::AddrInUse(_)), "{err}");
        assert!(err.to_string().contains("already in use"), "{err}");
    })
}

#[test]
fn invalid_config_is_refused_at_bind() {
    run(async {
        let config = EndpointConfig::from(Config {
            mtu: 10,
            ..Config::default()
        });
        let err = Endpoint::bind(local(), config).unwrap_err();
        assert!(matches!(err, BindError::Config(_)), "{err}");
    })
}

#[test]
fn connecting_to_a_closed_port_is_refused_or_times_out() {
    run(async {
        // Grab a free port, then close it.
        let port = std::net::UdpSocket::bind(local())
            .unwrap()
            .local_addr()
            .unwrap();
        let config = EndpointConfig::from(Config {
            handshake_timeout: Duration::from_secs(2),
            ..Config::default()
        });
        let client = Endpoint::bind(local(), config).unwrap();
        let err = client.connect(port).await.unwrap_err();
        // Linux reports the ICMP port unreachable on loopback: refused at once;
        // elsewhere the handshake times out.
        let expected = if cfg!(target_os = "linux") {
            CloseReason::Refused
        } else {
            CloseReason::Timeout
        };
        assert_eq!(err, ConnectError::Failed(expected));
        assert!(err.to_string().contains("could not connect"), "{err}");
    })
}

#[test]
fn listener_that_does_not_accept_refuses() {
    run(async {
        let server = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let err = client.connect(server.local_addr()).await.unwrap_err();
        assert_eq!(err, ConnectError::Failed(CloseReason::Refused));
    })
}

#[test]
fn dropping_the_last_handle_closes_the_session() {
    run(async {
        let server = Endpoint::bind(local(), EndpointConfig::server()).unwrap();
        let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let session = client.connect(server.local_addr()).await.unwrap();
        let incoming = server.accept().await.unwrap();
        let clone = session.clone();
        drop(session);
        clone.send(vec![1, 2, 3]).await.unwrap();
        assert_eq!(&incoming.recv().await.unwrap()[..], &[1, 2, 3]);
        drop(clone);
        assert_eq!(
            incoming.closed().await,
            CloseReason::Remote {
                code: ferry_async_dropped_code()
            }
        );
    })
}

fn ferry_async_dropped_code() -> u64 {
    0
}

#[test]
fn closing_the_endpoint_closes_its_sessions() {
    run(async {
        let server = Endpoint::bind(local(), EndpointConfig::server()).unwrap();
        let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let a = client.connect(server.local_addr()).await.unwrap();
        let b = client.connect(server.local_addr()).await.unwrap();
        let a_in = server.accept().await.unwrap();
        let b_in = server.accept().await.unwrap();
        client.close().await;
        assert!(client.is_closed());
        assert!(matches!(a.closed().await, CloseReason::Local { .. }));
        assert!(matches!(b.closed().await, CloseReason::Local { .. }));
        assert!(matches!(a_in.closed().await, CloseReason::Remote { .. }));
        assert!(matches!(b_in.closed().await, CloseReason::Remote { .. }));
        assert!(client.connect(server.local_addr()).await.is_err());
    })
}

#[test]
fn ipv6_loopback() {
    run(async {
        let Ok(server) = Endpoint::bind("[::1]:0".parse().unwrap(), EndpointConfig::server())
        else {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        };
        let client = Endpoint::bind("[::1]:0".parse().unwrap(), EndpointConfig::default()).unwrap();
        let session = client.connect(server.local_addr()).await.unwrap();
        let incoming = server.accept().await.unwrap();
        session.send(vec![6u8; 70_000]).await.unwrap();
        assert_eq!(incoming.recv().await.unwrap().len(), 70_000);
    })
}
