//! Which TCP targets `forward-server` connects to, for whom.
//!
//! - `--allow HOST:PORT` (repeatable): a target any admitted peer may
//!   reach. The first is the default target, used when `forward` names
//!   none.
//! - `--allow-peer PEER=HOST:PORT` (repeatable; needs `--identity`): a
//!   target only the peer identity PEER may reach. PEER is a name from the
//!   authorized keys file (every key listed under that name) or a public
//!   key (64 hexadecimal digits). A peer with no `--allow` default takes
//!   the first of its own targets as its default.
//!
//! On SIGHUP the rules are resolved again against the reloaded authorized
//! keys ([`Allowed::reloaded`]): a key newly listed under a rule's name
//! gets its targets; a rule whose name (or key) left the file applies to no
//! one, with a warning — its peer no longer gets in anyway.
//!
//! A target named by `forward` is allowed when it equals an allowed entry
//! as written (host names compared without case), or when both are IP
//! addresses with the same address and port.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ferry_proto::{AuthorizedKeys, PublicKey};
use tracing::{info, warn};

use crate::CliError;
use crate::session::config::keys::peer_label;

/// One `--allow-peer PEER=HOST:PORT`, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRule {
    /// A name from the authorized keys file, or a public key in hex.
    pub peer: String,
    /// The target that peer may reach.
    pub target: String,
}

/// Parses `PEER=HOST:PORT` (for clap); the name is everything before the
/// last `=`.
pub fn peer_rule(s: &str) -> Result<PeerRule, String> {
    let (peer, target) = s.rsplit_once('=').ok_or_else(|| {
        format!("`{s}` is not PEER=HOST:PORT (e.g. alice=127.0.0.1:5432, PEER a name from the authorized keys or a public key)")
    })?;
    let peer = peer.trim();
    if peer.is_empty() {
        return Err(format!("`{s}` names no peer: give PEER=HOST:PORT"));
    }
    Ok(PeerRule {
        peer: peer.to_owned(),
        target: super::host_port(target)?,
    })
}

/// The targets a forward-server allows: to everyone, and per peer identity.
#[derive(Debug, Clone, Default)]
pub struct Allowed {
    shared: Vec<String>,
    /// The `--allow-peer` rules as given, to resolve again on a reload.
    rules: Vec<PeerRule>,
    per_peer: BTreeMap<PublicKey, Vec<String>>,
    names: Option<AuthorizedKeys>,
}

/// Adds `target` to the targets of each of `keys`.
fn grant(per_peer: &mut BTreeMap<PublicKey, Vec<String>>, keys: Vec<PublicKey>, target: &str) {
    for key in keys {
        let targets = per_peer.entry(key).or_default();
        if !targets.iter().any(|t| t == target) {
            targets.push(target.to_owned());
        }
    }
}

impl Allowed {
    /// Resolves the rules against the listener's authorized keys (`names`);
    /// `identity` says whether this side has one (peer rules need it).
    pub fn new(
        shared: &[String],
        rules: &[PeerRule],
        names: Option<&AuthorizedKeys>,
        identity: bool,
    ) -> Result<Self, CliError> {
        let mut per_peer: BTreeMap<PublicKey, Vec<String>> = BTreeMap::new();
        if !rules.is_empty() && !identity {
            return Err(CliError::Missing(
                "--allow-peer needs identities: give forward-server --identity FILE (and each \
                 peer its own; make them with `ferry keygen FILE`), or use --allow"
                    .into(),
            ));
        }
        for rule in rules {
            grant(&mut per_peer, resolve(&rule.peer, names)?, &rule.target);
        }
        Ok(Self {
            shared: shared.to_vec(),
            rules: rules.to_vec(),
            per_peer,
            names: names.cloned(),
        })
    }

    /// The same rules resolved against a reloaded list of authorized keys
    /// (SIGHUP): a name now covers the keys listed under it in `names`. A
    /// rule that was refused at start would be refused now too, but a
    /// reload never stops the server: such a rule applies to no one (its
    /// peer no longer gets in anyway), and a warning says so.
    pub fn reloaded(&self, names: Option<&AuthorizedKeys>) -> Self {
        let mut per_peer = BTreeMap::new();
        for rule in &self.rules {
            let is_key = rule.peer.len() == 64 && rule.peer.bytes().all(|b| b.is_ascii_hexdigit());
            match resolve(&rule.peer, names) {
                Ok(keys) => grant(&mut per_peer, keys, &rule.target),
                Err(_) if is_key => warn!(
                    "--allow-peer {}…={}: that key is no longer in the authorized keys: it gets                      no new session, and the rule applies to no one until the key is listed again",
                    &rule.peer[..8],
                    rule.target
                ),
                Err(_) => warn!(
                    "--allow-peer {}={}: no key is named `{}` in the authorized keys any more:                      that peer gets no new session, and the rule applies to no one until a key is                      listed under that name again",
                    rule.peer, rule.target, rule.peer
                ),
            }
        }
        let allowed = Self {
            shared: self.shared.clone(),
            rules: self.rules.clone(),
            per_peer,
            names: names.cloned(),
        };
        if !self.rules.is_empty() {
            let targets = allowed.describe();
            if targets.is_empty() {
                warn!(
                    "forward-server now connects nowhere: no --allow, and no --allow-peer rule                      names a listed key"
                );
            } else {
                info!("forward-server now connects to {targets} only (for new sessions)");
            }
        }
        allowed
    }

