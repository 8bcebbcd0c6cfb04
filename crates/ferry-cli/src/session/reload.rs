//! SIGHUP on a listener (`receive`, `forward-server`, `perf server`):
//! re-reads its authorized keys file and hands the new list to the running
//! endpoint, as `sshd` re-reads `authorized_keys` and `wg syncconf` updates
//! WireGuard's peers — revoking or adding a peer without a restart.
//!
//! - On success the new list is in force for every handshake from then on
//!   ([`Endpoint::set_authorized_keys`]), and an info line says how many keys
//!   are admitted and who was added, removed or renamed:
//!   `authorized keys reloaded from FILE: 2 keys (removed bob (88d0c2e1…);
//!   added carol (12ab34cd…))`. Sessions already open are not touched: a
//!   revoked peer's open session goes on until it ends (a restart cuts it).
//! - On failure (the file is missing, unreadable, or a line is not a key)
//!   the previous list stays in force and a warning says what to fix (the
//!   line) — SIGHUP never stops a listener.
//! - A listener without an authorized keys file warns that there is
//!   nothing to reload.
//!
//! The file reloaded is the one read at start (`--authorized-keys`, else
//! `authorized_keys_file`); the configuration file is not read again.
//!
//! [`Reload::new`] installs the SIGHUP handler (with `signal-hook`, once per
//! process): the listeners create it before they print their first line,
//! so that a SIGHUP sent as soon as that line is read finds it in place
//! (SIGHUP's default action ends the process). The other commands install
//! none and keep that default. The reload itself runs on the listener's
//! accept loop: no session is accepted between the endpoint taking the new
//! list and the listener naming peers (and, for `forward-server`, resolving
//! `--allow-peer`) from it. On platforms other than Unix there is no SIGHUP,
//! and [`Reload::hangup`] never resolves.

use std::path::PathBuf;
use std::sync::OnceLock;

use ferry_proto::AuthorizedKeys;
use ferry_tokio::Endpoint;
use tokio::sync::watch;
use tracing::{info, warn};

use super::config::SessionSettings;
use super::config::keys::{peer_label, read_authorized_keys};
use crate::CliError;

/// Counts the SIGHUPs received; the listeners watch it.
static HANGUPS: OnceLock<watch::Sender<u64>> = OnceLock::new();
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// A listener's authorized keys, and what reloads them; see the
/// [module](self).
#[derive(Debug)]
pub struct Reload {
    /// The file to re-read (`None`: the listener has none).
    file: Option<PathBuf>,
    /// The list in force.
    keys: Option<AuthorizedKeys>,
    hangups: watch::Receiver<u64>,
}

impl Reload {
    /// The keys `settings` read at start, and the SIGHUP handler installed
    /// (from now on SIGHUP no longer ends the process).
    pub fn new(settings: &SessionSettings) -> Result<Self, CliError> {
        let hangups = HANGUPS.get_or_init(|| watch::Sender::new(0));
        INSTALLED
            .get_or_init(install)
            .clone()
            .map_err(|e| CliError::Io {
                context: "cannot watch for SIGHUP (which reloads the authorized keys)".into(),
                source: std::io::Error::other(e),
            })?;
        Ok(Self {
            file: settings.authorized_keys_file.clone(),
            keys: settings.endpoint.protocol.authorized_keys.clone(),
            hangups: hangups.subscribe(),
        })
    }

    /// The list in force (`None`: any starter with an identity is
    /// admitted), to name peers with.
    pub fn keys(&self) -> Option<&AuthorizedKeys> {
        self.keys.as_ref()
    }

    /// Resolves at the next SIGHUP (several at once count as one).
    /// Cancel-safe: for `tokio::select!` loops.
    pub async fn hangup(&mut self) {
        if self.hangups.changed().await.is_err() {
            // The sender lives in a static: never dropped.
            std::future::pending::<()>().await;
        }
    }

    /// On a SIGHUP: re-reads the file and, if it is usable, hands it to
    /// `endpoint`; true if the list was replaced (then [`keys`](Self::keys)
    /// is the new one). Logs what happened either way.
    pub fn apply(&mut self, endpoint: &Endpoint) -> bool {
        self.reread(|keys| endpoint.set_authorized_keys(Some(keys.clone())))
            .is_some()
    }

    /// Re-reads the file and, if it is usable, gives it to `hand_over`
    /// before logging the reload: the new list, now in force here, or
    /// `None` (no file, or an unusable one: the previous list stays).
    fn reread(&mut self, hand_over: impl FnOnce(&AuthorizedKeys)) -> Option<&AuthorizedKeys> {
        let Some(file) = &self.file else {
            warn!(
                "SIGHUP: nothing to reload: this listener was started without an authorized \
                 keys file (--authorized-keys, or authorized_keys_file in [session]); adding \
                 one takes a restart"
            );
            return None;
        };
        match read_authorized_keys(file, "reloaded on SIGHUP") {
            Ok(new) => {
                hand_over(&new);
                info!(
                    "{}",
                    reloaded_line(&file.display().to_string(), self.keys.as_ref(), &new)
                );
                if new.is_empty() {
                    warn!(
                        file = %file.display(),
                        "the reloaded authorized keys file lists no key: every starter is refused"
                    );
                }
                self.keys = Some(new);
                self.keys.as_ref()
            }
            Err(e) => {
                warn!(
                    "SIGHUP: {e}; the previous list stays in force ({}): fix the file and send \
                     SIGHUP again",
                    self.keys
                        .as_ref()
                        .map_or_else(|| "any key".to_owned(), |k| admitted(k.len())),
                );
                None
            }
        }
    }
}

