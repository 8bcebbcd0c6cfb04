// A test for the adapters whose drivers run on a global executor (ferry-smol,
// ferry-async-std): `bind` works outside any `block_on`. Included after
// `session.rs` (see there).

#[test]
fn bind_needs_no_runtime_and_the_driver_runs_on_its_own() {
    // Bound outside any `block_on`.
    let server = Endpoint::bind(local(), EndpointConfig::server()).unwrap();
    let addr = server.local_addr();
    // This thread then blocks without polling anything while another connects:
    // the server's driver answers the handshake from the runtime's executor threads.
    let client = std::thread::spawn(move || {
        run(async {
            let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
            let session = client.connect(addr).await.unwrap();
            session.send(&b"while you slept"[..]).await.unwrap();
            (client, session)
        })
    })
    .join()
    .unwrap();
    let incoming = run(server.accept()).unwrap();
    assert_eq!(incoming.id(), client.1.id());
    assert_eq!(&run(incoming.recv()).unwrap()[..], b"while you slept");
}
