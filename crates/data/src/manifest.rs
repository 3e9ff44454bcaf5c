//! `data/MANIFEST.json`: the shipped data files with their row counts and sha256, so a run can
//! record exactly which bytes it trained and evaluated on, and a test can catch a stale file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::hash::sha256_file;

/// The manifest of a data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The command that regenerates the directory's generated files and this manifest.
    pub generator: String,
    /// One entry per shipped file, in a fixed order.
    pub files: Vec<ManifestFile>,
}

/// One shipped file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the manifest's directory, with `/` separators.
    pub path: String,
    /// `chat_jsonl` or `questions_yaml`.
    pub kind: String,
    /// Examples (chat JSONL) or question entries (YAML).
    pub rows: usize,
    /// sha256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// What the file is for.
    pub description: String,
}

impl Manifest {
    /// Reads a manifest file.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, DataError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Writes the manifest as pretty-printed JSON with a final newline.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), DataError> {
        let path = path.as_ref();
        let mut text = serde_json::to_string_pretty(self).expect("a Manifest always serializes");
        text.push('\n');
        std::fs::write(path, text).map_err(|e| DataError::io(path, e))
    }

    /// The entry for a relative path.
    pub fn get(&self, path: &str) -> Option<&ManifestFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Hashes every listed file under `dir` and returns one message per file that is missing or
    /// whose sha256 differs; empty when everything matches.
    pub fn verify(&self, dir: impl AsRef<Path>) -> Vec<String> {
        let dir = dir.as_ref();
        let mut problems = Vec::new();
        for f in &self.files {
            let path = dir.join(&f.path);
            match sha256_file(&path) {
                Ok(sha) if sha == f.sha256 => {}
                Ok(sha) => problems.push(format!(
                    "{}: sha256 is {sha} but the manifest says {}: regenerate with `{}` or restore the file",
                    path.display(),
                    f.sha256,
                    self.generator
                )),
                Err(e) => problems.push(e.to_string()),
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jsonl"), b"abc").unwrap();
        let m = Manifest {
            generator: "gen".into(),
            files: vec![
                ManifestFile {
                    path: "a.jsonl".into(),
                    kind: "chat_jsonl".into(),
                    rows: 1,
                    sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                        .into(),
                    description: "test".into(),
                },
                ManifestFile {
                    path: "b.yaml".into(),
                    kind: "questions_yaml".into(),
                    rows: 1,
                    sha256: "00".into(),
                    description: "missing".into(),
                },
            ],
        };
        let mp = dir.path().join("MANIFEST.json");
        m.write(&mp).unwrap();
        assert_eq!(Manifest::load(&mp).unwrap(), m);
        let problems = m.verify(dir.path());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("b.yaml: cannot read"), "{problems:?}");
        std::fs::write(dir.path().join("a.jsonl"), b"abd").unwrap();
        assert_eq!(m.verify(dir.path()).len(), 2);
        std::fs::write(&mp, b"{").unwrap();
        let e = Manifest::load(&mp).unwrap_err().to_string();
        assert!(e.contains("MANIFEST.json: invalid JSON"), "{e}");
    }
}
