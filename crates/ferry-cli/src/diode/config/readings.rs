//! How each key of a configuration file was read: what `ferry config check`
//! prints, and what the tools warn about.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use super::lidi;
use crate::CliError;

/// How one key of the file was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReading {
    /// The key, with its table: `udp_mtu`, `[receiver] to_tcp`.
    pub key: String,
    /// Its line in the file, when found.
    pub line: Option<usize>,
    /// The Ferry setting it became, or `None` if ignored.
    pub mapped_to: Option<String>,
    /// Why it is ignored, or what of it is: the warning the tools log.
    pub warning: Option<String>,
}

impl fmt::Display for KeyReading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{}", self.key)?;
        match (&self.mapped_to, &self.warning) {
            (Some(to), None) => write!(f, " → {to}"),
            (Some(to), Some(warning)) => write!(f, " → {to}; warning: {warning}"),
            (None, Some(why)) => write!(f, ": ignored (warning): {why}"),
            (None, None) => write!(f, ": ignored"),
        }
    }
}

/// The readings of one file, and where its keys are.
#[derive(Debug)]
pub(super) struct Readings {
    lines: HashMap<String, usize>,
    origin: String,
    keys: Vec<KeyReading>,
}

impl Readings {
    /// Starts reading `text`, named `origin` in errors.
    pub(super) fn new(text: &str, origin: Option<&Path>) -> Self {
        Self {
            lines: key_lines(text),
            origin: origin.map_or_else(|| "the flags".to_owned(), |p| p.display().to_string()),
            keys: Vec::new(),
        }
    }

    fn push(&mut self, key: &str, mapped_to: Option<String>, warning: Option<String>) {
        self.keys.push(KeyReading {
            key: key.to_owned(),
            line: self.lines.get(key).copied(),
            mapped_to,
            warning,
        });
    }

    /// `key` became the Ferry setting `to`.
    pub(super) fn mapped(&mut self, key: &str, to: String) {
        self.push(key, Some(to), None);
    }

    /// `key` was read with a warning: mapped to `to` (`None`: ignored),
    /// with `warning` saying what of it Ferry does not do, and why.
    pub(super) fn warned(&mut self, key: &str, to: Option<String>, warning: String) {
        self.push(key, to, Some(warning));
    }

    /// `key` is ignored, for the reason [`lidi::why_ignored`] gives.
    pub(super) fn ignored(&mut self, key: &str) {
        self.push(key, None, Some(lidi::why_ignored(key).to_owned()));
    }

    /// An error about `key`'s value, naming the file and the line.
    pub(super) fn error(&self, key: &str, message: &str) -> CliError {
        let at = match self.lines.get(key) {
            Some(line) => format!("{}, line {line}", self.origin),
            None => self.origin.clone(),
        };
        CliError::Invalid(format!("in {at}: `{key}` {message}"))
    }

    /// The readings, in the order of the file's lines.
    pub(super) fn finish(mut self) -> Vec<KeyReading> {
        self.keys.sort_by_key(|k| k.line.unwrap_or(usize::MAX));
        self.keys
    }
}

/// Where each `key = value` line is, keyed as `key` or `[table] key`, and
/// each table's header, as `[table]`. The entries of an array of tables
/// (`[[send.from]]`) are `send.from`, then `send.from #2`, ….
/// A plain scan (no inline tables or dotted keys): good enough to point at
/// a line, and the TOML parser has already accepted the text.
fn key_lines(text: &str) -> HashMap<String, usize> {
    let mut table = String::new();
    let mut lines = HashMap::new();
    let mut arrays: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let array = rest.starts_with('[');
            let name = rest.trim_start_matches('[').split(']').next();
            let name = name.unwrap_or("").trim().to_owned();
            table = if array {
                let n = arrays.entry(name.clone()).or_insert(0);
                *n += 1;
                if *n == 1 {
                    name
                } else {
                    format!("{name} #{n}")
                }
            } else {
                name
            };
            lines.entry(format!("[{table}]")).or_insert(i + 1);
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim().trim_matches('"');
            let full = if table.is_empty() {
                key.to_owned()
            } else {
                format!("[{table}] {key}")
            };
            lines.entry(full).or_insert(i + 1);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_their_table() {
        let lines =
            key_lines("# c\nheartbeat = 1\n[sender]\n  metrics = \"x\"\n[receiver]\nmetrics = 2\n");
        assert_eq!(lines["heartbeat"], 2);
        assert_eq!(lines["[sender] metrics"], 4);
        assert_eq!(lines["[receiver] metrics"], 6);
        assert_eq!(lines["[receiver]"], 5);
    }

    #[test]
    fn entries_of_an_array_of_tables_are_numbered() {
        let lines = key_lines("[send]\nlog = 1\n[[send.from]]\ntcp = 1\n[[send.from]]\nunix = 2\n");
        assert_eq!(lines["[send] log"], 2);
        assert_eq!(lines["[send.from]"], 3);
        assert_eq!(lines["[send.from] tcp"], 4);
        assert_eq!(lines["[send.from #2]"], 5);
        assert_eq!(lines["[send.from #2] unix"], 6);
    }
}
