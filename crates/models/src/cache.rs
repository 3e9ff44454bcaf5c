//! Cache files, the `.sha256` sidecar, `resolve` and `verify`.

use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ModelsError, Result};
use crate::registry::{ModelEntry, Registry};

pub(crate) const BUF_SIZE: usize = 1 << 20;
const PROGRESS_EVERY: u64 = 256 << 20;

/// Outcome of a successful [`Registry::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub name: String,
    pub path: PathBuf,
    pub size_bytes: u64,
    /// The (matching) sha256 of the file.
    pub sha256: String,
    /// Time spent hashing.
    pub elapsed: Duration,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: OK sha256 {} ({}, {}, hashed in {:.1}s)",
            self.name,
            self.sha256,
            crate::status::human_bytes(self.size_bytes),
            self.path.display(),
            self.elapsed.as_secs_f64()
        )
    }
}

/// What the cache holds for one model, judged without hashing (size and sidecar only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheState {
    /// No `<name>.gguf`.
    Missing,
    /// Present with the right size, but no up-to-date sidecar: not hashed yet.
    Unverified,
    /// Present and the sidecar (same size and mtime) records the expected sha256.
    Verified,
    /// Wrong size, or the sidecar records a different sha256.
    Corrupt,
}

impl fmt::Display for CacheState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CacheState::Missing => "missing",
            CacheState::Unverified => "unverified",
            CacheState::Verified => "verified",
            CacheState::Corrupt => "corrupt",
        })
    }
}

/// Contents of `<name>.gguf.sha256`: `size mtime_ns sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sidecar {
    pub size: u64,
    pub mtime_ns: u128,
    pub sha256: String,
}

pub(crate) fn sidecar_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

