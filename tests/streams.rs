//! Streams on every driver: several streams of each kind on one session, both
//! ways, every byte checked; streams the peer opens, accepted here; finish and
//! reset as the reader sees them; the peer's `max_streams`; and byte-stream
//! mode through each runtime's own copy (`tokio::io::copy`,
//! `futures_lite::io::copy`, `std::io::copy`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_async::{
    Config, EndpointConfig, StreamEnd, StreamError, StreamKind, StreamRecvError, StreamSendError,
};
use ferry_tests::harness::{Conn, Driver, Messages, Peer, StreamConn};

/// How long any single wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Bytes echoed through one stream in byte-stream mode.
const ECHO_BYTES: usize = 20 << 20;

const KINDS: [StreamKind; 3] = [
    StreamKind::ReliableOrdered,
    StreamKind::ReliableUnordered,
    StreamKind::Unreliable,
];

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Two endpoints and a session between them: the server endpoint, the
/// client endpoint, the server's handle, the client's handle.
type Pair = (Box<dyn Peer>, Box<dyn Peer>, Box<dyn Conn>, Box<dyn Conn>);

/// A server and a client endpoint on `driver`, and one session between them.
fn session(driver: Driver, server: Config) -> Pair {
    session_with(driver, server, Config::default())
}

/// [`session`], with the client's configuration too.
fn session_with(driver: Driver, server: Config, client: Config) -> Pair {
    let server = driver.bind(
        local(),
        EndpointConfig::from(Config {
            accept_incoming: true,
            ..server
        }),
    );
    let client = driver.bind(local(), EndpointConfig::from(client));
    let mine = client.connect(server.local_addr()).expect("connect");
    let theirs = server.accept().expect("accept");
    (server, client, theirs, mine)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Message `index` of the stream tagged `tag`: the index, then bytes that
/// depend on the tag, the index and the position.
fn message(tag: u64, index: usize, size: usize) -> Bytes {
    let mut m = (index as u32).to_le_bytes().to_vec();
    m.extend_from_slice(&Messages::content(tag as usize * 7919 + index, size));
    m.into()
}

/// Checks every byte of a message of the stream tagged `tag`; its index.
fn check(tag: u64, data: &[u8]) -> usize {
    assert!(data.len() >= 4, "message too short: {} bytes", data.len());
    let index = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
    let body = &data[4..];
    assert!(
        Messages::check(tag as usize * 7919 + index, body.len(), body),
        "stream {tag}: message {index} of {} bytes corrupted",
        body.len()
    );
    index
}

/// The sizes of the messages sent on the stream tagged `tag`.
fn sizes(tag: u64, count: usize) -> Vec<usize> {
    let mut m = Messages::new(tag + 1, 48 << 10);
    (0..count).map(|_| m.next_size()).collect()
}

/// Sends `count` messages on each stream, taking turns, then finishes them.
fn send_all(streams: &[Box<dyn StreamConn>], count: usize) {
    let sizes: Vec<_> = streams.iter().map(|s| sizes(s.id().0, count)).collect();
    for i in 0..count {
        for (s, sizes) in streams.iter().zip(&sizes) {
            s.send(message(s.id().0, i, sizes[i])).expect("send");
        }
    }
    for s in streams {
        s.finish().expect("finish");
    }
}

/// Reads a stream to its end, checking what its kind promises: every
/// message in order, every message in any order, or (unreliable) only
/// newer ones.
fn read_all(stream: &dyn StreamConn, count: usize) {
    let tag = stream.id().0;
    let mut got = Vec::new();
    while let Some(m) = stream.recv(PATIENCE).expect("recv") {
        got.push(check(tag, &m));
    }
    match stream.kind() {
        StreamKind::ReliableOrdered => {
            assert_eq!(got, (0..count).collect::<Vec<_>>(), "stream {tag}");
        }
        StreamKind::ReliableUnordered => {
            assert_eq!(got.len(), count, "stream {tag}: every message, once");
            let set: BTreeSet<_> = got.into_iter().collect();
            assert_eq!(set, (0..count).collect(), "stream {tag}");
        }
        StreamKind::Unreliable => {
            assert!(
                got.windows(2).all(|w| w[0] < w[1]),
                "stream {tag}: latest-only delivers newer messages only: {got:?}"
            );
            assert!(got.iter().all(|&i| i < count));
            assert!(
                count == 0 || !got.is_empty(),
                "stream {tag}: nothing arrived"
            );
        }
    }
    assert_eq!(stream.end(), Some(StreamEnd::Finished));
    // The end stays.
    assert_eq!(stream.recv(PATIENCE).expect("at the end"), None);
}

/// One side of `every_kind_both_ways`: opens three streams of each kind,
/// sends on them, and reads the nine the peer opened.
fn play(conn: &dyn Conn, count: usize) {
    let mine: Vec<_> = KINDS
        .iter()
        .flat_map(|&k| (0..3).map(move |_| k))
        .map(|k| conn.open_stream(k).expect("open"))
        .collect();
    thread::scope(|scope| {
        scope.spawn(|| send_all(&mine, count));
        let mut kinds = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..9 {
            let theirs = conn
                .accept_stream(PATIENCE)
                .expect("the peer opens nine streams")
                .expect("the session is open");
            kinds.push(theirs.kind());
            readers.push(scope.spawn(move || read_all(&*theirs, count)));
        }
        for r in readers {
            r.join().expect("reader");
        }
        kinds.sort_by_key(|k| KINDS.iter().position(|x| x == k));
        assert_eq!(
            kinds,
            KINDS.iter().flat_map(|&k| [k; 3]).collect::<Vec<_>>()
        );
    });
    // The peer's ends of our streams: it reads to the end, then drops its
    // handles, which finishes its side.
    for s in &mine {
        assert_eq!(s.closed(), Some(StreamEnd::Finished));
    }
}

/// Three streams of each kind opened by each side, a hundred messages of up
/// to 48 KiB on each, interleaved, every byte checked on arrival.
fn every_kind_both_ways(driver: Driver) {
    let (server, client, theirs, mine) = session(driver, Config::default());
    thread::scope(|scope| {
        scope.spawn(|| play(&*theirs, 100));
        scope.spawn(|| play(&*mine, 100));
    });
    client.close();
    server.close();
}

/// The server opens a stream and the client accepts it (same id, same
/// kind), and both use it both ways; accepting waits, gives nothing when
/// nothing was opened, and ends with the session.
fn the_peer_opens_and_this_side_accepts(driver: Driver) {
    let (server, client, theirs, mine) = session(driver, Config::default());
    assert!(
        mine.accept_stream(Duration::from_millis(50)).is_err(),
        "nothing opened yet"
    );
    let s = theirs
        .open_stream(StreamKind::ReliableUnordered)
        .expect("open");
    s.send(Bytes::from_static(b"from the server")).unwrap();
    let c = mine.accept_stream(PATIENCE).unwrap().expect("a stream");
    assert_eq!((c.id(), c.kind()), (s.id(), StreamKind::ReliableUnordered));
    assert_eq!(
        &c.recv(PATIENCE).unwrap().expect("a message")[..],
        b"from the server"
    );
    c.send(Bytes::from_static(b"and back")).unwrap();
    assert_eq!(
        &s.recv(PATIENCE).unwrap().expect("a message")[..],
        b"and back"
    );
    // The default stream is untouched by streams.
    mine.send(Bytes::from_static(b"default")).unwrap();
    assert_eq!(&theirs.recv().unwrap()[..], b"default");

    // A waiting accept learns of the close.
    thread::scope(|scope| {
        let waiting = scope.spawn(|| mine.accept_stream(PATIENCE));
        thread::sleep(Duration::from_millis(50));
        theirs.close(7);
        assert!(matches!(waiting.join().unwrap(), Ok(None)));
    });
    assert!(matches!(c.recv(PATIENCE), Err(StreamRecvError::Closed(_))));
    assert!(matches!(
        mine.open_stream(StreamKind::ReliableOrdered),
        Err(StreamError::Closed(_))
    ));
    client.close();
    server.close();
}

/// A finished stream: the reader gets every message, then the end (again and
/// again); the writer can send no more; the reader's own side, finished in
/// turn, ends the writer's reading.
fn finish_ends_after_the_last_message(driver: Driver) {
    let (server, client, theirs, mine) = session(driver, Config::default());
    let c = mine.open_stream(StreamKind::ReliableOrdered).unwrap();
    let sizes = sizes(c.id().0, 10);
    for (i, &size) in sizes.iter().enumerate() {
        c.send(message(c.id().0, i, size)).unwrap();
    }
    c.finish().unwrap();
    assert_eq!(
        c.send(Bytes::from_static(b"late")),
        Err(StreamSendError::Finished)
    );
    assert_eq!(c.finish(), Err(StreamSendError::Finished));

    let s = theirs.accept_stream(PATIENCE).unwrap().expect("a stream");
    // The end waits for the reader.
    thread::sleep(Duration::from_millis(50));
    assert_eq!(s.end(), None);
    for (i, size) in sizes.iter().enumerate() {
        let m = s.recv(PATIENCE).unwrap().expect("a message");
        assert_eq!(check(c.id().0, &m), i);
        assert_eq!(m.len(), 4 + size);
    }
    assert_eq!(s.recv(PATIENCE), Ok(None));
    assert_eq!(s.recv(PATIENCE), Ok(None));
    assert_eq!(s.end(), Some(StreamEnd::Finished));
    assert_eq!(s.closed(), Some(StreamEnd::Finished));

    // The other direction is still open until the server finishes it.
    assert_eq!(c.end(), None);
    s.send(Bytes::from_static(b"last word")).unwrap();
    s.finish().unwrap();
    assert_eq!(&c.recv(PATIENCE).unwrap().unwrap()[..], b"last word");
    assert_eq!(c.recv(PATIENCE), Ok(None));
    assert_eq!(c.closed(), Some(StreamEnd::Finished));
    client.close();
    server.close();
}

/// A reset stream: the reader sees the code (after at most the messages that
/// came before it), again and again; the resetting side can send no more; the
/// reader's own direction goes on.
fn reset_reaches_the_reader(driver: Driver) {
    let (server, client, theirs, mine) = session(driver, Config::default());
    let c = mine.open_stream(StreamKind::ReliableOrdered).unwrap();
    let tag = c.id().0;
    c.send(message(tag, 0, 100)).unwrap();
    let s = theirs.accept_stream(PATIENCE).unwrap().expect("a stream");
    assert_eq!(check(tag, &s.recv(PATIENCE).unwrap().unwrap()), 0);
    for i in 1..4 {
        c.send(message(tag, i, 20_000)).unwrap();
    }
    c.reset(42).unwrap();
    assert_eq!(
        c.send(Bytes::from_static(b"late")),
        Err(StreamSendError::Finished)
    );
    assert_eq!(c.reset(43), Err(StreamSendError::Finished));
    let mut next = 1;
    loop {
        match s.recv(PATIENCE) {
            Ok(Some(m)) => {
                assert_eq!(check(tag, &m), next, "in order up to the reset");
                next += 1;
            }
            Err(StreamRecvError::Reset { code }) => {
                assert_eq!(code, 42);
                break;
            }
            other => panic!("expected the reset, got {other:?}"),
        }
    }
    assert_eq!(s.recv(PATIENCE), Err(StreamRecvError::Reset { code: 42 }));
    assert_eq!(s.end(), Some(StreamEnd::Reset { code: 42 }));
    assert_eq!(s.closed(), Some(StreamEnd::Reset { code: 42 }));

    // Only the client's direction ended.
    s.send(Bytes::from_static(b"still here")).unwrap();
    assert_eq!(&c.recv(PATIENCE).unwrap().unwrap()[..], b"still here");
    s.reset(9).unwrap();
    assert_eq!(c.recv(PATIENCE), Err(StreamRecvError::Reset { code: 9 }));
    client.close();
    server.close();
}

/// The peer allows three of this side's streams: a fourth fails with
/// `TooManyStreams`, and succeeds once one is over at both ends (dropped
/// here, read to the end and dropped there).
fn too_many_streams(driver: Driver) {
    let limited = Config {
        max_streams: 3,
        ..Config::default()
    };
    let (server, client, theirs, mine) = session(driver, limited);
    let mut open: Vec<_> = (0..3)
        .map(|i| {
            let c = mine.open_stream(KINDS[i]).expect("within the limit");
            c.send(Bytes::from_static(b"hello")).unwrap();
            c
        })
        .collect();
    assert_eq!(
        mine.open_stream(StreamKind::ReliableOrdered).err(),
        Some(StreamError::TooManyStreams { max: 3 })
    );
    let mut accepted: Vec<_> = (0..3)
        .map(|_| theirs.accept_stream(PATIENCE).unwrap().expect("a stream"))
        .collect();
    // The server itself may still open its own.
    let own = theirs.open_stream(StreamKind::ReliableOrdered).unwrap();
    drop(own);

    // Dropping the client's handle finishes its side; the server reads to
    // the end and drops its handle, which finishes the other side.
    let first = open.remove(0);
    let id = first.id();
    drop(first);
    // Streams of different kinds may arrive in any order.
    let at = accepted
        .iter()
        .position(|s| s.id() == id)
        .expect("accepted");
    let s = accepted.remove(at);
    assert_eq!(&s.recv(PATIENCE).unwrap().unwrap()[..], b"hello");
    assert_eq!(s.recv(PATIENCE), Ok(None));
    drop(s);
    let mut reopened = None;
    wait_until("a slot frees up", || {
        match mine.open_stream(StreamKind::ReliableOrdered) {
            Ok(c) => {
                reopened = Some(c);
                true
            }
            Err(StreamError::TooManyStreams { max: 3 }) => false,
            Err(e) => panic!("unexpected {e}"),
        }
    });
    let c = reopened.unwrap();
    c.send(Bytes::from_static(b"again")).unwrap();
    let s = theirs.accept_stream(PATIENCE).unwrap().expect("a stream");
    assert_eq!(s.id(), c.id());
    assert_eq!(&s.recv(PATIENCE).unwrap().unwrap()[..], b"again");
    client.close();
    server.close();
}

/// A stream keeps its session open after the last session handle is gone;
/// dropping the stream then closes the session as dropping a session does.
fn a_stream_keeps_its_session_open(driver: Driver) {
    let (server, client, theirs, mine) = session(driver, Config::default());
    let c = mine.open_stream(StreamKind::ReliableOrdered).unwrap();
    drop(mine);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(client.session_count(), 1, "held by its stream");
    c.send(Bytes::from_static(b"still open")).unwrap();
    let s = theirs.accept_stream(PATIENCE).unwrap().expect("a stream");
    assert_eq!(&s.recv(PATIENCE).unwrap().unwrap()[..], b"still open");
    drop(c);
    assert_eq!(
        theirs.closed(),
        ferry_async::CloseReason::Remote {
            code: ferry_async::DROPPED_CODE,
            reason: Default::default(),
        }
    );
    // Dropping the stream finishes it, then dropping its session handle
    // closes the session, which drops what was still queued: the finish
    // arrives only if the driver sent it in between (it may, on a busy
    // machine). Either way nothing else arrives.
    match s.recv(PATIENCE) {
        Ok(None) => {}
        Err(StreamRecvError::Closed(ferry_async::CloseReason::Remote { code, .. }))
            if code == ferry_async::DROPPED_CODE => {}
        other => panic!("after the drop: {other:?}"),
    }
    client.close();
    server.close();
}

/// A stream dropped by its reader: what the peer still sends is discarded as
/// it comes (its credit returns), so the writer's stream completes and ends
/// at both sides although nobody reads it, and the reader's `max_streams`
/// lets the writer open another.
fn a_dropped_stream_discards_what_comes(driver: Driver) {
    let reader = Config {
        max_streams: 1,
        max_message_size: 64 << 10,
        stream_recv_window: 128 << 10,
        ..Config::default()
    };
    let (server, client, theirs, mine) = session_with(driver, Config::default(), reader);
    let s = theirs.open_stream(StreamKind::ReliableOrdered).unwrap();
    s.send(message(s.id().0, 0, 1000)).unwrap();
    let c = mine.accept_stream(PATIENCE).unwrap().expect("a stream");
    drop(c);
    // Sixteen times the reader's window for the stream.
    for i in 1..=32 {
        s.send(message(s.id().0, i, 64_000)).unwrap();
    }
    s.finish().unwrap();
    assert_eq!(s.closed(), Some(StreamEnd::Finished), "the reader's side");
    assert_eq!(
        theirs.open_stream(StreamKind::ReliableOrdered).err(),
        Some(StreamError::TooManyStreams { max: 1 })
    );
    drop(s);
    let mut next = None;
    wait_until("the stream ends at both sides", || {
        match theirs.open_stream(StreamKind::ReliableOrdered) {
            Ok(s) => {
                next = Some(s);
                true
            }
            Err(StreamError::TooManyStreams { .. }) => false,
            Err(e) => panic!("unexpected {e}"),
        }
    });
    let s = next.unwrap();
    s.send(Bytes::from_static(b"next")).unwrap();
    let c = mine.accept_stream(PATIENCE).unwrap().expect("a stream");
    assert_eq!(&c.recv(PATIENCE).unwrap().unwrap()[..], b"next");
    client.close();
    server.close();
}

/// Deterministic bytes to echo.
fn echo_data() -> Vec<u8> {
    (0..ECHO_BYTES)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 11)) as u8)
        .collect()
}

