//! A lossy UDP relay on the command line.
//!
//! ```text
//! cargo run -p ferry-relay --example relay -- --listen 127.0.0.1:7000 --upstream 127.0.0.1:7001 --loss 5
//! cargo run -p ferry-relay --example relay -- --upstream 127.0.0.1:7001 --profile wifi
//! cargo run -p ferry-relay --example relay -- --profiles
//! ```
//!
//! The same conditions apply in both directions. `--profile NAME` starts from a
//! named network profile (`ferry_relay::Profile`: its bandwidth, round trip, queue
//! and impairment); the other options, wherever they appear, change it from there.
//! `--profiles` lists the profiles with what each allows. Percentages are 0–100,
//! times in milliseconds. Prints the counters every `--stats` seconds; stop it with
//! Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use ferry_relay::{DirectionStats, LinkConfig, Profile, Relay};

const USAGE: &str = "\
usage: relay --upstream ADDR [options]
       relay --profiles

  --listen ADDR           address clients send to (default 127.0.0.1:7000)
  --upstream ADDR         the server to forward to (required)
  --profile NAME          start from a named network profile (see --profiles);
                          the options below change it
  --profiles              list the network profiles and exit
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
    profile: Option<Profile>,
    /// Client → server.
    config: LinkConfig,
    /// Server → client.
    back: LinkConfig,
    seed: u64,
    stats_every: Duration,
    duration: Option<Duration>,
}

/// What the command line asks for.
enum Command {
    /// Run a relay.
    Relay(Box<Args>),
    /// List the network profiles (`--profiles`).
    ListProfiles,
}

fn parse_args() -> Result<Command, String> {
    let mut listen: SocketAddr = "127.0.0.1:7000".parse().expect("valid default");
    let mut upstream = None;
    let all: Vec<String> = std::env::args().skip(1).collect();
    if all.iter().any(|a| a == "--profiles") {
        return Ok(Command::ListProfiles);
    }
    // The profile, wherever it is given, is where the other options start from.
    let profile = match all.iter().position(|a| a == "--profile") {
        Some(i) => Some(
            all.get(i + 1)
                .ok_or("--profile needs a value")?
                .parse::<Profile>()
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let mut config = profile.map_or_else(LinkConfig::default, Profile::forward);
    let mut back = profile.map_or_else(LinkConfig::default, Profile::backward);
    let mut reorder = None;
    let mut reorder_delay = None;
    let mut seed = 1;
    let mut stats_every = Duration::from_secs(1);
    let mut duration = None;

    let mut args = all.into_iter();
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
        // Options that change the conditions change both directions.
        let mut both = |change: &dyn Fn(LinkConfig) -> LinkConfig| {
            config = change(config.clone());
            back = change(back.clone());
        };
        match flag.as_str() {
            "--listen" => listen = value.parse().map_err(|e| bad(&e))?,
            "--upstream" => upstream = Some(value.parse().map_err(|e| bad(&e))?),
            "--profile" => {}
            "--loss" => {
                let p = percent()?;
                both(&|c| c.random_loss(p));
            }
            "--burst" => {
                let (good, bad_run) = value
                    .split_once(',')
                    .ok_or_else(|| bad(&"expected GOOD,BAD"))?;
                let good: f64 = good.parse().map_err(|e| bad(&e))?;
                let bad_run: f64 = bad_run.parse().map_err(|e| bad(&e))?;
                if good < 1.0 || bad_run < 1.0 {
                    return Err(bad(&"run lengths must be at least 1"));
                }
                let loss = ferry_relay::Loss::GilbertElliott {
                    p_good_to_bad: 1.0 / good,
                    p_bad_to_good: 1.0 / bad_run,
                    loss_in_good: 0.0,
                    loss_in_bad: 1.0,
                };
                both(&|c| c.loss(loss));
            }
            "--latency" => {
                let d = millis()?;
                both(&|c| c.latency(d));
            }
            "--jitter" => {
                let d = millis()?;
                both(&|c| c.jitter(d));
            }
            "--reorder" => reorder = Some(percent()?),
            "--reorder-delay" => reorder_delay = Some(millis()?),
            "--duplicate" => {
                let p = percent()?;
                both(&|c| c.duplicate(p));
            }
            "--corrupt" => {
                let p = percent()?;
                both(&|c| c.corrupt(p));
            }
            "--bandwidth" => {
                let mbit: f64 = value.parse().map_err(|e| bad(&e))?;
                let bps = (mbit * 1e6) as u64;
                both(&|c| c.bandwidth(bps));
            }
            "--queue" => {
                let kb: usize = value.parse().map_err(|e| bad(&e))?;
                both(&|c| c.queue_limit(kb * 1024));
            }
            "--seed" => seed = value.parse().map_err(|e| bad(&e))?,
            "--stats" => stats_every = seconds()?,
            "--duration" => duration = Some(seconds()?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    // A reorder option given alone keeps the other half: the profile's, or the
    // defaults (no reordering, 10 ms).
    if reorder.is_some() || reorder_delay.is_some() {
        let apply = |c: LinkConfig| {
            let p = reorder.unwrap_or(c.reorder);
            let delay = reorder_delay.unwrap_or(if c.reorder_delay.is_zero() {
                Duration::from_millis(10)
            } else {
                c.reorder_delay
            });
            c.reorder(p, delay)
        };
        config = apply(config);
        back = apply(back);
    }
    config.validate()?;
    back.validate()?;
    Ok(Command::Relay(Box::new(Args {
        listen,
        upstream: upstream.ok_or("--upstream is required")?,
        profile,
        config,
        back,
        seed,
        stats_every,
        duration,
    })))
}

fn list_profiles() {
    println!("network profiles (--profile NAME), the same both ways:");
    for profile in Profile::all() {
        println!(
            "  {:<12} {} (allows {:.1} Mbit/s)",
            profile.name(),
            profile.summary(),
            profile.allows_bps() / 1e6
        );
    }
}

fn line(name: &str, d: &DirectionStats) -> String {
    format!(
        "{name}: sent {} lost {} outages {} queue-dropped {} duplicated {} reordered {} corrupted {} blackholed {} forwarded {} ({} bytes)",
        d.link.sent,
        d.link.lost,
        d.link.blackholed,
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
        Ok(Command::Relay(args)) => args,
        Ok(Command::ListProfiles) => {
            list_profiles();
            return ExitCode::SUCCESS;
        }
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
        args.back.clone(),
        args.seed,
    ) {
        Ok(relay) => relay,
        Err(e) => {
            eprintln!("relay: cannot start on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    if let Some(profile) = args.profile {
        println!(
            "profile {profile}: {} (allows {:.1} Mbit/s)",
            profile.summary(),
            profile.allows_bps() / 1e6
        );
    }
    println!(
        "relaying {} -> {} with {:?}",
        relay.local_addr(),
        relay.upstream_addr(),
        args.config
    );
    if args.back != args.config {
        println!("and back with {:?}", args.back);
    }

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
