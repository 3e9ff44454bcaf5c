//! Errors that say where: file and line (or environment variable, or `--set` argument) and key path.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value (or a problem) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The sweep file; `line`/`col` are 1-based when known.
    File {
        path: PathBuf,
        line: Option<usize>,
        col: Option<usize>,
    },
    /// An `EMORG_*` environment variable, by name.
    Env(String),
    /// A `--set key=value` argument, by key.
    Set(String),
    /// A built-in default.
    Default,
}

impl Location {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Location::File {
            path: path.into(),
            line: None,
            col: None,
        }
    }

    /// The 1-based line in the sweep file, when the location is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Location::File { line, .. } => *line,
            _ => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { path, line, col } => {
                write!(f, "{}", path.display())?;
                if let Some(line) = line {
                    write!(f, ":{line}")?;
                    if let Some(col) = col {
                        write!(f, ":{col}")?;
                    }
                }
                Ok(())
            }
            Location::Env(var) => write!(f, "environment variable {var}"),
            Location::Set(key) => write!(f, "--set {key}"),
            Location::Default => f.write_str("built-in default"),
        }
    }
}

/// One problem in a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub location: Location,
    /// The dotted key path the problem is about, when there is one (`train.learning_rate`).
    pub key: Option<String>,
    /// The whole message, naming the key (without the location).
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Everything wrong with a sweep (at least one [`Diagnostic`]), one per line when displayed.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub diagnostics: Vec<Diagnostic>,
}

impl SpecError {
    pub fn new(d: Diagnostic) -> Self {
        SpecError {
            diagnostics: vec![d],
        }
    }
}

impl From<Diagnostic> for SpecError {
    fn from(d: Diagnostic) -> Self {
        SpecError::new(d)
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}