fn server_config() -> EndpointConfig {
    EndpointConfig::server()
}

/// Byte-stream mode on tokio: 20 MB through `tokio::io::copy`, echoed back
/// by the server (also with `tokio::io::copy`) and compared; then a reset
/// read as `ConnectionReset`.
#[test]
fn tokio_io_copy_echo() {
    use ::tokio::io::{AsyncReadExt, AsyncWriteExt};
    use ferry_tokio::{Endpoint, EndpointExt, StreamIo};

    let rt = ::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = Endpoint::bind(local(), server_config()).unwrap();
        let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let echo = {
            let server = server.clone();
            ::tokio::spawn(async move {
                let session = server.accept().await.expect("a session");
                let stream = session.accept_stream().await.expect("a stream");
                let mut reader = StreamIo::new(stream.clone());
                let mut writer = StreamIo::new(stream);
                let n = ::tokio::io::copy(&mut reader, &mut writer).await.unwrap();
                writer.shutdown().await.unwrap();
                let reset = session.accept_stream().await.expect("a second stream");
                let mut buf = [0; 16];
                let err = StreamIo::new(reset).read(&mut buf).await.unwrap_err();
                (n, err)
            })
        };
        let session = client.connect(server.local_addr()).await.unwrap();
        let stream = session.open_stream(StreamKind::ReliableOrdered).unwrap();
        let data = echo_data();
        let (mut reader, mut writer) = (StreamIo::new(stream.clone()), StreamIo::new(stream));
        let send = async {
            let n = ::tokio::io::copy(&mut &data[..], &mut writer)
                .await
                .unwrap();
            writer.shutdown().await.unwrap();
            n
        };
        let receive = async {
            let mut back = Vec::with_capacity(ECHO_BYTES);
            reader.read_to_end(&mut back).await.unwrap();
            back
        };
        let (sent, back) = futures_lite::future::zip(send, receive).await;
        assert_eq!(sent as usize, ECHO_BYTES);
        assert!(back == data, "the echo differs");

        let second = session.open_stream(StreamKind::ReliableOrdered).unwrap();
        // Reset before anything was sent: the peer learns of the stream
        // and of its reset together.
        second.reset(5).unwrap();
        let (echoed, err) = echo.await.unwrap();
        assert_eq!(echoed as usize, ECHO_BYTES);
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        client.close().await;
        server.close().await;
    });
}

