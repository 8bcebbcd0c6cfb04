//! The diode suite: end-to-end throughput over loopback, sender and receiver
//! in processes of their own (so each side's CPU time is its own), at 0% loss
//! and at 2% loss through a lossy forwarder (`forwarder.rs`), beside the raw speed of
//! the `raptorq` codec on this machine.
//!
//! The file rows (`diode_files.rs`) send one file of the same size through
//! the real command-line tools, as an operator runs them, at the same loss
//! rates and the same falling pace.
//!
//! Nothing slows a diode sender but its pacing, so each transfer is tried at
//! falling rates until one arrives intact; the table reports that one and how
//! many faster attempts were lost (a lost attempt is reported, never counted
//! as throughput).

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::forwarder::Forwarder;
use ferry_diode::{DiodeReceiver, DiodeSender, SocketOptions};
use ferry_proto::diode::fec::{BlockParams, BlockSymbols, encode_block};
use ferry_proto::diode::{DiodeConfig, ReceiverEvent};

use crate::child::expect_line;
use crate::cpu::process_cpu;
use crate::report::Table;

/// Settings of the diode suite.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    /// MiB per transfer.
    pub(crate) size_mib: u64,
    /// Pacing rates to try, in Mbit/s, fastest first.
    pub(crate) rates: Vec<u64>,
    /// The link MTU the diode codes for.
    pub(crate) mtu: usize,
    /// MiB encoded to time the codec (half as much decoded).
    pub(crate) codec_mib: usize,
    /// The `ferry` executable whose diode tools the file rows run.
    pub(crate) ferry: std::path::PathBuf,
}

/// Arguments of one side of a transfer (a child process).
#[derive(Debug, clap::Args)]
pub(crate) struct RoleArgs {
    /// `send` or `receive`.
    role: String,
    /// Receive: where to bind. Send: where to send.
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long)]
    size_mib: u64,
    #[arg(long)]
    mtu: usize,
    /// Pacing, Mbit/s (sender).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
}

fn config(mtu: usize, rate_mbps: u64) -> DiodeConfig {
    DiodeConfig {
        mtu,
        bandwidth: rate_mbps * 1_000_000,
        ..DiodeConfig::default()
    }
}

/// One end-to-end attempt.
#[derive(Debug)]
struct Outcome {
    intact: bool,
    bytes: u64,
    elapsed: Duration,
    send_cpu: Duration,
    recv_cpu: Duration,
}

pub(crate) fn run(args: &Args) -> Result<Table, String> {
    let mut table = Table::new("diode");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "diode suite: {} MiB per transfer, mtu {}, {} cores, rates {:?} Mbit/s",
        args.size_mib, args.mtu, cores, args.rates
    );

    let rmem = read_sysctl("net/core/rmem_max");
    eprintln!(
        "net.core.rmem_max = {rmem} bytes{}",
        if rmem < 32 << 20 {
            ": socket buffers are capped below what Ferry asks for; at high rates the kernel drops datagrams (raise it with `sysctl -w net.core.rmem_max=67108864` as root)"
        } else {
            ""
        }
    );
    let (encode, decode) = codec_speed(&config(args.mtu, 1000), args.codec_mib);
    table.add(
        "diode: raptorq encode, 1 core",
        encode,
        "MB/s",
        None,
        "source symbols + 10% repair, default block",
    );
    table.add(
        "diode: raptorq decode 2% lost, 1 core",
        decode,
        "MB/s",
        None,
        "2% of source symbols replaced by repair",
    );

    for (loss, baseline) in [
        (0.0, "diode: raptorq encode, 1 core"),
        (0.02, "diode: raptorq decode 2% lost, 1 core"),
    ] {
        let mut lost = 0;
        let mut reported = false;
        for &rate in &args.rates {
            let outcome = transfer(args, rate, loss)?;
            if !outcome.intact {
                lost += 1;
                eprintln!(
                    "  {rate} Mbit/s at {:.0}% loss: session lost, slower",
                    loss * 100.0
                );
                continue;
            }
            let mb = outcome.bytes as f64 / 1e6;
            let gb = outcome.bytes as f64 / 1e9;
            let name = format!("diode: {:.0}% loss", loss * 100.0);
            table.add(
                &name,
                mb / outcome.elapsed.as_secs_f64(),
                "MB/s",
                Some(baseline),
                format!(
                    "paced at {rate} Mbit/s; {lost} faster attempt(s) lost{}",
                    if loss > 0.0 {
                        "; through the lossy forwarder"
                    } else {
                        ""
                    }
                ),
            );
            table.add(
                format!("{name}: sender CPU"),
                outcome.send_cpu.as_secs_f64() / gb,
                "s/GB",
                None,
                "",
            );
            table.add(
                format!("{name}: receiver CPU"),
                outcome.recv_cpu.as_secs_f64() / gb,
                "s/GB",
                None,
                "",
            );
            reported = true;
            break;
        }
        if !reported {
            table.add(
                format!("diode: {:.0}% loss", loss * 100.0),
                0.0,
                "MB/s",
                Some(baseline),
                "every rate tried lost the session: lower --rates",
            );
        }
        file_rows(args, loss, baseline, &mut table);
    }
    Ok(table)
}

