//! The key files of the session tools: the pre-shared key (`--key-file`,
//! `key_file`), this side's identity (`--identity`, `identity_file`), the
//! listener's list of admitted keys (`--authorized-keys`,
//! `authorized_keys_file`) and a starter's pin on the listener's public key
//! (`--peer-key`, `peer_key`); and how a peer is named in logs and
//! summaries.
//!
//! Private key files (pre-shared key, identity) are read with a warning,
//! as ssh gives one, when other users may read them.

use std::path::{Path, PathBuf};

use ferry_proto::crypto::PreSharedKey;
use ferry_proto::{AuthorizedKeys, Identity, PublicKey};
use tracing::warn;
use zeroize::Zeroizing;

use crate::CliError;
use crate::exit::io_advice;

/// A starter's pin on the listener's public key, and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerKey {
    /// The listener's public key.
    pub key: PublicKey,
    /// The file it was read from (`None`: given as hexadecimal digits).
    pub file: Option<PathBuf>,
}

fn read_text(path: &Path, what: &str, kind: &str) -> Result<Zeroizing<String>, CliError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| CliError::Io {
            context: format!(
                "cannot read the {kind} {} ({what}): {}",
                path.display(),
                io_advice(&e)
            ),
            source: e,
        })
}

/// Reads a pre-shared key file; `what` names where its path came from.
pub fn read_key(path: &Path, what: &str) -> Result<PreSharedKey, CliError> {
    let text = read_text(path, what, "key file")?;
    warn_if_readable_by_others(path);
    PreSharedKey::parse(&text).map_err(|e| {
        CliError::Authentication(format!(
            "the key file {} ({what}) is unusable: {e}; make one with `ferry keygen --psk {}` \
             and copy it to the other side",
            path.display(),
            path.display()
        ))
    })
}

/// Reads this side's identity, a private key file as `ferry keygen FILE`
/// writes it; `what` names where its path came from.
pub fn read_identity(path: &Path, what: &str) -> Result<Identity, CliError> {
    if path.extension().is_some_and(|e| e == "pub") {
        return Err(CliError::Authentication(format!(
            "{} ({what}) is a public key file (.pub): give the private key file, the one \
             without .pub",
            path.display()
        )));
    }
    let text = read_text(path, what, "identity file")?;
    warn_if_readable_by_others(path);
    Identity::parse(&text).map_err(|e| {
        CliError::Authentication(format!(
            "the identity file {} ({what}) is unusable: {e}; it must hold a private key as \
             `ferry keygen FILE` writes it",
            path.display()
        ))
    })
}

/// Reads a listener's list of admitted starter keys: one public key per
/// line, optionally followed by a name, `#` comments.
pub fn read_authorized_keys(path: &Path, what: &str) -> Result<AuthorizedKeys, CliError> {
    let text = read_text(path, what, "authorized keys file")?;
    AuthorizedKeys::parse(&text).map_err(|e| {
        CliError::Authentication(format!(
            "the authorized keys file {} ({what}) is unusable: {e}; each line holds a public key \
             (64 hexadecimal digits, as `ferry keygen` prints it) and optionally a name after it",
            path.display()
        ))
    })
}

/// Reads a starter's pin on the listener's key. The rule: a value of
/// exactly 64 hexadecimal digits is the key itself; anything else is the
/// path of a file holding it (such as the `FILE.pub` of `ferry keygen`),
/// whose first line that is neither blank nor a `#` comment starts with the
/// key. A relative path is taken from `base` when given (the configuration
/// file's directory).
pub fn read_peer_key(value: &str, base: Option<&Path>, what: &str) -> Result<PeerKey, CliError> {
    let value = value.trim();
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        let key = PublicKey::parse(value).map_err(|e| CliError::Invalid(format!("{what}: {e}")))?;
        return Ok(PeerKey { key, file: None });
    }
    let path = match base {
        Some(dir) if Path::new(value).is_relative() => dir.join(value),
        _ => PathBuf::from(value),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let hint = if value.bytes().all(|b| b.is_ascii_hexdigit()) {
            format!(
                "it has {} hexadecimal digits where a key has 64, and no file has that name",
                value.len()
            )
        } else {
            io_advice(&e).to_string()
        };
        CliError::Io {
            context: format!(
                "{what} {value}: neither a public key (64 hexadecimal digits) nor a readable \
                 file ({hint}); give the listener's public key as `ferry keygen --public FILE` \
                 prints it there, or the path of its .pub file"
            ),
            source: e,
        }
    })?;
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("");
    let key = PublicKey::parse(first).map_err(|e| {
        CliError::Authentication(format!(
            "the public key file {} ({what}) is unusable: {e}; give the listener's .pub file, \
             or its public key as `ferry keygen --public FILE` prints it there",
            path.display()
        ))
    })?;
    Ok(PeerKey {
        key,
        file: Some(path),
    })
}

/// How a peer is named in logs and summaries: its name from the
/// authorized keys with the start of its key, `alice (3f1c09ab…)`, or the
/// start of its key alone, `3f1c09ab…`.
pub fn peer_label(key: &PublicKey, names: Option<&AuthorizedKeys>) -> String {
    match names.and_then(|list| list.name(key)) {
        Some(name) if !name.is_empty() => format!("{name} ({}…)", key.short()),
        _ => format!("{}…", key.short()),
    }
}

/// Warns when a private key file may be read by other users (Unix).
#[cfg(unix)]
pub(crate) fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        warn!(
            file = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the private key file is readable by other users: `chmod 600` it"
        );
    }
}

/// Warns when a private key file may be read by other users (Unix only).
#[cfg(not(unix))]
pub(crate) fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

    #[test]
    fn a_peer_key_is_hex_digits_or_a_file_holding_them() {
        let given = read_peer_key(KEY, None, "--peer-key").unwrap();
        assert_eq!(given.key.to_string(), KEY);
        assert_eq!(given.file, None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("server.pub"),
            format!("# the server\n\n{KEY} server\n"),
        )
        .unwrap();
        let read = read_peer_key("server.pub", Some(dir.path()), "peer_key").unwrap();
        assert_eq!(read.key, given.key);
        assert_eq!(read.file, Some(dir.path().join("server.pub")));
        // 63 digits and no such file: said so.
        let err = read_peer_key(&KEY[1..], None, "--peer-key")
            .unwrap_err()
            .to_string();
        assert!(err.contains("63 hexadecimal digits"), "{err}");
        std::fs::write(dir.path().join("bad.pub"), "not a key\n").unwrap();
        let err = read_peer_key("bad.pub", Some(dir.path()), "peer_key").unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::Authentication);
    }

    #[test]
    fn a_public_key_file_is_not_taken_for_an_identity() {
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join("id.key.pub");
        std::fs::write(&public, format!("{KEY}\n")).unwrap();
        let err = read_identity(&public, "--identity")
            .unwrap_err()
            .to_string();
        assert!(err.contains("without .pub"), "{err}");
    }

    #[test]
    fn peers_are_named_from_the_list_when_listed() {
        let key = PublicKey::parse(KEY).unwrap();
        let list = AuthorizedKeys::parse(&format!("{KEY} alice laptop\n")).unwrap();
        assert_eq!(peer_label(&key, Some(&list)), "alice laptop (8520f009…)");
        assert_eq!(peer_label(&key, None), "8520f009…");
    }
}
