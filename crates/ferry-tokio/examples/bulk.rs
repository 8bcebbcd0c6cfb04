//! One session moving N MiB (default 1024) over loopback, in clear and
//! encrypted (a pre-shared key), with TCP over loopback measured in the same
//! run for comparison.
//!
//! ```text
//! cargo run --release -p ferry-tokio --example bulk [-- MiB [clear|encrypted|tcp]]
//! ```
//!
//! With a mode, only that transfer runs (for profiling one path, e.g. under
//! `valgrind --tool=callgrind`).

use std::time::{Duration, Instant};

use ferry_proto::crypto::PreSharedKey;
use ferry_tokio::{Config, Endpoint, EndpointConfig, EndpointExt, SessionStats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHUNK: usize = 1 << 20;

/// One Ferry transfer of `mib` MiB; both ends with `psk`.
async fn ferry(
    mib: usize,
    psk: Option<PreSharedKey>,
) -> Result<(Duration, SessionStats), Box<dyn std::error::Error>> {
    let config = |server| {
        EndpointConfig::from(Config {
            accept_incoming: server,
            psk: psk.clone(),
            ..Config::default()
        })
    };
    let server = Endpoint::bind("127.0.0.1:0".parse()?, config(true))?;
    let client = Endpoint::bind("127.0.0.1:0".parse()?, config(false))?;
    let addr = server.local_addr();
    let receiver = tokio::spawn(async move {
        let session = server.accept().await.expect("a session");
        let mut got = 0usize;
        while got < mib * CHUNK {
            got += session.recv().await.expect("message").len();
        }
        got
    });
    let session = client.connect(addr).await?;
    let start = Instant::now();
    let chunk = bytes::Bytes::from(vec![0x5a; CHUNK]);
    for _ in 0..mib {
        session.send(chunk.clone()).await?;
    }
    let got = receiver.await?;
    let elapsed = start.elapsed();
    assert_eq!(got, mib * CHUNK);
    Ok((elapsed, session.stats()))
}

/// TCP over loopback, same size, same process.
async fn tcp(mib: usize) -> Result<Duration, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let taddr = listener.local_addr()?;
    let sink = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0usize;
        while got < mib * CHUNK {
            let n = s.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            got += n;
        }
        got
    });
    let chunk = vec![0x5a; CHUNK];
    let mut tcp = tokio::net::TcpStream::connect(taddr).await?;
    let start = Instant::now();
    for _ in 0..mib {
        tcp.write_all(&chunk).await?;
    }
    tcp.flush().await?;
    let tgot = sink.await?;
    let tcp_time = start.elapsed();
    assert_eq!(tgot, mib * CHUNK);
    Ok(tcp_time)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args().nth(1).map_or(Ok(1024), |a| a.parse())?;
    let total = (mib * CHUNK) as f64;
    let rate = |d: Duration| total / d.as_secs_f64() / 1e6;
    match std::env::args().nth(2).as_deref() {
        None => {}
        Some("clear") => {
            let (d, s) = ferry(mib, None).await?;
            println!(
                "ferry-tokio clear      {mib} MiB in {d:.2?}: {:.0} MB/s ({} packets, {} retransmitted)",
                rate(d),
                s.packets_sent,
                s.retransmitted
            );
            return Ok(());
        }
        Some("encrypted") => {
            let (d, s) = ferry(mib, Some(PreSharedKey::from_bytes([7; 32]))).await?;
            println!(
                "ferry-tokio encrypted  {mib} MiB in {d:.2?}: {:.0} MB/s ({} packets, {} retransmitted)",
                rate(d),
                s.packets_sent,
                s.retransmitted
            );
            return Ok(());
        }
        Some("tcp") => {
            let d = tcp(mib).await?;
            println!(
                "tcp                    {mib} MiB in {d:.2?}: {:.0} MB/s",
                rate(d)
            );
            return Ok(());
        }
        Some(other) => return Err(format!("unknown mode {other}: clear, encrypted or tcp").into()),
    }

    let (clear, stats) = ferry(mib, None).await?;
    let (encrypted, estats) = ferry(mib, Some(PreSharedKey::from_bytes([7; 32]))).await?;
    let tcp_time = tcp(mib).await?;

    println!(
        "ferry-tokio            {mib} MiB in {clear:.2?}: {:.0} MB/s ({} packets, {} retransmitted)",
        rate(clear),
        stats.packets_sent,
        stats.retransmitted
    );
    println!(
        "ferry-tokio encrypted  {mib} MiB in {encrypted:.2?}: {:.0} MB/s ({} packets, {} retransmitted)",
        rate(encrypted),
        estats.packets_sent,
        estats.retransmitted
    );
    println!(
        "tcp                    {mib} MiB in {tcp_time:.2?}: {:.0} MB/s",
        rate(tcp_time)
    );
    println!(
        "ratios                 {:.2} of TCP; encrypted {:.2} of clear",
        rate(clear) / rate(tcp_time),
        rate(encrypted) / rate(clear)
    );
    Ok(())
}
