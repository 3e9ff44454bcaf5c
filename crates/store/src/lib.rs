//! emorg's results store: a synchronous facade over [`object_store`].
//!
//! Everything a sweep produces lives in one store addressed by a URL (DESIGN §3):
//!
//! | URL | backend |
//! |---|---|
//! | `file://results` | a directory relative to the current directory (created if missing) |
//! | `file:///abs/path` | an absolute directory (created if missing) |
//! | `s3://bucket/prefix` | S3 or an S3-compatible server, configured from the standard `AWS_*` variables |
//! | `memory://` | in-process memory, for tests |
//!
//! Keys are `/`-separated strings spelled in one place, [`layout`]. Writes are atomic per object
//! (`object_store` puts; the local backend writes a staging file and renames it), so a reader
//! never sees half an object.
//!
//! # Stage commit protocol
//!
//! A stage writes its outputs first ([`Store::put_output`], [`Store::put_output_file`], each
//! returning the [`OutputEntry`] with size and SHA-256) and then [`Store::commit_stage`], which
//! checks that every listed output exists with the listed size and only then writes
//! `<owner>/<stage>/DONE.json`. [`Store::read_done`] re-checks the outputs against the
//! manifest, so an output that was deleted or truncated after the commit makes the stage
//! [`DoneState::Invalid`] rather than silently done.
//!
//! # Threading and runtimes
//!
//! The binaries are plain synchronous programs, so [`Store`] owns a one-worker tokio runtime
//! and blocks on each `object_store` call. **Do not call it from inside another tokio runtime**
//! (an `async fn` or a task): tokio panics with "Cannot start a runtime from within a runtime".
//! From async code use `tokio::task::spawn_blocking`. Dropping the last clone of a `Store` inside
//! an async context panics for the same reason. A `Store` is `Send + Sync` and cheap to clone
//! (an `Arc`); calls from several threads are serialised on the one runtime.
//!
//! # Tables
//!
//! [`table`] reads and writes zstd parquet in memory; [`Store::put_table`] / [`Store::get_table`]
//! do the same against a key. The crate re-exports [`arrow`] so callers build batches with the
//! same arrow version.

pub mod claim;
mod conditional;
mod manifest;
pub mod table;
pub mod testing;
mod version;

use std::fmt;
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

pub use arrow;
pub use bytes::Bytes;
pub use conditional::{ObjectVersion, Versioned};
pub use emorg_artifacts::layout;
pub use emorg_artifacts::tables;
pub use emorg_artifacts::{JudgmentKey, Stage, StageRef, UnitKey, VariantKey};
use futures::StreamExt;
pub use manifest::{
    DoneState, Manifest, OutputEntry, sha256_hex, stale_reason, upstream_input_key,
};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
pub use version::LayoutFile;

/// Boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Exit status of a worker that leaves a stage to another run holding its claim (`CLAIM.json`;
/// EX_CANTCREAT from sysexits.h). Not a failure of the stage: no FAILED.json is written, and
/// executors report the stage as claimed, not failed.
pub const CLAIMED_EXIT_CODE: u8 = 73;

/// The reason of the [`StoreError::Commit`] that [`Store::commit_stage`] returns when the stage's
/// `DONE.json` already exists: another run committed the stage first
/// ([`StoreError::is_already_committed`]; the worker exits [`CLAIMED_EXIT_CODE`]).
pub const ALREADY_COMMITTED: &str =
    "already committed by another run (a DONE.json exists; this run's result is not recorded)";

/// Objects at least this large go up as multipart uploads (smaller ones in one put).
pub const MULTIPART_THRESHOLD: usize = 10 * 1024 * 1024;
const READ_CHUNK: usize = 8 * 1024 * 1024;