/// "1 key", "2 keys".
fn admitted(n: usize) -> String {
    crate::counted(n as u64, "key", "keys")
}

/// The line a successful reload logs: how many keys are admitted now, and
/// who was removed, added or renamed since `old`.
fn reloaded_line(file: &str, old: Option<&AuthorizedKeys>, new: &AuthorizedKeys) -> String {
    let empty = AuthorizedKeys::new();
    let old = old.unwrap_or(&empty);
    let removed: Vec<String> = old
        .iter()
        .filter(|(key, _)| !new.contains(key))
        .map(|(key, _)| peer_label(key, Some(old)))
        .collect();
    let added: Vec<String> = new
        .iter()
        .filter(|(key, _)| !old.contains(key))
        .map(|(key, _)| peer_label(key, Some(new)))
        .collect();
    let renamed: Vec<String> = new
        .iter()
        .filter_map(|(key, name)| {
            let before = old.name(key)?;
            (before != name).then(|| {
                let shown = |n: &str| {
                    if n.is_empty() {
                        "no name".to_owned()
                    } else {
                        format!("`{n}`")
                    }
                };
                format!("{}… from {} to {}", key.short(), shown(before), shown(name))
            })
        })
        .collect();
    let mut changes = Vec::new();
    for (what, list) in [("removed", removed), ("added", added), ("renamed", renamed)] {
        if !list.is_empty() {
            changes.push(format!("{what} {}", list.join(", ")));
        }
    }
    let changes = if changes.is_empty() {
        "unchanged".to_owned()
    } else {
        changes.join("; ")
    };
    format!(
        "authorized keys reloaded from {file}: {} ({changes})",
        admitted(new.len())
    )
}

#[cfg(unix)]
fn install() -> Result<(), String> {
    use signal_hook::consts::SIGHUP;
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP]).map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("ferry-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                if let Some(hangups) = HANGUPS.get() {
                    hangups.send_modify(|n| *n += 1);
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(not(unix))]
fn install() -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::{Identity, PublicKey};

    fn key(byte: u8) -> PublicKey {
        Identity::from_private_bytes([byte; 32]).public_key()
    }

    fn list(entries: &[(PublicKey, &str)]) -> AuthorizedKeys {
        let mut list = AuthorizedKeys::new();
        for (key, name) in entries {
            list.insert(*key, name);
        }
        list
    }

    #[test]
    fn the_reload_line_says_how_many_keys_and_who_was_removed_added_or_renamed() {
        let (alice, bob, carol) = (key(1), key(2), key(3));
        let old = list(&[(alice, "alice"), (bob, "bob")]);
        let new = list(&[(alice, "alice laptop"), (carol, "carol")]);
        let line = reloaded_line("/etc/ferry/authorized_keys", Some(&old), &new);
        assert_eq!(
            line,
            format!(
                "authorized keys reloaded from /etc/ferry/authorized_keys: 2 keys (removed bob \
                 ({}…); added carol ({}…); renamed {}… from `alice` to `alice laptop`)",
                bob.short(),
                carol.short(),
                alice.short()
            )
        );
        let same = reloaded_line("f", Some(&new), &new);
        assert_eq!(same, "authorized keys reloaded from f: 2 keys (unchanged)");
        let unnamed = list(&[(bob, "")]);
        let line = reloaded_line("f", Some(&unnamed), &list(&[(bob, "bob")]));
        assert!(line.contains("from no name to `bob`"), "{line}");
    }

    fn reload(file: Option<PathBuf>, keys: Option<AuthorizedKeys>) -> Reload {
        Reload {
            file,
            keys,
            hangups: watch::Sender::new(0).subscribe(),
        }
    }

    #[test]
    fn a_usable_file_replaces_the_list_and_a_broken_one_keeps_it() {
        let (alice, bob) = (key(1), key(2));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("authorized_keys");
        let mut reload = reload(Some(file.clone()), Some(list(&[(alice, "alice")])));
        std::fs::write(&file, format!("# now bob only\n{bob} bob\n")).unwrap();
        let mut handed = None;
        assert_eq!(
            reload.reread(|keys| handed = Some(keys.clone())),
            Some(&list(&[(bob, "bob")]))
        );
        assert_eq!(handed, Some(list(&[(bob, "bob")])), "the endpoint gets it");
        std::fs::write(&file, format!("{alice} alice\nnot-a-key carol\n")).unwrap();
        assert_eq!(
            reload.reread(|_| panic!("a broken file is not handed over")),
            None
        );
        assert_eq!(reload.keys(), Some(&list(&[(bob, "bob")])));
        std::fs::remove_file(&file).unwrap();
        assert_eq!(reload.reread(|_| {}), None);
        assert_eq!(reload.keys(), Some(&list(&[(bob, "bob")])));
    }

    #[test]
    fn without_a_file_there_is_nothing_to_reload() {
        let mut reload = reload(None, None);
        assert_eq!(reload.reread(|_| {}), None);
        assert_eq!(reload.keys(), None);
    }
}