    /// What the first line says this server connects to.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.shared.is_empty() {
            parts.push(self.shared.join(", "));
        }
        for (key, targets) in &self.per_peer {
            parts.push(format!(
                "{} for {}",
                targets.join(", "),
                peer_label(key, self.names.as_ref())
            ));
        }
        parts.join("; ")
    }

    /// The target to connect to for `requested` (empty: the default) from
    /// `peer`, or why it is refused (the text `forward` logs).
    pub fn check(&self, requested: &str, peer: Option<&PublicKey>) -> Result<String, String> {
        let own = peer
            .and_then(|k| self.per_peer.get(k))
            .map_or(&[][..], Vec::as_slice);
        let found = if requested.is_empty() {
            self.shared.first().or_else(|| own.first()).cloned()
        } else {
            matching(requested, own)
                .or_else(|| matching(requested, &self.shared))
                .map(str::to_owned)
        };
        if let Some(target) = found {
            return Ok(target);
        }
        let whom = match peer {
            Some(key) if !self.per_peer.is_empty() => {
                format!(" for peer {}", peer_label(key, self.names.as_ref()))
            }
            _ => String::new(),
        };
        let allowed: Vec<&str> = own.iter().chain(&self.shared).map(String::as_str).collect();
        let wanted = if requested.is_empty() {
            "no target named, and there is no default".to_owned()
        } else {
            format!("target {requested:?} is not allowed")
        };
        Err(if allowed.is_empty() {
            format!(
                "{wanted}{whom} by this forward-server: it allows this peer no target (no --allow, no --allow-peer for it)"
            )
        } else {
            format!(
                "{wanted}{whom} by this forward-server (allowed{}: {})",
                if whom.is_empty() { "" } else { " for it" },
                allowed.join(", ")
            )
        })
    }
}