/// Byte-stream mode on an async-io runtime (smol or async-std): 20 MB
/// through `futures_lite::io::copy`, echoed back and compared; then a reset
/// read as `ConnectionReset`.
fn futures_io_copy_echo(server: ferry_async::Endpoint, client: ferry_async::Endpoint) {
    use ferry_async::StreamIo;
    use futures_lite::future::{block_on, zip};
    use futures_lite::{AsyncReadExt, AsyncWriteExt};

    block_on(async {
        let echo = async {
            let session = server.accept().await.expect("a session");
            let stream = session.accept_stream().await.expect("a stream");
            let mut writer = StreamIo::new(stream.clone());
            let n = futures_lite::io::copy(StreamIo::new(stream), &mut writer)
                .await
                .unwrap();
            writer.close().await.unwrap();
            let reset = session.accept_stream().await.expect("a second stream");
            let mut buf = [0; 16];
            let err = StreamIo::new(reset).read(&mut buf).await.unwrap_err();
            (n, err)
        };
        let data = echo_data();
        let talk = async {
            let session = client.connect(server.local_addr()).await.unwrap();
            let stream = session.open_stream(StreamKind::ReliableOrdered).unwrap();
            let (mut reader, mut writer) = (StreamIo::new(stream.clone()), StreamIo::new(stream));
            let send = async {
                let n = futures_lite::io::copy(&data[..], &mut writer)
                    .await
                    .unwrap();
                writer.close().await.unwrap();
                n
            };
            let receive = async {
                let mut back = Vec::with_capacity(ECHO_BYTES);
                reader.read_to_end(&mut back).await.unwrap();
                back
            };
            let (sent, back) = zip(send, receive).await;
            assert_eq!(sent as usize, ECHO_BYTES);
            assert!(back == data, "the echo differs");
            let second = session.open_stream(StreamKind::ReliableOrdered).unwrap();
            second.reset(5).unwrap();
            session
        };
        let ((echoed, err), _session) = zip(echo, talk).await;
        assert_eq!(echoed as usize, ECHO_BYTES);
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        client.close().await;
        server.close().await;
    });
}

