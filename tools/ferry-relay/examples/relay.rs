//! A lossy UDP relay on the command line.
//!
//! ```text
//! cargo run -p ferry-relay --example relay -- --listen 127.0.0.1:7000 --upstream 127.0.0.1:7001 --loss 5
//! ```
//!
//! The same conditions apply in both directions. Percentages are 0–100, times in
//! milliseconds. Prints the counters every `--stats` seconds; stop it with Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use ferry_relay::{DirectionStats, LinkConfig, Relay};

const USAGE: &str = "\
usage: relay --upstream ADDR [options]

  --listen ADDR           address clients send to (default 127.0.0.1:7000)
  --upstream ADDR         the server to forward to (required)
  --loss PCT              random loss, percent
  --burst GOOD,BAD        Gilbert-Elliott burst loss instead of --loss: mean good and
                          bad run lengths in datagrams (everything in a bad run is lost)
  --latency MS            one-way latency
  --jitter MS             extra delay, uniform in [0, MS]
  --reorder PCT           percent of datagrams held back by --reorder-delay
  --reorder-delay MS      (default 10)
  --duplicate PCT         percent of datagrams delivered twice
  --corrupt PCT           percent of datagrams with one bit flipped
  --bandwidth MBIT        bottleneck rate, megabits per second
  --queue KB              bottleneck queue, kilobytes (default 1024)
  --seed N                random seed (default 1)
  --stats SECS            print counters every SECS seconds (default 1; 0 = never)
  --duration SECS         stop after SECS seconds (default: run until killed)";

struct Args {
    listen: SocketAddr,
    upstream: SocketAddr,
    config: LinkConfig,
    seed: u64,
    stats_every: Duration,
    duration: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut listen: SocketAddr = "127.0.0.1:7000".parse().expect("valid default");
    let mut upstream = None;
    let mut config = LinkConfig::default();
    let mut reorder = 0.0;
    let mut reorder_delay = Duration::from_millis(10);
    let mut seed = 1;
    let mut stats_every = Duration::from_secs(1);
    let mut duration = None;

    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        let percent = || -> Result<f64, String> {
            let p: f64 = value.parse().map_err(|e| bad(&e))?;
            Ok(p / 100.0)
        };
        let millis = || -> Result<Duration, String> {
            let ms: f64 = value.parse().map_err(|e| bad(&e))?;
            Duration::try_from_secs_f64(ms / 1000.0).map_err(|e| bad(&e))
        };
        let seconds = || -> Result<Duration, String> {
            let s: f64 = value.parse().map_err(|e| bad(&e))?;
            Duration::try_from_secs_f64(s).map_err(|e| bad(&e))
        };
        match flag.as_str() {
            "--listen" => listen = value.parse().map_err(|e| bad(&e))?,
            "--upstream" => upstream = Some(value.parse().map_err(|e| bad(&e))?),
            "--loss" => config = config.random_loss(percent()?),
            "--burst" => {
                let (good, bad_run) = value
                    .split_once(',')
                    .ok_or_else(|| bad(&"expected GOOD,BAD"))?;
                let good: f64 = good.parse().map_err(|e| bad(&e))?;
                let bad_run: f64 = bad_run.parse().map_err(|e| bad(&e))?;
                if good < 1.0 || bad_run < 1.0 {
                    return Err(bad(&"run lengths must be at least 1"));
                }
                config = config.loss(ferry_relay::Loss::GilbertElliott {
                    p_good_to_bad: 1.0 / good,
                    p_bad_to_good: 1.0 / bad_run,
                    loss_in_good: 0.0,
                    loss_in_bad: 1.0,
                });
            }
            "--latency" => config = config.latency(millis()?),
            "--jitter" => config = config.jitter(millis()?),
            "--reorder" => reorder = percent()?,
            "--reorder-delay" => reorder_delay = millis()?,
            "--duplicate" => config = config.duplicate(percent()?),
            "--corrupt" => config = config.corrupt(percent()?),
            "--bandwidth" => {
                let mbit: f64 = value.parse().map_err(|e| bad(&e))?;
                config = config.bandwidth((mbit * 1e6) as u64);
            }
            "--queue" => {
                let kb: usize = value.parse().map_err(|e| bad(&e))?;
                config = config.queue_limit(kb * 1024);
            }
            "--seed" => seed = value.parse().map_err(|e| bad(&e))?,
            "--stats" => stats_every = seconds()?,
            "--duration" => duration = Some(seconds()?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let config = config.reorder(reorder, reorder_delay);
    config.validate()?;
    Ok(Args {
        listen,
        upstream: upstream.ok_or("--upstream is required")?,
        config,
        seed,
        stats_every,
        duration,
    })
}

fn line(name: &str, d: &DirectionStats) -> String {
    format!(
        "{name}: sent {} lost {} queue-dropped {} duplicated {} reordered {} corrupted {} blackholed {} forwarded {} ({} bytes)",
        d.link.sent,
        d.link.lost,
        d.link.queue_dropped,
        d.link.duplicated,
        d.link.reordered,
        d.link.corrupted,
        d.blackholed,
        d.forwarded,
        d.link.delivered_bytes,
    )
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("relay: {e}\n");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let relay = match Relay::start(
        args.listen,
        args.upstream,
        args.config.clone(),
        args.config.clone(),
        args.seed,
    ) {
        Ok(relay) => relay,
        Err(e) => {
            eprintln!("relay: cannot start on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    println!(
        "relaying {} -> {} with {:?}",
        relay.local_addr(),
        relay.upstream_addr(),
        args.config
    );

    let started = std::time::Instant::now();
    let tick = if args.stats_every.is_zero() {
        Duration::from_millis(200)
    } else {
        args.stats_every
    };
    loop {
        let remaining = args.duration.map(|d| d.saturating_sub(started.elapsed()));
        if remaining.is_some_and(|r| r.is_zero()) {
            break;
        }
        std::thread::sleep(remaining.map_or(tick, |r| r.min(tick)));
        if !args.stats_every.is_zero() {
            let stats = relay.stats();
            println!(
                "[{:>6.1}s] clients {}\n  {}\n  {}",
                started.elapsed().as_secs_f64(),
                stats.clients,
                line("to upstream", &stats.to_upstream),
                line("to client  ", &stats.to_client),
            );
        }
    }
    ExitCode::SUCCESS
}
