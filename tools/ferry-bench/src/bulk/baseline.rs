//! The baselines the bulk rows are compared with, as child roles: plain TCP
//! (one connection, 1 MiB writes and reads) and raw UDP (datagrams as fast
//! as the socket takes them).

use super::*;

pub(super) fn tcp_receive(args: &RoleArgs) -> Result<(), String> {
    let e = |e: std::io::Error| e.to_string();
    let listener = TcpListener::bind(args.addr).map_err(e)?;
    tell(format_args!("READY {}", listener.local_addr().map_err(e)?));
    let (mut stream, _) = listener.accept().map_err(e)?;
    let start = Instant::now();
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    while got < args.bytes {
        match stream.read(&mut buf).map_err(e)? {
            0 => break,
            n => got += n as u64,
        }
    }
    let elapsed = start.elapsed();
    // Closing tells the sender every byte arrived.
    drop(stream);
    report_received(got, elapsed);
    Ok(())
}

pub(super) fn tcp_send(args: &RoleArgs) -> Result<(), String> {
    let e = |e: std::io::Error| e.to_string();
    let mut stream = TcpStream::connect(args.addr).map_err(e)?;
    let chunk = vec![0x5au8; CHUNK];
    let start = Instant::now();
    for n in chunks(args.bytes) {
        stream.write_all(&chunk[..n]).map_err(e)?;
    }
    stream.shutdown(Shutdown::Write).map_err(e)?;
    // Until the receiver closes: every byte counted.
    let mut buf = [0u8; 64];
    while stream.read(&mut buf).map_err(e)? > 0 {}
    report_sent(start.elapsed(), args.bytes);
    Ok(())
}

/// A blocking UDP socket with the buffers Ferry's drivers ask for.
pub(crate) fn udp_socket(addr: SocketAddr) -> Result<UdpSocket, String> {
    use socket2::{Domain, Protocol, Socket, Type};
    let e = |e: std::io::Error| e.to_string();
    let socket =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(e)?;
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into()).map_err(e)?;
    Ok(socket.into())
}

/// Counts what arrives until a one-byte datagram (the end mark, sent from
/// another socket so GRO never merges it with data).
pub(super) fn udp_receive(args: &RoleArgs) -> Result<(), String> {
    use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};
    use std::io::IoSliceMut;
    let e = |e: std::io::Error| e.to_string();
    let socket = udp_socket(args.addr)?;
    tell(format_args!("READY {}", socket.local_addr().map_err(e)?));
    let gro = args.kind == Kind::UdpGso;
    let state = UdpSocketState::new(UdpSockRef::from(&socket)).map_err(e)?;
    // quinn-udp made it non-blocking; this side blocks.
    socket.set_nonblocking(false).map_err(e)?;
    // Long enough for the sender to start; short enough not to hang.
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(e)?;
    let mut buf = vec![0u8; 64 * 1500];
    let mut meta = [RecvMeta::default()];
    let mut bytes = 0u64;
    let mut first = None;
    let mut last = Instant::now();
    loop {
        let len = if gro {
            let mut bufs = [IoSliceMut::new(&mut buf)];
            match state.recv(UdpSockRef::from(&socket), &mut bufs, &mut meta) {
                Ok(_) => meta[0].len,
                Err(x) => return Err(format!("udp receive: {x}")),
            }
        } else {
            socket.recv(&mut buf).map_err(e)?
        };
        if len == 1 {
            break;
        }
        let now = Instant::now();
        first.get_or_insert(now);
        last = now;
        bytes += len as u64;
    }
    let elapsed = first.map_or(Duration::ZERO, |f| last - f);
    report_received(bytes, elapsed);
    Ok(())
}

pub(super) fn udp_send(args: &RoleArgs) -> Result<(), String> {
    use quinn_udp::{Transmit, UdpSockRef, UdpSocketState};
    let e = |e: std::io::Error| e.to_string();
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let socket = udp_socket(any)?;
    let mtu = args.mtu;
    let datagrams = args.bytes.div_ceil(mtu as u64);
    let start = Instant::now();
    if args.kind == Kind::UdpGso {
        let state = UdpSocketState::new(UdpSockRef::from(&socket)).map_err(e)?;
        socket.set_nonblocking(false).map_err(e)?;
        // One send carries at most 64 KiB.
        let segments = state.max_gso_segments().min(65_535 / mtu).max(1);
        let buf = vec![0x5au8; segments * mtu];
        let mut left = datagrams;
        while left > 0 {
            let n = left.min(segments as u64) as usize;
            let transmit = Transmit {
                destination: args.addr,
                ecn: None,
                contents: &buf[..n * mtu],
                segment_size: (n > 1).then_some(mtu),
                src_ip: None,
            };
            match state.try_send(UdpSockRef::from(&socket), &transmit) {
                Ok(()) => left -= n as u64,
                Err(x) if x.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(x) => return Err(format!("udp send: {x}")),
            }
        }
    } else {
        let buf = vec![0x5au8; mtu];
        for _ in 0..datagrams {
            match socket.send_to(&buf, args.addr) {
                Ok(_) => {}
                Err(x) if x.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(x) => return Err(format!("udp send: {x}")),
            }
        }
    }
    let elapsed = start.elapsed();
    // The end mark, from another socket, a few times.
    let mark = udp_socket(any)?;
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(20));
        mark.send_to(&[0], args.addr).map_err(e)?;
    }
    report_sent(elapsed, datagrams * mtu as u64);
    Ok(())
}