fn mtime_ns(meta: &fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub(crate) fn read_sidecar(file: &Path) -> Option<Sidecar> {
    let text = fs::read_to_string(sidecar_path(file)).ok()?;
    let mut it = text.split_whitespace();
    let size = it.next()?.parse().ok()?;
    let mtime_ns = it.next()?.parse().ok()?;
    let sha256 = it.next()?.to_string();
    if sha256.len() != 64 || it.next().is_some() {
        return None;
    }
    Some(Sidecar {
        size,
        mtime_ns,
        sha256,
    })
}

/// Record `sha256` for `file` at its current size and mtime. Best effort: a read-only cache only
/// means the next resolve hashes again.
pub(crate) fn write_sidecar(file: &Path, sha256: &str) {
    let result = (|| -> std::io::Result<()> {
        let meta = fs::metadata(file)?;
        let side = sidecar_path(file);
        let mut tmp = side.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        fs::write(
            &tmp,
            format!("{} {} {}\n", meta.len(), mtime_ns(&meta), sha256),
        )?;
        fs::rename(&tmp, &side)
    })();
    if let Err(e) = result {
        tracing::warn!(file = %file.display(), error = %e, "could not write sha256 sidecar");
    }
}

/// The sidecar's hash if it matches the file's current size and mtime.
fn fresh_sidecar_hash(file: &Path, meta: &fs::Metadata) -> Option<String> {
    let side = read_sidecar(file)?;
    (side.size == meta.len() && side.mtime_ns == mtime_ns(meta)).then_some(side.sha256)
}

/// Full sha256 of a file, with progress logged at debug level.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(ModelsError::io(format!("open {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut done: u64 = 0;
    let mut next_log = PROGRESS_EVERY;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(ModelsError::io(format!("read {}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        if done >= next_log {
            tracing::debug!(file = %path.display(), bytes = done, "hashing");
            next_log += PROGRESS_EVERY;
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// `fsync` a directory so a rename in it is durable (ignored where unsupported).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct HashingWriter<W: Write> {
    pub inner: W,
    pub hasher: Sha256,
    pub bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Registry {
    /// The cached file of `name`, only if present and verified; otherwise an error telling the
    /// user to run `emorg models fetch <name>`.
    ///
    /// Hashes the file only when its `.sha256` sidecar is missing or stale (size or mtime differ),
    /// so repeated resolves of a 1 GB file are cheap.
    pub fn resolve(&self, name: &str) -> Result<PathBuf> {
        let entry = self.get(name)?;
        let path = self.file_path(entry);
        self.check_cached(entry, &path)?;
        Ok(path)
    }

    /// Re-hash the cached file of `name` fully (ignoring the sidecar, then refreshing it).
    /// A mismatch is [`ModelsError::Corrupt`]; a missing file is [`ModelsError::NotFetched`].
    pub fn verify(&self, name: &str) -> Result<VerifyReport> {
        let entry = self.get(name)?;
        let path = self.file_path(entry);
        let meta = metadata_or_not_fetched(entry, &path)?;
        let start = Instant::now();
        let sha = sha256_file(&path)?;
        let elapsed = start.elapsed();
        write_sidecar(&path, &sha);
        check_hash(entry, &path, meta.len(), &sha)?;
        tracing::info!(model = %entry.name, sha256 = %sha, secs = elapsed.as_secs_f64(), "verified");
        Ok(VerifyReport {
            name: entry.name.clone(),
            path,
            size_bytes: meta.len(),
            sha256: sha,
            elapsed,
        })
    }

    /// Cheap state of the cache for one entry (no hashing).
    pub fn cache_state(&self, entry: &ModelEntry) -> CacheState {
        let path = self.file_path(entry);
        let Ok(meta) = fs::metadata(&path) else {
            return CacheState::Missing;
        };
        if meta.len() != entry.size_bytes {
            return CacheState::Corrupt;
        }
        match fresh_sidecar_hash(&path, &meta) {
            Some(sha) if sha.eq_ignore_ascii_case(&entry.sha256) => CacheState::Verified,
            Some(_) => CacheState::Corrupt,
            None => CacheState::Unverified,
        }
    }

    /// Ok if `path` holds the entry's bytes, using the sidecar when fresh and hashing otherwise.
    pub(crate) fn check_cached(&self, entry: &ModelEntry, path: &Path) -> Result<()> {
        let meta = metadata_or_not_fetched(entry, path)?;
        if meta.len() != entry.size_bytes {
            // Wrong size: no need to hash to know it is wrong.
            return Err(ModelsError::Corrupt {
                name: entry.name.clone(),
                path: path.to_path_buf(),
                expected: entry.sha256.clone(),
                actual: "(not hashed: wrong size)".into(),
                expected_size: entry.size_bytes,
                actual_size: meta.len(),
            });
        }
        let sha = match fresh_sidecar_hash(path, &meta) {
            Some(sha) => sha,
            None => {
                tracing::info!(model = %entry.name, "hashing cached file (sidecar missing or stale)");
                let sha = sha256_file(path)?;
                write_sidecar(path, &sha);
                sha
            }
        };
        check_hash(entry, path, meta.len(), &sha)
    }
}

fn metadata_or_not_fetched(entry: &ModelEntry, path: &Path) -> Result<fs::Metadata> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(m),
        Ok(_) => Err(ModelsError::NotFetched {
            name: entry.name.clone(),
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ModelsError::NotFetched {
            name: entry.name.clone(),
            path: path.to_path_buf(),
        }),
        Err(e) => Err(ModelsError::Io {
            context: format!("stat {}", path.display()),
            source: e,
        }),
    }
}

fn check_hash(entry: &ModelEntry, path: &Path, size: u64, sha: &str) -> Result<()> {
    if sha.eq_ignore_ascii_case(&entry.sha256) && size == entry.size_bytes {
        Ok(())
    } else {
        Err(ModelsError::Corrupt {
            name: entry.name.clone(),
            path: path.to_path_buf(),
            expected: entry.sha256.clone(),
            actual: sha.to_string(),
            expected_size: entry.size_bytes,
            actual_size: size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_roundtrip_and_staleness() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.gguf");
        fs::write(&f, b"hello").unwrap();
        assert!(read_sidecar(&f).is_none());
        let sha = sha256_file(&f).unwrap();
        assert_eq!(
            sha,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        write_sidecar(&f, &sha);
        let side = read_sidecar(&f).unwrap();
        assert_eq!(side.size, 5);
        assert_eq!(side.sha256, sha);
        let meta = fs::metadata(&f).unwrap();
        assert_eq!(fresh_sidecar_hash(&f, &meta), Some(sha));
        fs::write(&f, b"hello world").unwrap();
        let meta = fs::metadata(&f).unwrap();
        assert_eq!(fresh_sidecar_hash(&f, &meta), None);
    }
}
