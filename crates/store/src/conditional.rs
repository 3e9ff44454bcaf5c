//! Compare-and-swap on one object: read it with its version, replace it only if it is unchanged.
//!
//! Claims (`CLAIM.json`) change hands through these, never through delete-then-create, so two runs
//! that both find a stale claim cannot both take it, and a run cannot remove a claim another run
//! has just taken. What each backend guarantees (measured in this crate's tests and in
//! shared/reference/s3-local.md):
//!
//! | backend | create-only put | replace-if-unchanged |
//! |---|---|---|
//! | `memory://` | atomic | atomic (`PutMode::Update`) |
//! | `file://` | atomic (hard link) | atomic among emorg processes: an exclusive `flock` on the object's directory around read, compare and rename (object_store's local backend has no `PutMode::Update`) |
//! | AWS S3 | atomic (`If-None-Match: *`) | atomic (`If-Match: <etag>`) |
//! | s3s-fs 0.14 | checked, not atomic | checked, not atomic: concurrent writers can both succeed |
//!
//! On a store whose checks race (s3s-fs), two runs can both believe they hold a claim for a
//! moment; the holder re-reads the claim before it commits and `DONE.json` is written create-only,
//! so at most one of them commits.

use std::io::Write as _;

use object_store::{
    ObjectStore as _, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, UpdateVersion,
};

use crate::{Bytes, Result, Store, StoreError, obj_path, sha256_hex};

/// What identifies one version of an object for [`Store::put_if_unchanged`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    e_tag: Option<String>,
    version: Option<String>,
    /// The content hash: the version check of `file://` stores (whose e-tags are inode and mtime,
    /// which a same-second rewrite can repeat).
    sha256: String,
}

/// An object's bytes and the version they were read at.
#[derive(Clone, Debug)]
pub struct Versioned {
    pub bytes: Bytes,
    pub version: ObjectVersion,
}

impl Store {
    /// Reads `key` with its version, `None` when absent.
    pub fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let path = obj_path(key)?;
        let got = self.block_on(async {
            let got = self.backend().get(&path).await?;
            let meta = got.meta.clone();
            Ok::<_, object_store::Error>((got.bytes().await?, meta))
        });
        match got {
            Ok((bytes, meta)) => Ok(Some(Versioned {
                version: ObjectVersion {
                    e_tag: meta.e_tag,
                    version: meta.version,
                    sha256: sha256_hex(&bytes),
                },
                bytes,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::backend(key, e)),
        }
    }

    /// Replaces `key` with `bytes` only if it still is at `expected` (as read by
    /// [`Store::get_versioned`]): `Ok(true)` when this call replaced it, `Ok(false)` when it changed
    /// or vanished meanwhile. See the module docs for what each backend guarantees.
    pub fn put_if_unchanged(
        &self,
        key: &str,
        expected: &ObjectVersion,
        bytes: impl Into<Bytes>,
    ) -> Result<bool> {
        let bytes: Bytes = bytes.into();
        if let Some(root) = self.local_root() {
            return self.put_if_unchanged_local(&root, key, expected, bytes);
        }
        let path = obj_path(key)?;
        let opts = PutOptions {
            mode: PutMode::Update(UpdateVersion {
                e_tag: expected.e_tag.clone(),
                version: expected.version.clone(),
            }),
            ..Default::default()
        };
        match self.block_on(
            self.backend()
                .put_opts(&path, PutPayload::from(bytes), opts),
        ) {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => Ok(false),
            Err(e) => Err(StoreError::backend(key, e)),
        }
    }

    /// `file://`: read, compare and rename under an exclusive lock on the object's directory (a
    /// stable inode, unlike the object file, which each write replaces). object_store's local
    /// backend refuses `PutMode::Update`, hence this.
    fn put_if_unchanged_local(
        &self,
        root: &std::path::Path,
        key: &str,
        expected: &ObjectVersion,
        bytes: Bytes,
    ) -> Result<bool> {
        let rel = obj_path(key)?.to_string();
        let file = root.join(&rel);
        let io = |what: &str, p: &std::path::Path, e: std::io::Error| {
            StoreError::io(key, format!("{what} {}: {e}", p.display()))
        };
        let dir = file.parent().unwrap_or(root);
        let lock = match std::fs::File::open(dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io("opening", dir, e)),
        };
        lock.lock().map_err(|e| io("locking", dir, e))?;
        let current = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io("reading", &file, e)),
        };
        if sha256_hex(&current) != expected.sha256 {
            return Ok(false);
        }
        let mut staging = file.clone();
        staging.set_file_name(format!(
            ".{}.{}.cas",
            file.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let written = std::fs::File::create(&staging)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()));
        if let Err(e) = written.and_then(|()| std::fs::rename(&staging, &file)) {
            let _ = std::fs::remove_file(&staging);
            return Err(io("replacing", &file, e));
        }
        // The lock is released when `lock` is dropped.
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    fn stores() -> Vec<(Store, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let file = Store::open(&format!("file://{}", dir.path().display())).unwrap();
        vec![
            (file, dir),
            (
                Store::open("memory://").unwrap(),
                tempfile::tempdir().unwrap(),
            ),
        ]
    }

    #[test]
    fn replaces_only_the_version_it_read() {
        for (store, _dir) in stores() {
            let key = "cells/k/train/CLAIM.json";
            assert!(store.get_versioned(key).unwrap().is_none());
            store.put(key, "one").unwrap();
            let v1 = store.get_versioned(key).unwrap().unwrap();
            assert_eq!(&v1.bytes[..], b"one");
            assert!(store.put_if_unchanged(key, &v1.version, "two").unwrap());
            // The version read before is stale now.
            assert!(!store.put_if_unchanged(key, &v1.version, "three").unwrap());
            assert_eq!(&store.get(key).unwrap()[..], b"two");
            store.delete(key).unwrap();
            assert!(!store.put_if_unchanged(key, &v1.version, "four").unwrap());
            assert!(!store.exists(key).unwrap(), "{}", store.url());
        }
    }

    /// Sixteen threads replace the same version at once: exactly one wins, on each backend here.
    #[test]
    fn one_winner_among_concurrent_replacers() {
        for (store, _dir) in stores() {
            let key = "cells/k/sample/CLAIM.json";
            store.put(key, "stale").unwrap();
            let v = store.get_versioned(key).unwrap().unwrap().version;
            let barrier = Arc::new(Barrier::new(16));
            let winners: Vec<usize> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..16)
                    .map(|i| {
                        let (store, v, barrier) = (store.clone(), v.clone(), barrier.clone());
                        s.spawn(move || {
                            barrier.wait();
                            store
                                .put_if_unchanged(key, &v, format!("run-{i}"))
                                .unwrap()
                                .then_some(i)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap())
                    .collect()
            });
            assert_eq!(winners.len(), 1, "{}: winners {winners:?}", store.url());
            let content = store.get(key).unwrap();
            assert_eq!(&content[..], format!("run-{}", winners[0]).as_bytes());
        }
    }
}
