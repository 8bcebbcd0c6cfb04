//! `ferry keygen`: the keys the session tools read.
//!
//! - `ferry keygen FILE`: a new identity (an X25519 key pair drawn from the
//!   operating system's random generator): the private key, 64 hexadecimal
//!   digits and a newline, goes to FILE, created with mode 0600 on Unix;
//!   the public key goes to `FILE.pub` and to stdout, alone on its line
//!   (`ferry keygen id.key > mine.pub` works); stderr says where the files
//!   went. `--identity FILE` reads the first; peers put the second in
//!   their `--authorized-keys` or `--peer-key`.
//! - `ferry keygen --public FILE`: prints the public key of the private key
//!   in FILE.
//! - `ferry keygen --psk FILE`: a new pre-shared key for `--key-file`, 64
//!   hexadecimal digits, mode 0600; nothing on stdout.
//!
//! Each file is written to a temporary file beside it and then given its
//! name, so it never exists half written; an existing file is kept unless
//! `--force`.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use ferry_proto::crypto::PreSharedKey;
use ferry_proto::{Identity, PublicKey};
use zeroize::Zeroize;

use crate::CliError;
use crate::exit::io_advice;
use crate::session::config::keys::read_identity;
use crate::session::disk::persist;

/// Arguments of `ferry keygen`.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// The private key file to create (the public key goes to FILE.pub);
    /// with --public, the private key file to read.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the public key of the existing private key FILE; write
    /// nothing.
    #[arg(long, conflicts_with_all = ["psk", "force"])]
    pub public: bool,
    /// Create a pre-shared key for --key-file (64 hexadecimal digits,
    /// mode 0600) instead of an identity; copy it to the other side.
    #[arg(long)]
    pub psk: bool,
    /// Replace FILE (and FILE.pub) if they exist. The key they held is
    /// lost: peers that know it must be given the new one.
    #[arg(long)]
    pub force: bool,
}

/// Runs `ferry keygen`; the public key goes to `out`, notes to stderr
/// unless `quiet`.
pub fn run(args: &KeygenArgs, quiet: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let file = &args.file;
    if args.public {
        let identity = read_identity(file, "ferry keygen --public")?;
        writeln!(out, "{}", identity.public_key())?;
        out.flush()?;
        return Ok(());
    }
    if args.psk {
        refuse_existing(file, args.force)?;
        let mut bytes = random_key()?;
        let key = PreSharedKey::from_bytes(bytes);
        bytes.zeroize();
        let mut text = key.to_hex();
        text.push('\n');
        write_atomically(file, text.as_bytes(), 0o600, args.force)?;
        if !quiet {
            eprintln!(
                "ferry: wrote a pre-shared key to {} (mode 0600): copy it to the other side over a \
                 channel you trust, and give both sides `--key-file FILE`",
                file.display()
            );
        }
        return Ok(());
    }
    let public_file = public_path(file);
    refuse_existing(file, args.force)?;
    refuse_existing(&public_file, args.force)?;
    let mut bytes = random_key()?;
    let identity = Identity::from_private_bytes(bytes);
    bytes.zeroize();
    let mut private = identity.private_hex();
    private.push('\n');
    write_atomically(file, private.as_bytes(), 0o600, args.force)?;
    let public = identity.public_key();
    write_atomically(
        &public_file,
        public_line(&public).as_bytes(),
        0o644,
        args.force,
    )?;
    writeln!(out, "{public}")?;
    out.flush()?;
    if !quiet {
        eprintln!(
            "ferry: wrote the private key to {} (mode 0600: keep it there, give it to \
             --identity) and the public key to {} (give it to peers: a listener's \
             --authorized-keys, a starter's --peer-key)",
            file.display(),
            public_file.display()
        );
    }
    Ok(())
}

/// `FILE.pub`.
pub fn public_path(file: &Path) -> PathBuf {
    let mut name = OsString::from(file.as_os_str());
    name.push(".pub");
    PathBuf::from(name)
}

fn public_line(key: &PublicKey) -> String {
    format!("{key}\n")
}

/// 32 bytes from the operating system's random generator.
fn random_key() -> Result<[u8; 32], CliError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| CliError::Io {
        context: "cannot draw a key from the operating system's random generator".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(bytes)
}

fn exists_error(path: &Path) -> CliError {
    CliError::Io {
        context: format!(
            "{} exists: kept; give --force to replace it (the key it holds is then lost), or \
             choose another name",
            path.display()
        ),
        source: std::io::ErrorKind::AlreadyExists.into(),
    }
}

/// Fails if `path` exists and may not be replaced: checked before any key
/// is drawn or file written.
fn refuse_existing(path: &Path, force: bool) -> Result<(), CliError> {
    if !force && std::fs::symlink_metadata(path).is_ok() {
        return Err(exists_error(path));
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file beside it, created
/// with `mode` (Unix) so that the content is never readable more widely,
/// synced, then given the name: replacing a file there only if `replace`.
pub(crate) fn write_atomically(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    replace: bool,
) -> Result<(), CliError> {
    let fail = |what: &str, e: std::io::Error| CliError::Io {
        context: format!("cannot {what} {}: {}", path.display(), io_advice(&e)),
        source: e,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| CliError::Invalid(format!("{} names no file", path.display())))?;
    let temp = dir.join(format!(
        ".{}.ferry-tmp-{:016x}",
        name.to_string_lossy(),
        crate::diode::random_u64()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(&temp)
        .map_err(|e| fail("create a file beside", e))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| fail("write", e))
        .and_then(|()| {
            persist(&temp, path, replace).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    exists_error(path)
                } else {
                    fail("name", e)
                }
            })
        });
    drop(file);
    match written {
        Ok(true) => Ok(()),
        Ok(false) => {
            let _ = std::fs::remove_file(&temp);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_replaces_another_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_atomically(&path, b"one\n", 0o600, false).unwrap();
        let err = write_atomically(&path, b"two\n", 0o600, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        write_atomically(&path, b"two\n", 0o600, true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn the_public_file_is_named_after_the_private_one() {
        assert_eq!(
            public_path(Path::new("keys/id.key")),
            PathBuf::from("keys/id.key.pub")
        );
    }
}