/// The keys `peer` names: a public key, or every key listed under that name.
fn resolve(peer: &str, names: Option<&AuthorizedKeys>) -> Result<Vec<PublicKey>, CliError> {
    if peer.len() == 64 && peer.bytes().all(|b| b.is_ascii_hexdigit()) {
        let key = PublicKey::parse(peer)
            .map_err(|e| CliError::Invalid(format!("--allow-peer {peer}: {e}")))?;
        if names.is_some_and(|list| !list.contains(&key)) {
            return Err(CliError::Invalid(format!(
                "--allow-peer {peer}: that key is not in the authorized keys, so it can never \
                 connect: add it there (with a name) first"
            )));
        }
        return Ok(vec![key]);
    }
    let Some(list) = names else {
        return Err(CliError::Invalid(format!(
            "--allow-peer {peer}=…: names come from the authorized keys file, and there is none: \
             give --authorized-keys FILE, or the peer's public key (64 hexadecimal digits) \
             instead of a name"
        )));
    };
    let keys: Vec<PublicKey> = list
        .iter()
        .filter(|(_, name)| *name == peer)
        .map(|(key, _)| *key)
        .collect();
    if keys.is_empty() {
        let known: Vec<&str> = list
            .iter()
            .map(|(_, n)| n)
            .filter(|n| !n.is_empty())
            .collect();
        return Err(CliError::Invalid(format!(
            "--allow-peer {peer}=…: no key is named `{peer}` in the authorized keys (names there: {}); \
             the name is what follows the key on its line",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    }
    Ok(keys)
}

/// The entry of `allow` that `target` names.
pub fn matching<'a>(target: &str, allow: &'a [String]) -> Option<&'a str> {
    let addr = target.parse::<SocketAddr>().ok();
    allow
        .iter()
        .find(|a| {
            a.eq_ignore_ascii_case(target)
                || (addr.is_some() && a.parse::<SocketAddr>().ok() == addr)
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::Identity;

    fn key(byte: u8) -> PublicKey {
        Identity::from_private_bytes([byte; 32]).public_key()
    }

    #[test]
    fn only_allowed_targets() {
        let allow = Allowed::new(
            &["127.0.0.1:5432".to_owned(), "DB.example.org:80".to_owned()],
            &[],
            None,
            false,
        )
        .unwrap();
        assert_eq!(allow.check("", None).unwrap(), "127.0.0.1:5432");
        assert_eq!(
            allow.check("127.0.0.1:5432", None).unwrap(),
            "127.0.0.1:5432"
        );
        assert_eq!(
            allow.check("db.example.org:80", None).unwrap(),
            "DB.example.org:80"
        );
        let why = allow.check("127.0.0.1:22", None).unwrap_err();
        assert!(why.contains("127.0.0.1:5432, DB.example.org:80"), "{why}");
        assert!(allow.check("evil.example.org:5432", None).is_err());
        assert!(Allowed::default().check("", None).is_err());
    }

    #[test]
    fn a_peer_rule_allows_that_peer_only() {
        let (alice, bob) = (key(1), key(2));
        let names = AuthorizedKeys::parse(&format!("{alice} alice\n{bob} bob\n")).unwrap();
        let rules = [
            peer_rule("alice=127.0.0.1:22").unwrap(),
            peer_rule(&format!("{bob}=10.0.0.1:80")).unwrap(),
        ];
        let allow =
            Allowed::new(&["127.0.0.1:5432".to_owned()], &rules, Some(&names), true).unwrap();
        assert_eq!(
            allow.check("127.0.0.1:22", Some(&alice)).unwrap(),
            "127.0.0.1:22"
        );
        assert_eq!(allow.check("", Some(&alice)).unwrap(), "127.0.0.1:5432");
        let why = allow.check("127.0.0.1:22", Some(&bob)).unwrap_err();
        assert!(why.contains("for peer bob ("), "{why}");
        assert!(why.contains("10.0.0.1:80, 127.0.0.1:5432"), "{why}");
        assert_eq!(
            allow.check("10.0.0.1:80", Some(&bob)).unwrap(),
            "10.0.0.1:80"
        );
        // Without a shared default, a peer's first own target is its default.
        let allow = Allowed::new(&[], &rules, Some(&names), true).unwrap();
        assert_eq!(allow.check("", Some(&alice)).unwrap(), "127.0.0.1:22");
        assert!(allow.check("", Some(&key(3))).is_err());
    }

    #[test]
    fn a_reload_resolves_the_rules_again_and_a_vanished_name_admits_no_one() {
        let (alice, bob, laptop) = (key(1), key(2), key(3));
        let names = AuthorizedKeys::parse(&format!("{alice} alice\n{bob} bob\n")).unwrap();
        let rules = [
            peer_rule("alice=127.0.0.1:22").unwrap(),
            peer_rule(&format!("{bob}=10.0.0.1:80")).unwrap(),
        ];
        let allow = Allowed::new(&[], &rules, Some(&names), true).unwrap();
        // Alice's laptop is added under her name; bob's line is removed.
        let reloaded = AuthorizedKeys::parse(&format!("{alice} alice\n{laptop} alice\n")).unwrap();
        let allow = allow.reloaded(Some(&reloaded));
        for key in [alice, laptop] {
            assert_eq!(allow.check("", Some(&key)).unwrap(), "127.0.0.1:22");
        }
        assert!(allow.check("10.0.0.1:80", Some(&bob)).is_err());
        // Alice leaves too: her rule applies to no one, and nothing fails.
        let allow = allow.reloaded(Some(&AuthorizedKeys::new()));
        assert!(allow.check("127.0.0.1:22", Some(&alice)).is_err());
        assert_eq!(allow.describe(), "");
        // Listed again: the rule applies again.
        let allow = allow.reloaded(Some(&names));
        assert_eq!(allow.check("", Some(&alice)).unwrap(), "127.0.0.1:22");
        assert_eq!(
            allow.check("10.0.0.1:80", Some(&bob)).unwrap(),
            "10.0.0.1:80"
        );
    }

    #[test]
    fn peer_rules_that_cannot_apply_are_refused_at_start() {
        let alice = key(1);
        let names = AuthorizedKeys::parse(&format!("{alice} alice\n")).unwrap();
        let rule = |s: &str| [peer_rule(s).unwrap()];
        let err = |r: Result<Allowed, CliError>| r.unwrap_err().to_string();
        assert!(
            err(Allowed::new(&[], &rule("alice=h:1"), Some(&names), false)).contains("--identity")
        );
        assert!(
            err(Allowed::new(&[], &rule("carol=h:1"), Some(&names), true))
                .contains("names there: alice")
        );
        assert!(
            err(Allowed::new(&[], &rule("alice=h:1"), None, true)).contains("--authorized-keys")
        );
        let stranger = format!("{}=h:1", key(9));
        assert!(
            err(Allowed::new(&[], &rule(&stranger), Some(&names), true))
                .contains("not in the authorized keys")
        );
        assert!(peer_rule("h:1").is_err());
        assert!(peer_rule("=h:1").is_err());
        assert_eq!(peer_rule("a=b=h:1").unwrap().peer, "a=b");
    }
}