/// The rows of one file through the command-line tools at `loss`, at the
/// fastest of the rates that delivers it whole.
fn file_rows(args: &Args, loss: f64, baseline: &str, table: &mut Table) {
    let name = format!("diode files: {:.0}% loss", loss * 100.0);
    if !args.ferry.is_file() {
        eprintln!(
            "  {name}: skipped, no ferry executable at {} (build it with `cargo build --release -p ferry-cli`, or set FERRY_BIN)",
            args.ferry.display()
        );
        return;
    }
    // Time enough for the slowest rate tried, three times over.
    let slowest = args.rates.iter().copied().min().unwrap_or(100).max(1);
    let limit = Duration::from_secs_f64(
        10.0 + 3.0 * (args.size_mib << 20) as f64 * 8.0 / (slowest as f64 * 1e6),
    );
    let mut failed = Vec::new();
    for &rate in &args.rates {
        match crate::diode_files::transfer(&args.ferry, args.size_mib, rate, loss, limit) {
            Ok(o) => {
                let bytes = (args.size_mib << 20) as f64;
                let gb = bytes / 1e9;
                table.add(
                    &name,
                    bytes / 1e6 / o.elapsed.as_secs_f64(),
                    "MB/s",
                    Some(baseline),
                    format!(
                        "{} MiB file on tmpfs through diode-send-file, diode-send, diode-receive, diode-receive-file; --bandwidth {rate}; {} faster attempt(s) lost{}",
                        args.size_mib,
                        failed.len(),
                        if loss > 0.0 { "; UDP through the lossy forwarder" } else { "" }
                    ),
                );
                table.add(
                    format!("{name} CPU"),
                    (o.send_cpu + o.recv_cpu).as_secs_f64() / gb,
                    "s/GB",
                    None,
                    format!(
                        "sending tools {:.2} s/GB + receiving tools {:.2} s/GB",
                        o.send_cpu.as_secs_f64() / gb,
                        o.recv_cpu.as_secs_f64() / gb
                    ),
                );
                return;
            }
            Err(e) => {
                eprintln!(
                    "  diode files, {rate} Mbit/s at {:.0}% loss: {e}; slower",
                    loss * 100.0
                );
                failed.push(e);
            }
        }
    }
    let last = failed.pop().unwrap_or_else(|| "no rate to try".to_owned());
    table.fail(
        &name,
        "MB/s",
        &format!("every rate tried failed; the last: {last}"),
    );
}

