//! `ferry config check FILE`: checks a configuration file for the diode
//! tools (its top-level keys and `[receiver]`) and the session tools (its
//! `[session]` table), and prints the settings it resolves to and how each
//! diode key was read (mapped to which Ferry setting, or ignored with a
//! warning saying why — Lidi's keys included).

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use crate::CliError;
use crate::exit::io_advice;

/// `ferry config ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file for both the diode and the session tools,
    /// and print the settings it resolves to (defaults included). Exits
    /// with 0 if both parts are valid; otherwise prints the error, naming
    /// the key (and the line when known), and exits with 1.
    Check {
        /// The TOML file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Runs a `ferry config` command.
pub fn run(command: &ConfigCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        ConfigCommand::Check { file } => check(file, out),
    }
}

fn check(file: &std::path::Path, out: &mut dyn Write) -> Result<(), CliError> {
    let text = std::fs::read_to_string(file).map_err(|e| CliError::Io {
        context: format!(
            "cannot read the configuration file {}: {}",
            file.display(),
            io_advice(&e)
        ),
        source: e,
    })?;
    let origin = file.display().to_string();
    let mut errors = Vec::new();
    match crate::diode::config::parse(&text, &origin) {
        Ok(s) => {
            writeln!(
                out,
                "{origin}: diode settings (top level and [receiver]): OK"
            )?;
            let d = &s.diode;
            let ms = |d: std::time::Duration| d.as_millis();
            for line in [
                format!("heartbeat = {} ms", ms(d.heartbeat)),
                format!("mtu = {} bytes", d.mtu),
                format!("block_size = {} bytes", d.block_size),
                format!("repair_percentage = {} %", d.repair_percentage),
                format!("bandwidth = {} Mbit/s", d.bandwidth as f64 / 1e6),
                format!("max_burst = {} bytes", d.max_burst),
                format!("max_blocks_in_flight = {}", d.max_blocks_in_flight),
                format!("max_sessions = {}", d.max_sessions),
                format!("encode_threads = {} (0: one per core)", s.sender.threads),
                format!("decode_threads = {} (0: one per core)", s.receiver.threads),
                format!("udp_send_buffer = {} bytes", s.sender.send_buffer),
                format!("udp_recv_buffer = {} bytes", s.receiver.recv_buffer),
                format!(
                    "[receiver] block_expiration_timeout = {}",
                    d.block_expiration_timeout
                        .map_or("default".into(), |t| format!("{} ms", ms(t)))
                ),
                format!(
                    "[receiver] session_expiration_timeout = {}",
                    d.session_expiration_timeout
                        .map_or("default".into(), |t| format!("{} ms", ms(t)))
                ),
            ] {
                writeln!(out, "  {line}")?;
            }
            let a = &s.addresses;
            let addr =
                |a: Option<std::net::SocketAddr>| a.map_or("not set".into(), |a| a.to_string());
            for line in [
                format!(
                    "UDP (diode-send --to, diode-receive --listen) = {}",
                    addr(a.udp_for_driver())
                ),
                format!("diode-send --listen = {}", addr(a.bind_tcp)),
                format!("diode-send --bind = {}", addr(a.bind_udp)),
                format!("diode-receive --to = {}", addr(a.to_tcp)),
            ] {
                writeln!(out, "  {line}")?;
            }
            if !s.keys.is_empty() {
                writeln!(out, "{origin}: how each diode key was read:")?;
                for key in &s.keys {
                    writeln!(out, "  {key}")?;
                }
            }
        }
        Err(e) => {
            writeln!(out, "{origin}: diode settings: INVALID")?;
            errors.push(e);
        }
    }
    match crate::session::config::parse(&text, file) {
        Ok(s) => {
            writeln!(out, "{origin}: session settings ([session]): OK")?;
            for line in s.describe() {
                writeln!(out, "  {line}")?;
            }
        }
        Err(e) => {
            writeln!(out, "{origin}: session settings: INVALID")?;
            errors.push(e);
        }
    }
    out.flush()?;
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(CliError::Failed(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\nferry: "),
        )),
    }
}