/// Errors of the store. Every variant names the key (or URL) it is about.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found in the store: {key}")]
    NotFound { key: String },
    #[error("store I/O error on {key}: {source}")]
    Io {
        key: String,
        #[source]
        source: BoxError,
    },
    #[error("cannot parse or encode JSON at {key}: {source}")]
    Parse {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "bad store URL {url:?}: {reason} (supported: file://<dir relative to cwd>, file:///<absolute dir>, s3://<bucket>[/<prefix>], memory://)"
    )]
    BadUrl { url: String, reason: String },
    #[error("invalid store key {key:?}: {reason}")]
    BadKey { key: String, reason: String },
    #[error("cannot commit stage, {key}: {reason}")]
    Commit { key: String, reason: String },
    /// A stage output that does not match the `DONE.json` it is read under
    /// ([`Store::get_verified`]); the reason gives both hashes and what to do.
    #[error("integrity check failed for {key}: {reason}")]
    Integrity { key: String, reason: String },
    /// A store written in another layout version (`layout.json`, [`Store::check_layout`]).
    #[error("store {url} is in another layout: {reason}")]
    Layout { url: String, reason: String },
    #[error("table error ({context}): {source}")]
    Table {
        context: String,
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// True for [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// True for the [`StoreError::Commit`] of a stage another run committed first
    /// ([`ALREADY_COMMITTED`]).
    pub fn is_already_committed(&self) -> bool {
        matches!(self, StoreError::Commit { reason, .. } if reason == ALREADY_COMMITTED)
    }

    fn io(key: &str, source: impl Into<BoxError>) -> StoreError {
        StoreError::Io {
            key: key.to_string(),
            source: source.into(),
        }
    }

    fn backend(key: &str, err: object_store::Error) -> StoreError {
        match err {
            object_store::Error::NotFound { .. } => StoreError::NotFound {
                key: key.to_string(),
            },
            other => StoreError::io(key, other),
        }
    }
}

/// The results store. Synchronous; see the crate docs about tokio runtimes.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    backend: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
    rt: tokio::runtime::Runtime,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

/// A [`StoreError::BadUrl`]; the URL is shown with any user info as `***`, so that no message
/// repeats a credential written into it.
fn bad_url(url: &str, reason: impl Into<String>) -> StoreError {
    let url = match url_userinfo(url) {
        Some(r) => format!("{}***{}", &url[..r.start], &url[r.end..]),
        None => url.to_string(),
    };
    StoreError::BadUrl {
        url,
        reason: reason.into(),
    }
}

/// The byte range of a URL's user info (`KEY:SECRET` in `s3://KEY:SECRET@bucket/p`), if any. For
/// `file://`, whose "host" is the first directory of a relative path, only `user:password@`
/// counts (`file://runs@2` is a directory). The same rule as `emorg_spec::secrets::url_userinfo`,
/// which refuses such a URL in a sweep; this crate does not depend on emorg-spec.
fn url_userinfo(url: &str) -> Option<std::ops::Range<usize>> {
    let scheme_end = url.find("://")?;
    let scheme = url[..scheme_end].trim_start();
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    {
        return None;
    }
    let start = scheme_end + 3;
    let rest = &url[start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_len].rfind('@')?;
    if scheme.eq_ignore_ascii_case("file") && !rest[..at].contains(':') {
        return None;
    }
    Some(start..start + at)
}

