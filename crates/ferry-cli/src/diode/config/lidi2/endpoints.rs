//! Lidi 2's client endpoints: `[send] from` and `[receive] to`, as strings
//! (`"tcp[flush=true]:127.0.0.1:4000"`) or as tables (`[[send.from]]
//! tcp = "127.0.0.1:4000"`). Ferry's diode tools serve one TCP address
//! each: the first TCP endpoint is theirs, the others are warned about.

use std::net::{SocketAddr, ToSocketAddrs};

use super::super::readings::Readings;
use super::{why_flush, why_hash};
use crate::CliError;
/// One client endpoint of `[send] from` or `[receive] to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Endpoint {
    /// `tcp`, `tls` or `unix`.
    pub(super) kind: String,
    /// The address or path, as written.
    pub(super) target: String,
    /// `hash=` and `flush=` options, as written (`hash=true,flush=true`).
    pub(super) options: String,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.options.is_empty() {
            write!(f, "{}:{}", self.kind, self.target)
        } else {
            write!(f, "{}[{}]:{}", self.kind, self.options, self.target)
        }
    }
}

/// An endpoint string: `tcp:ADDR`, `tls:ADDR`, `unix:PATH`, with options
/// `tcp[flush=true,hash=false]:ADDR`.
pub(super) fn endpoint(text: &str) -> Result<Endpoint, String> {
    let Some((prefix, target)) = text.split_once(':') else {
        return Err(format!(
            "\"{text}\" has no kind: write tcp:ADDR:PORT, tls:ADDR:PORT or unix:PATH"
        ));
    };
    let (kind, options) = match prefix.strip_suffix(']') {
        Some(p) => p
            .split_once('[')
            .ok_or_else(|| format!("\"{text}\": `]` without `[`"))?,
        None => (prefix, ""),
    };
    if !matches!(kind, "tcp" | "tls" | "unix") {
        return Err(format!(
            "\"{text}\": unknown kind `{kind}` (tcp, tls or unix)"
        ));
    }
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let ok = option
            .split_once('=')
            .is_some_and(|(n, v)| matches!(n, "hash" | "flush") && matches!(v, "true" | "false"));
        if !ok {
            return Err(format!(
                "\"{text}\": unknown option `{option}` (hash=true|false, flush=true|false)"
            ));
        }
    }
    Ok(Endpoint {
        kind: kind.to_owned(),
        target: target.to_owned(),
        options: options.to_owned(),
    })
}

/// The endpoints of `value` (`from` or `to`): a list of strings, or of
/// tables (`[[send.from]] tcp = "..."`), each with the key it is read as.
pub(super) fn endpoints(
    r: &Readings,
    table: &str,
    name: &str,
    value: &toml::Value,
) -> Result<Vec<(String, Endpoint)>, CliError> {
    let key = format!("[{table}] {name}");
    let items = match value {
        toml::Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            toml::Value::String(text) => {
                out.push((key.clone(), endpoint(text).map_err(|e| r.error(&key, &e))?));
            }
            toml::Value::Table(t) => {
                let at = if i == 0 {
                    format!("{table}.{name}")
                } else {
                    format!("{table}.{name} #{}", i + 1)
                };
                let mut entries = t.iter();
                let (Some((kind, toml::Value::String(target))), None) =
                    (entries.next(), entries.next())
                else {
                    return Err(r.error(
                        &format!("[{at}]"),
                        "must hold one key, tcp = \"ADDR:PORT\", tls = \"ADDR:PORT\" or unix = \"PATH\"",
                    ));
                };
                let e = endpoint(&format!("{kind}:{target}"))
                    .map_err(|e| r.error(&format!("[{at}] {kind}"), &e))?;
                out.push((format!("[{at}] {kind}"), e));
            }
            other => {
                return Err(r.error(
                    &key,
                    &format!("{other} is not an endpoint: write \"tcp:ADDR:PORT\""),
                ));
            }
        }
    }
    Ok(out)
}

/// What Ferry does with an endpoint after the first TCP one.
fn why_endpoint(e: &Endpoint, first: Option<SocketAddr>, tool: &str, flag: &str) -> String {
    let instead = match first {
        Some(a) => format!("{tool} serves only {a}"),
        None => format!("{tool} needs a TCP address: give {flag}"),
    };
    let kind = match e.kind.as_str() {
        "tls" => "Ferry does not terminate TLS (put stunnel or HAProxy before it)",
        "unix" => "Ferry does not use Unix sockets (socat can relay one to TCP)",
        _ => "Ferry serves one TCP endpoint per process (run another diode pair for this one)",
    };
    format!("{e} is not served: {kind}; {instead}")
}

/// The options of an endpoint, as warnings: Ferry always hashes and
/// flushes.
fn option_notes(e: &Endpoint) -> Vec<String> {
    e.options
        .split(',')
        .filter_map(|o| o.split_once('='))
        .map(|(n, v)| {
            let v = v == "true";
            if n == "hash" {
                why_hash(v)
            } else {
                why_flush(v)
            }
        })
        .collect()
}

/// `from` (diode-send) or `to` (diode-receive): the first TCP endpoint
/// is Ferry's; the others are warned about.
pub(super) fn first_tcp(
    r: &mut Readings,
    list: Vec<(String, Endpoint)>,
    tool: &str,
    flag: &str,
) -> Result<Option<SocketAddr>, CliError> {
    let mut first = None;
    for (key, e) in &list {
        if first.is_none() && e.kind == "tcp" {
            let addr = e
                .target
                .to_socket_addrs()
                .map_err(|err| r.error(key, &format!("\"{}\": {err}", e.target)))?
                .find(SocketAddr::is_ipv4)
                .ok_or_else(|| r.error(key, &format!("\"{}\" has no IPv4 address", e.target)))?;
            first = Some((key.clone(), addr));
        }
    }
    let addr = first.as_ref().map(|(_, a)| *a);
    // Group the readings by key: a list of strings is one key.
    let mut keys: Vec<&String> = list.iter().map(|(k, _)| k).collect();
    keys.dedup();
    for key in keys {
        let mut notes = Vec::new();
        let mut mapped = None;
        for (k, e) in list.iter().filter(|(k, _)| k == key) {
            if first.as_ref().is_some_and(|(fk, _)| fk == k) && e.kind == "tcp" && mapped.is_none()
            {
                mapped = Some(format!(
                    "{tool} {flag} {}",
                    addr.unwrap_or_else(|| unreachable!())
                ));
            } else {
                notes.push(why_endpoint(e, addr, tool, flag));
            }
            notes.extend(option_notes(e));
        }
        if notes.is_empty() {
            r.mapped(key, mapped.unwrap_or_default());
        } else {
            r.warned(key, mapped, notes.join("; "));
        }
    }
    Ok(addr)
}