/// [`futures_io_copy_echo`] on smol.
#[test]
fn smol_futures_io_copy_echo() {
    use ferry_smol::{Endpoint, EndpointExt};
    futures_io_copy_echo(
        Endpoint::bind(local(), server_config()).unwrap(),
        Endpoint::bind(local(), EndpointConfig::default()).unwrap(),
    );
}

/// [`futures_io_copy_echo`] on async-std.
#[test]
fn async_std_futures_io_copy_echo() {
    use ferry_async_std::{Endpoint, EndpointExt};
    futures_io_copy_echo(
        Endpoint::bind(local(), server_config()).unwrap(),
        Endpoint::bind(local(), EndpointConfig::default()).unwrap(),
    );
}

/// Byte-stream mode on plain threads: 20 MB through `std::io::copy`, echoed
/// back by a server thread (also with `std::io::copy`) and compared; then a
/// reset read as `ConnectionReset`.
#[test]
fn blocking_std_io_copy_echo() {
    use std::io::{Read, Write};

    use ferry_blocking::{Endpoint, StreamIo};

    let server = Endpoint::bind(local(), server_config()).unwrap();
    let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
    let addr = server.local_addr();
    let echo = thread::spawn(move || {
        let session = server.accept().expect("a session");
        let stream = session.accept_stream().expect("a stream");
        let mut writer = StreamIo::new(stream.clone());
        let n = std::io::copy(&mut StreamIo::new(stream), &mut writer).unwrap();
        writer.finish().unwrap();
        let reset = session.accept_stream().expect("a second stream");
        let err = StreamIo::new(reset).read(&mut [0; 16]).unwrap_err();
        server.close();
        (n, err)
    });
    let session = client.connect(addr).unwrap();
    let stream = session.open_stream(StreamKind::ReliableOrdered).unwrap();
    let data = echo_data();
    let mut reader = StreamIo::new(stream.clone());
    let back = thread::scope(|scope| {
        scope.spawn(|| {
            let mut writer = StreamIo::new(stream.clone());
            let n = std::io::copy(&mut &data[..], &mut writer).unwrap();
            assert_eq!(n as usize, ECHO_BYTES);
            writer.flush().unwrap();
            writer.finish().unwrap();
        });
        let mut back = Vec::with_capacity(ECHO_BYTES);
        reader.read_to_end(&mut back).unwrap();
        back
    });
    assert!(back == data, "the echo differs");
    let second = session.open_stream(StreamKind::ReliableOrdered).unwrap();
    second.reset(5).unwrap();
    let (echoed, err) = echo.join().unwrap();
    assert_eq!(echoed as usize, ECHO_BYTES);
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    client.close();
}

ferry_tests::on_every_driver! {
    every_kind_both_ways,
    the_peer_opens_and_this_side_accepts,
    finish_ends_after_the_last_message,
    reset_reaches_the_reader,
    too_many_streams,
    a_stream_keeps_its_session_open,
    a_dropped_stream_discards_what_comes,
}

#[test]
fn every_driver_is_covered() {
    // Adding a driver means adding it to `on_every_driver!` (harness.rs), and a
    // byte-stream test.
    assert_eq!(Driver::ALL.len(), 4);
}