/// What the first request to an S3 store says went wrong, with what to check.
fn explain_s3_error(bucket: &str, err: &object_store::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let endpoint = env_nonempty("AWS_ENDPOINT_URL")
        .or_else(|| env_nonempty("AWS_ENDPOINT"))
        .unwrap_or_else(|| "the AWS default endpoint".to_string());
    let detail = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let code = [
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
        "NoSuchBucket",
    ]
    .into_iter()
    .find(|c| text.contains(c));
    match code {
        Some("NoSuchBucket") => format!(
            "the bucket `{bucket}` does not exist on {endpoint}: create it or fix the URL ({detail})"
        ),
        Some(c) => format!(
            "{endpoint} refused the credentials ({c}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({detail})"
        ),
        None if text.contains("Connection refused")
            || text.contains("error sending request")
            || text.contains("dns error")
            || text.contains("timed out") =>
        {
            format!(
                "cannot reach the S3 endpoint {endpoint}: check AWS_ENDPOINT_URL and that the server is up ({detail})"
            )
        }
        None => format!("the first request to {endpoint} failed: {detail}"),
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Turns a key into an object path; rejects empty keys, `.`/`..` segments and empty segments.
fn obj_path(key: &str) -> Result<ObjPath> {
    let trimmed = key.trim_matches('/');
    if trimmed.is_empty() {
        return Err(StoreError::BadKey {
            key: key.to_string(),
            reason: "empty key".into(),
        });
    }
    ObjPath::parse(trimmed).map_err(|e| StoreError::BadKey {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

fn partial_path(path: &FsPath) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

impl Store {
    /// Opens the store at `url` (see the crate docs for the schemes). For `file://` the directory
    /// is created. For `s3://bucket/prefix` the client is configured by
    /// `AmazonS3Builder::from_env()` (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` /
    /// `AWS_DEFAULT_REGION`, `AWS_ALLOW_HTTP`, ...); when `AWS_ENDPOINT_URL` or `AWS_ENDPOINT` is set
    /// it is used with path-style requests, and an `http://` endpoint is allowed unless
    /// `AWS_ALLOW_HTTP` says otherwise.
    ///
    /// A URL with user info (`s3://KEY:SECRET@bucket`, `s3://KEY@bucket`) is refused, showing it
    /// as `s3://***@bucket`: credentials come from the environment, never from a URL, which is
    /// recorded in the store, passed to workers on their command line and logged.
    pub fn open(url: &str) -> Result<Store> {
        let url_trimmed = url.trim();
        if url_userinfo(url_trimmed).is_some() {
            return Err(bad_url(
                url,
                "credentials do not go in a store URL (it is recorded in the store, passed to \
                 workers on their command line and logged): set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY in the environment",
            ));
        }
        // A one-worker multi-thread runtime keeps driving pooled HTTP connections between store
        // calls; with a current-thread runtime a connection used from another runtime stalled
        // for 30 s per switch (measured against s3s-fs).
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| bad_url(url, format!("cannot start the store's tokio runtime: {e}")))?;
        let (backend, local_root): (Arc<dyn ObjectStore>, Option<PathBuf>) =
            if let Some(rest) = url_trimmed.strip_prefix("file://") {
                let root = Self::local_dir(url, rest)?;
                std::fs::create_dir_all(&root).map_err(|e| {
                    bad_url(
                        url,
                        format!("cannot create directory {}: {e}", root.display()),
                    )
                })?;
                let root = root.canonicalize().map_err(|e| {
                    bad_url(
                        url,
                        format!("cannot resolve directory {}: {e}", root.display()),
                    )
                })?;
                let fs = LocalFileSystem::new_with_prefix(&root)
                    .map_err(|e| bad_url(url, e.to_string()))?
                    .with_automatic_cleanup(true);
                (Arc::new(fs), Some(root))
            } else if url_trimmed.starts_with("memory://") {
                (Arc::new(InMemory::new()), None)
            } else if url_trimmed.starts_with("s3://") {
                (Self::s3(url, url_trimmed, rt.handle())?, None)
            } else {
                return Err(bad_url(url, "unsupported scheme"));
            };
        tracing::debug!(url = url_trimmed, "opened store");
        Ok(Store {
            inner: Arc::new(Inner {
                url: url_trimmed.to_string(),
                backend,
                local_root,
                rt,
            }),
        })
    }

    fn local_dir(url: &str, rest: &str) -> Result<PathBuf> {
        if rest.is_empty() {
            return Err(bad_url(
                url,
                "file:// needs a directory, e.g. file://results or file:///abs/path",
            ));
        }
        // `file://localhost/abs` is the same as `file:///abs`.
        let rest = rest
            .strip_prefix("localhost/")
            .map(|r| format!("/{r}"))
            .unwrap_or_else(|| rest.to_string());
        let path = PathBuf::from(&rest);
        if path.is_absolute() {
            Ok(path)
        } else {
            let cwd = std::env::current_dir()
                .map_err(|e| bad_url(url, format!("no current directory: {e}")))?;
            Ok(cwd.join(path))
        }
    }

    fn s3(url: &str, trimmed: &str, rt: &tokio::runtime::Handle) -> Result<Arc<dyn ObjectStore>> {
        let parsed = url::Url::parse(trimmed).map_err(|e| bad_url(url, e.to_string()))?;
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| bad_url(url, "s3:// needs a bucket"))?;
        let prefix = parsed.path().trim_matches('/').to_string();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            // HTTP I/O runs on the store's own runtime, whichever runtime a caller is on.
            .with_http_connector(object_store::client::SpawnedReqwestConnector::new(
                rt.clone(),
            ));
        if let Some(endpoint) =
            env_nonempty("AWS_ENDPOINT_URL").or_else(|| env_nonempty("AWS_ENDPOINT"))
        {
            if endpoint.starts_with("http://") && env_nonempty("AWS_ALLOW_HTTP").is_none() {
                builder = builder.with_allow_http(true);
            }
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        // One cheap request before anything is written, with few and short retries, so that a
        // wrong endpoint, wrong credentials or a missing bucket fail at once with the cause named
        // (the store's own client keeps object_store's default retries with backoff, ~3 min).
        let probe = builder
            .clone()
            .with_retry(object_store::RetryConfig {
                backoff: object_store::BackoffConfig {
                    init_backoff: std::time::Duration::from_millis(200),
                    max_backoff: std::time::Duration::from_secs(1),
                    base: 2.0,
                },
                max_retries: 2,
                retry_timeout: std::time::Duration::from_secs(15),
            })
            .build()
            .map_err(|e| bad_url(url, e.to_string()))?;
        let probe_prefix = ObjPath::parse(&prefix).ok();
        if let Err(e) = rt.block_on(probe.list_with_delimiter(probe_prefix.as_ref())) {
            return Err(bad_url(url, explain_s3_error(bucket, &e)));
        }
        let s3 = builder.build().map_err(|e| bad_url(url, e.to_string()))?;
        if prefix.is_empty() {
            Ok(Arc::new(s3))
        } else {
            let prefix =
                ObjPath::parse(&prefix).map_err(|e| bad_url(url, format!("bad prefix: {e}")))?;
            Ok(Arc::new(PrefixStore::new(s3, prefix)))
        }
    }

    /// The URL the store was opened with.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The (canonical, absolute) directory of a `file://` store; `None` for other backends.
    pub fn local_root(&self) -> Option<PathBuf> {
        self.inner.local_root.clone()
    }

    /// The underlying `object_store` (for callers with their own runtime).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.inner.backend)
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.inner.rt.block_on(fut)
    }

    fn backend(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.backend
    }

    /// Writes `bytes` to `key` (atomically replacing what was there).
    pub fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<()> {
        let path = obj_path(key)?;
        let bytes: Bytes = bytes.into();
        tracing::trace!(key, size = bytes.len(), "put");
        self.block_on(self.backend().put(&path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| StoreError::backend(key, e))
    }

    /// Writes `bytes` to `key` only if nothing is there (`PutMode::Create`): `Ok(true)` when this
    /// call wrote it, `Ok(false)` when the key already existed. Atomic on `file://` (a hard link)
    /// and on S3 servers that honour `If-None-Match: *` (AWS S3 does); s3s-fs checks and then
    /// writes, so two concurrent creates can both succeed there (shared/reference/s3-local.md).
    pub fn put_new(&self, key: &str, bytes: impl Into<Bytes>) -> Result<bool> {
        let path = obj_path(key)?;
        let opts = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        match self.block_on(
            self.backend()
                .put_opts(&path, PutPayload::from(bytes.into()), opts),
        ) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(StoreError::backend(key, e)),
        }
    }

    /// Writes `value` as pretty JSON.
    pub fn put_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Parse {
            key: key.to_string(),
            source,
        })?;
        json.push(b'\n');
        self.put(key, json)
    }

    /// Reads the whole object; [`StoreError::NotFound`] names the key when absent.
    pub fn get(&self, key: &str) -> Result<Bytes> {
        let path = obj_path(key)?;
        self.block_on(async {
            let got = self.backend().get(&path).await?;
            got.bytes().await
        })
        .map_err(|e| StoreError::backend(key, e))
    }

    /// Reads the whole object, `None` when absent.
    pub fn get_opt(&self, key: &str) -> Result<Option<Bytes>> {
        match self.get(key) {
            Ok(b) => Ok(Some(b)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads and parses JSON; a parse error names the key.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        let bytes = self.get(key)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Parse {
            key: key.to_string(),
            source,
        })
    }

    /// Whether an object exists at `key`.
    pub fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.size(key)?.is_some())
    }

    /// The object's size in bytes (a head request), `None` when absent.
    pub fn size(&self, key: &str) -> Result<Option<u64>> {
        let path = obj_path(key)?;
        match self.block_on(self.backend().head(&path)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::backend(key, e)),
        }
    }

    /// Full keys of every object under `prefix`, sorted. Prefixes match whole path segments:
    /// `cells/ab` lists `cells/ab/...`, not `cells/abc/...`. An empty prefix lists everything.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let trimmed = prefix.trim_matches('/');
        let path = if trimmed.is_empty() {
            None
        } else {
            Some(obj_path(trimmed)?)
        };
        let mut keys = self.block_on(async {
            let mut stream = self.backend().list(path.as_ref());
            let mut keys = Vec::new();
            while let Some(item) = stream.next().await {
                keys.push(item?.location.to_string());
            }
            Ok::<_, object_store::Error>(keys)
        });
        if let Err(object_store::Error::NotFound { .. }) = keys {
            keys = Ok(Vec::new());
        }
        let mut keys = keys.map_err(|e| StoreError::backend(prefix, e))?;
        keys.sort();
        Ok(keys)
    }

    /// Deletes `key`; deleting a missing key is not an error.
    pub fn delete(&self, key: &str) -> Result<()> {
        let path = obj_path(key)?;
        match self.block_on(self.backend().delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::backend(key, e)),
        }
    }

    /// Uploads the file at `path` to `key`, streaming it in chunks (a multipart upload when it is
    /// at least [`MULTIPART_THRESHOLD`] bytes) and hashing it on the way. Returns an entry whose
    /// `name` is the key.
    pub fn put_file(&self, key: &str, path: &FsPath) -> Result<OutputEntry> {
        let obj = obj_path(key)?;
        let file_err =
            |e: std::io::Error| StoreError::io(key, format!("reading {}: {e}", path.display()));
        let mut file = std::fs::File::open(path).map_err(file_err)?;
        let backend = Arc::clone(self.backend());
        let (size, sha) = self.block_on(async {
            let mut writer = BufWriter::with_capacity(backend, obj, MULTIPART_THRESHOLD);
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let result: Result<()> = async {
                loop {
                    let mut buf = vec![0u8; READ_CHUNK];
                    let n = read_full(&mut file, &mut buf).map_err(file_err)?;
                    if n == 0 {
                        break;
                    }
                    buf.truncate(n);
                    hasher.update(&buf);
                    size += n as u64;
                    writer
                        .put(Bytes::from(buf))
                        .await
                        .map_err(|e| StoreError::backend(key, e))?;
                    if n < READ_CHUNK {
                        break;
                    }
                }
                writer.shutdown().await.map_err(|e| StoreError::io(key, e))
            }
            .await;
            if let Err(e) = result {
                let _ = writer.abort().await;
                return Err(e);
            }
            Ok((size, hex::encode(hasher.finalize())))
        })?;
        tracing::debug!(key, size, "put file");
        Ok(OutputEntry {
            name: key.to_string(),
            size,
            sha256: sha,
        })
    }

    /// Downloads `key` to `path`, streaming into `path.partial` and renaming it when complete.
    /// Parent directories are created.
    pub fn get_to_file(&self, key: &str, path: &FsPath) -> Result<()> {
        self.download(key, path, |_, _| Ok(()))
    }

    /// Streams `key` into `path.partial`, hashing it on the way; renames it to `path` only when
    /// `check(size, sha256)` accepts it (the partial file is removed otherwise).
    fn download(
        &self,
        key: &str,
        path: &FsPath,
        check: impl FnOnce(u64, &str) -> Result<()>,
    ) -> Result<()> {
        let obj = obj_path(key)?;
        let partial = partial_path(path);
        let file_err = |what: &str, p: &FsPath, e: std::io::Error| {
            StoreError::io(key, format!("{what} {}: {e}", p.display()))
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| file_err("creating", parent, e))?;
        }
        let result = self.block_on(async {
            let got = self
                .backend()
                .get(&obj)
                .await
                .map_err(|e| StoreError::backend(key, e))?;
            let mut file =
                std::fs::File::create(&partial).map_err(|e| file_err("creating", &partial, e))?;
            let mut stream = got.into_stream();
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| StoreError::backend(key, e))?;
                hasher.update(&chunk);
                size += chunk.len() as u64;
                file.write_all(&chunk)
                    .map_err(|e| file_err("writing", &partial, e))?;
            }
            file.sync_all()
                .map_err(|e| file_err("syncing", &partial, e))?;
            check(size, &hex::encode(hasher.finalize()))
        });
        if let Err(e) = result {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        std::fs::rename(&partial, path).map_err(|e| file_err("renaming to", path, e))
    }

    /// Encodes `batch` as zstd parquet at `key`.
    pub fn put_table(&self, key: &str, batch: &arrow::array::RecordBatch) -> Result<()> {
        let bytes = table::to_parquet(batch).map_err(|e| e.with_key(key))?;
        self.put(key, bytes)
    }

    /// Reads the parquet table at `key` into one batch.
    pub fn get_table(&self, key: &str) -> Result<arrow::array::RecordBatch> {
        let bytes = self.get(key)?;
        table::from_parquet(bytes).map_err(|e| e.with_key(key))
    }

    // ---- stage commit protocol ----------------------------------------------------------------

    /// Writes a stage output at `<owner>/<stage>/<name>` and returns its entry (name, size,
    /// SHA-256) for the manifest.
    pub fn put_output(
        &self,
        stage: &StageRef,
        name: &str,
        bytes: impl Into<Bytes>,
    ) -> Result<OutputEntry> {
        let bytes: Bytes = bytes.into();
        let key = layout::output(stage, name);
        let entry = OutputEntry::of_bytes(name, &bytes);
        self.put(&key, bytes)?;
        Ok(entry)
    }

    /// Uploads a file as a stage output (streaming; multipart when large) and returns its entry.
    pub fn put_output_file(
        &self,
        stage: &StageRef,
        name: &str,
        path: &FsPath,
    ) -> Result<OutputEntry> {
        let key = layout::output(stage, name);
        let mut entry = self.put_file(&key, path)?;
        entry.name = name.to_string();
        Ok(entry)
    }

    /// Commits a stage: checks that the manifest lists at least one output and that every output
    /// it lists exists with the listed size, then writes `DONE.json` (last), create-only
    /// ([`Store::put_new`]). When a `DONE.json` is already there another run committed the stage
    /// first: nothing is overwritten and the error is [`StoreError::Commit`] with the reason
    /// [`ALREADY_COMMITTED`] ([`StoreError::is_already_committed`]). A run that redoes a stage
    /// removes the old `DONE.json` before it starts (the worker does, on `--force` or when the old
    /// one is invalid or stale), so a crash mid-run never leaves the old manifest over new partial
    /// outputs. Other errors name the missing or mismatched key.
    pub fn commit_stage(&self, manifest: &Manifest) -> Result<()> {
        let done_key = layout::done(&manifest.owner);
        if manifest.outputs.is_empty() {
            return Err(StoreError::Commit {
                key: done_key,
                reason: "the manifest lists no outputs: a stage that produced nothing is not done"
                    .into(),
            });
        }
        for out in &manifest.outputs {
            let key = manifest.output_key(&out.name);
            match self.size(&key)? {
                None => {
                    return Err(StoreError::Commit {
                        key,
                        reason: "listed output is missing".into(),
                    });
                }
                Some(size) if size != out.size => {
                    return Err(StoreError::Commit {
                        key,
                        reason: format!(
                            "listed output has {size} bytes, manifest records {}",
                            out.size
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        let mut json = serde_json::to_vec_pretty(manifest).map_err(|source| StoreError::Parse {
            key: done_key.clone(),
            source,
        })?;
        json.push(b'\n');
        if !self.put_new(&done_key, json)? {
            return Err(StoreError::Commit {
                key: done_key,
                reason: ALREADY_COMMITTED.into(),
            });
        }
        tracing::debug!(key = done_key, "committed stage");
        Ok(())
    }

    /// Reads and checks `DONE.json` of a stage: [`DoneState::Missing`] without one,
    /// [`DoneState::Invalid`] when it does not parse, belongs to another stage (its `owner`), lists
    /// no outputs, or an output it lists is not a valid key, is missing or has another size; else
    /// [`DoneState::Valid`]. The stage alone: whether what it read upstream has changed since is
    /// [`Store::read_done_chain`]'s question. Only backend failures are errors.
    pub fn read_done(&self, stage: &StageRef) -> Result<DoneState> {
        let done_key = layout::done(stage);
        let Some(bytes) = self.get_opt(&done_key)? else {
            return Ok(DoneState::Missing);
        };
        let manifest: Manifest = match serde_json::from_slice(&bytes) {
            Ok(m) => m,
            Err(e) => {
                return Ok(DoneState::Invalid {
                    reason: format!("{done_key} does not parse as a manifest: {e}"),
                });
            }
        };
        if manifest.owner != *stage {
            return Ok(DoneState::Invalid {
                reason: format!(
                    "{done_key} belongs to {} {}, not to this stage",
                    manifest.owner,
                    manifest.owner.key()
                ),
            });
        }
        if manifest.outputs.is_empty() {
            return Ok(DoneState::Invalid {
                reason: format!(
                    "{done_key} lists no outputs: a stage that produced nothing is not done"
                ),
            });
        }
        for out in &manifest.outputs {
            let key = layout::output(stage, &out.name);
            let size = match self.size(&key) {
                // A name no writer could have stored under (`..`, an empty segment): the
                // manifest's fault, not the backend's.
                Err(StoreError::BadKey { reason, .. }) => {
                    return Ok(DoneState::Invalid {
                        reason: format!(
                            "{done_key} lists output {:?}, which is not a valid store key \
                             ({reason})",
                            out.name
                        ),
                    });
                }
                other => other?,
            };
            match size {
                None => {
                    return Ok(DoneState::Invalid {
                        reason: format!("output {key} listed in {done_key} is missing"),
                    });
                }
                Some(size) if size != out.size => {
                    return Ok(DoneState::Invalid {
                        reason: format!(
                            "output {key} has {size} bytes but {done_key} records {}",
                            out.size
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(DoneState::Valid(manifest))
    }

    /// Like [`Store::read_done`], and also re-hashes every output against its recorded SHA-256
    /// (reads every output: for audits; consumers verify what they read with
    /// [`Store::get_verified`] instead).
    pub fn verify_done(&self, stage: &StageRef) -> Result<DoneState> {
        let state = self.read_done(stage)?;
        let DoneState::Valid(manifest) = &state else {
            return Ok(state);
        };
        for out in &manifest.outputs {
            let key = layout::output(stage, &out.name);
            let sha = self.sha256_of(&key)?;
            if sha != out.sha256 {
                return Ok(DoneState::Invalid {
                    reason: format!(
                        "output {key} has sha256 {sha} but the manifest records {}",
                        out.sha256
                    ),
                });
            }
        }
        Ok(state)
    }

    /// Streams the object at `key` and returns its hex SHA-256.
    pub fn sha256_of(&self, key: &str) -> Result<String> {
        let obj = obj_path(key)?;
        self.block_on(async {
            let got = self.backend().get(&obj).await?;
            let mut stream = got.into_stream();
            let mut hasher = Sha256::new();
            while let Some(chunk) = stream.next().await {
                hasher.update(&chunk?);
            }
            Ok::<_, object_store::Error>(hex::encode(hasher.finalize()))
        })
        .map_err(|e| StoreError::backend(key, e))
    }

    /// The states of a chain of stages in pipeline order, each stage able to read the outputs of
    /// those before it (e.g. a unit's train, one of its variants' sample, one judgment of that
    /// variant). Each state is [`Store::read_done`]'s, except that a valid stage
    /// becomes [`DoneState::Stale`] when [`stale_reason`] finds an upstream output it recorded in
    /// its `inputs` changed, or its stage no longer done (so a stage that read a stale one is stale
    /// too). The worker's skip decision, the executors' stage states and the report all use this.
    pub fn read_done_chain(&self, chain: &[StageRef]) -> Result<Vec<DoneState>> {
        let mut states: Vec<DoneState> = Vec::with_capacity(chain.len());
        for stage in chain {
            let state = match self.read_done(stage)? {
                DoneState::Valid(manifest) => {
                    match stale_reason(&manifest, chain.iter().zip(states.iter())) {
                        Some(reason) => DoneState::Stale { manifest, reason },
                        None => DoneState::Valid(manifest),
                    }
                }
                other => other,
            };
            states.push(state);
        }
        Ok(states)
    }

    /// Reads output `name` of the stage `manifest` commits (`<owner>/<stage>/<name>`),
    /// hashing it as it streams in, and returns its bytes only when their size and SHA-256 are the
    /// ones the manifest lists. Every consumer of an upstream output reads it through this (or
    /// [`Store::get_to_file_verified`]) and records [`upstream_input_key`] -> its SHA-256 in its
    /// own manifest's `inputs`. A mismatch, or a name the manifest does not list, is
    /// [`StoreError::Integrity`] naming the key, both hashes and what to do.
    pub fn get_verified(&self, manifest: &Manifest, name: &str) -> Result<Bytes> {
        let (key, entry) = listed_output(manifest, name)?;
        let obj = obj_path(&key)?;
        // Preallocate what the manifest promises, within reason (it may be wrong).
        let capacity = usize::try_from(entry.size).unwrap_or(0).min(1 << 28);
        let (bytes, sha) = self
            .block_on(async {
                let got = self.backend().get(&obj).await?;
                let mut stream = got.into_stream();
                let mut hasher = Sha256::new();
                let mut buf = Vec::with_capacity(capacity);
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    hasher.update(&chunk);
                    buf.extend_from_slice(&chunk);
                }
                Ok::<_, object_store::Error>((buf, hex::encode(hasher.finalize())))
            })
            .map_err(|e| StoreError::backend(&key, e))?;
        check_output(manifest, &key, entry, bytes.len() as u64, &sha)?;
        Ok(Bytes::from(bytes))
    }

    /// [`Store::get_verified`] into a file: streams output `name` into `path.partial`, hashing it
    /// on the way, and renames it to `path` only when size and SHA-256 match the manifest (the
    /// partial file is removed otherwise). Parent directories are created.
    pub fn get_to_file_verified(
        &self,
        manifest: &Manifest,
        name: &str,
        path: &FsPath,
    ) -> Result<()> {
        let (key, entry) = listed_output(manifest, name)?;
        self.download(&key, path, |size, sha| {
            check_output(manifest, &key, entry, size, sha)
        })
    }
}

/// The key and manifest entry of output `name` of the stage `manifest` commits; an
/// [`StoreError::Integrity`] when the manifest does not list it.
fn listed_output<'m>(manifest: &'m Manifest, name: &str) -> Result<(String, &'m OutputEntry)> {
    let key = manifest.output_key(name);
    match manifest.output(name) {
        Some(entry) => Ok((key, entry)),
        None => Err(StoreError::Integrity {
            reason: format!(
                "{} does not list it (it lists {}): the stage did not commit this output; rerun stage `{}` with --force",
                layout::done(&manifest.owner),
                manifest
                    .outputs
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                manifest.stage()
            ),
            key,
        }),
    }
}

/// An [`StoreError::Integrity`] unless `size` and `sha` (of what was read at `key`) are `entry`'s.
fn check_output(
    manifest: &Manifest,
    key: &str,
    entry: &OutputEntry,
    size: u64,
    sha: &str,
) -> Result<()> {
    if size == entry.size && sha == entry.sha256 {
        return Ok(());
    }
    let done = layout::done(&manifest.owner);
    Err(StoreError::Integrity {
        key: key.to_string(),
        reason: format!(
            "it has sha256 {sha} ({size} bytes) but {done} records sha256 {} ({} bytes): the output \
             changed after stage `{stage}` committed it, so nothing built on it can be trusted; \
             rerun that stage with --force (`emorg-worker {stage} --force --store <url> --key {}`), \
             or delete {done} and run the sweep again",
            entry.sha256,
            entry.size,
            manifest.owner.key(),
            stage = manifest.stage(),
        ),
    })
}

impl StoreError {
    /// Adds the key to a [`StoreError::Table`] context.
    fn with_key(self, key: &str) -> StoreError {
        match self {
            StoreError::Table { context, source } => StoreError::Table {
                context: format!("{key}: {context}"),
                source,
            },
            other => other,
        }
    }
}

/// Reads until `buf` is full or the file ends; returns the number of bytes read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn a_url_with_user_info_is_refused_without_repeating_it() {
        for (url, shown) in [
            (
                "s3://AKIAMARKER:MARKERsecret@bucket/p",
                "\"s3://***@bucket/p\"",
            ),
            ("s3://MARKER@bucket", "\"s3://***@bucket\""),
            (" memory://MARKER:pw@x ", "\" memory://***@x \""),
            ("file://u:MARKER@host/x", "\"file://***@host/x\""),
        ] {
            let err = Store::open(url).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, StoreError::BadUrl { .. }), "{msg}");
            assert!(!msg.contains("MARKER"), "{msg}");
            assert!(msg.contains(shown), "{shown} in {msg}");
            assert!(msg.contains("AWS_SECRET_ACCESS_KEY"), "{msg}");
        }
        // Any other error about the URL shows it without user info too.
        let msg = bad_url("gs://KEY:MARKER@b/p", "unsupported scheme").to_string();
        assert!(msg.contains("\"gs://***@b/p\""), "{msg}");
        // A directory with `@` in a file:// URL is a directory.
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/runs@2", dir.path().display());
        assert!(Store::open(&url).is_ok(), "{url}");
    }
}