/// A numeric value under `/proc/sys` (0 when unreadable).
fn read_sysctl(path: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/{path}"))
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Single-thread encode and decode speed of one default block, in MB/s of
/// block data.
fn codec_speed(config: &DiodeConfig, mib: usize) -> (f64, f64) {
    let params = BlockParams {
        block_len: config.block_size as u32,
        symbol_size: config.symbol_size() as u16,
    };
    let k = params.source_symbols();
    let repair = config.repair_symbols(k);
    let data: Vec<u8> = (0..config.block_size)
        .map(|i| (i * 131 % 251) as u8)
        .collect();
    let mut symbols = Vec::new();
    encode_block(params, &data, repair, |esi, s| {
        symbols.push((esi, s.to_vec()))
    });

    let rounds = ((mib << 20) / config.block_size.max(1)).max(2);
    let start = Instant::now();
    for _ in 0..rounds {
        let mut count = 0;
        encode_block(params, &data, repair, |_, _| count += 1);
        assert_eq!(count, k + repair);
    }
    let encode = (rounds * config.block_size) as f64 / start.elapsed().as_secs_f64() / 1e6;

    let lost = (k * 2).div_ceil(100);
    let rounds = rounds / 2;
    let start = Instant::now();
    for _ in 0..rounds {
        let mut block = BlockSymbols::new(params, repair);
        for (esi, s) in symbols.iter().skip(lost).take(k + 1) {
            block.add(*esi, s);
        }
        let out = block.decode().expect("decodable");
        assert_eq!(out.len(), data.len());
    }
    let decode = (rounds * config.block_size) as f64 / start.elapsed().as_secs_f64() / 1e6;
    (encode, decode)
}

fn spawn(args: &[String]) -> Result<Child, String> {
    crate::child::command("diode-role")?
        .args(args)
        .spawn()
        .map_err(|e| format!("cannot start a child: {e}"))
}

fn parse_secs(field: Option<&str>) -> Duration {
    Duration::from_secs_f64(field.and_then(|f| f.parse().ok()).unwrap_or(0.0))
}

fn transfer(args: &Args, rate: u64, loss: f64) -> Result<Outcome, String> {
    let common = |role: &str, addr: SocketAddr| {
        vec![
            role.to_owned(),
            "--addr".into(),
            addr.to_string(),
            "--size-mib".into(),
            args.size_mib.to_string(),
            "--mtu".into(),
            args.mtu.to_string(),
            "--rate".into(),
            rate.to_string(),
        ]
    };
    let mut receiver = spawn(&common("receive", "127.0.0.1:0".parse().expect("address")))?;
    let mut from_receiver = BufReader::new(receiver.stdout.take().expect("piped"));
    let receiver_addr: SocketAddr = expect_line(&mut from_receiver, "READY")?
        .parse()
        .map_err(|e| format!("receiver address: {e}"))?;
    let relay = if loss > 0.0 {
        Some(Forwarder::start(receiver_addr, loss, 7).map_err(|e| format!("forwarder: {e}"))?)
    } else {
        None
    };
    let target = relay.as_ref().map_or(receiver_addr, Forwarder::local_addr);
    let mut sender = spawn(&common("send", target))?;
    let mut from_sender = BufReader::new(sender.stdout.take().expect("piped"));
    let sent = expect_line(&mut from_sender, "RESULT")?;
    let received = expect_line(&mut from_receiver, "RESULT")?;
    let _ = sender.wait();
    let _ = receiver.wait();
    if let Some(relay) = &relay {
        let c = relay.counts();
        eprintln!(
            "  forwarder: received {} datagrams, dropped {}, send errors {}",
            c.received.load(std::sync::atomic::Ordering::Relaxed),
            c.dropped.load(std::sync::atomic::Ordering::Relaxed),
            c.send_errors.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    drop(relay);

    let s: Vec<&str> = sent.split_whitespace().collect();
    let r: Vec<&str> = received.split_whitespace().collect();
    Ok(Outcome {
        intact: r.first() == Some(&"finished"),
        bytes: r.get(1).and_then(|b| b.parse().ok()).unwrap_or(0),
        elapsed: parse_secs(r.get(2).copied()),
        recv_cpu: parse_secs(r.get(3).copied()),
        send_cpu: parse_secs(s.first().copied()),
    })
}

/// One side of a transfer, in a child process. Prints `READY <addr>` (the
/// receiver, once bound) and `RESULT …` at the end.
pub(crate) fn role(args: &RoleArgs) -> Result<(), String> {
    let config = config(args.mtu, args.rate);
    let size = args.size_mib << 20;
    let mut out = std::io::stdout();
    match args.role.as_str() {
        "receive" => {
            let receiver = DiodeReceiver::bind(args.addr, config, SocketOptions::default())
                .map_err(|e| e.to_string())?;
            let _ = writeln!(out, "READY {}", receiver.local_addr());
            let _ = out.flush();
            let mut start = None;
            let mut bytes = 0u64;
            let outcome = loop {
                match receiver.recv_event_timeout(Duration::from_secs(20)) {
                    Ok(ReceiverEvent::SessionStarted { .. }) => start = Some(Instant::now()),
                    Ok(ReceiverEvent::Data { data, .. }) => bytes += data.len() as u64,
                    Ok(ReceiverEvent::SessionFinished { .. }) => break "finished",
                    Ok(ReceiverEvent::SessionLost { reason, .. }) => {
                        eprintln!(
                            "  receiver: session lost ({reason:?}) after {bytes} bytes; {:?}",
                            receiver.stats()
                        );
                        break "lost";
                    }
                    Ok(_) => {}
                    Err(_) => break "timeout",
                }
            };
            let elapsed = start.map_or(Duration::ZERO, |s| s.elapsed());
            let cpu = process_cpu();
            let _ = writeln!(
                out,
                "RESULT {outcome} {bytes} {:.6} {:.3}",
                elapsed.as_secs_f64(),
                cpu.as_secs_f64()
            );
            receiver.close();
            Ok(())
        }
        "send" => {
            let sender = DiodeSender::bind(
                "127.0.0.1:0".parse().expect("address"),
                args.addr,
                config,
                SocketOptions::default(),
            )
            .map_err(|e| e.to_string())?;
            let chunk: Vec<u8> = (0..1 << 20)
                .map(|i: usize| (i * 7 + i / 4099) as u8)
                .collect();
            let mut session = sender.open().map_err(|e| e.to_string())?;
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                session.write_all(&chunk[..n]).map_err(|e| e.to_string())?;
                left -= n as u64;
            }
            session.finish().map_err(|e| e.to_string())?;
            let cpu = process_cpu();
            eprintln!("  sender: {:?}", sender.stats());
            let _ = writeln!(out, "RESULT {:.3}", cpu.as_secs_f64());
            let _ = out.flush();
            sender.close().map_err(|e| e.to_string())?;
            Ok(())
        }
        other => Err(format!("unknown role `{other}`: send or receive")),
    }
}
