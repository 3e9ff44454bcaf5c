//! The crate's error type. Every variant names the file it is about, and the line or entry where
//! that is known, so a message printed on its own still says where to look.

use std::path::PathBuf;

/// Errors from loading datasets, question sets and manifests.
///
/// The underlying cause is part of the message (there is no `source()` chain), so `{}` alone prints
/// everything a user needs: `data/x.jsonl:7: invalid JSON: ...`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{}: cannot read: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// A line of a chat JSONL file is not a valid chat example.
    #[error("{}:{line}: {message}", path.display())]
    ChatLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and what to do about it.
        message: String,
    },
    /// A question-set file is not valid YAML, or not a list of mappings.
    #[error("{origin}: {message}")]
    Yaml {
        /// The file name (or another name given by the caller).
        origin: String,
        /// The parser's message, with its line and column where it gave them.
        message: String,
    },
    /// One entry of a question-set file is invalid.
    #[error("{origin}: entry [{index}]{}: {message}", id_suffix(id.as_deref()))]
    Question {
        /// The file name (or another name given by the caller).
        origin: String,
        /// 0-based position of the entry in the file's top-level list.
        index: usize,
        /// The entry's `id`, when it has one.
        id: Option<String>,
        /// What is wrong and what to do about it.
        message: String,
    },
    /// A generation task file is invalid, or a generation run cannot continue.
    #[error("{}: {message}", path.display())]
    Task {
        /// The task file (or the output file of the run).
        path: PathBuf,
        /// What is wrong and what to do about it.
        message: String,
    },
    /// A JSON file (such as `MANIFEST.json`) could not be parsed.
    #[error("{}: invalid JSON: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
}

fn id_suffix(id: Option<&str>) -> String {
    match id {
        Some(id) => format!(" (id {id:?})"),
        None => String::new(),
    }
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_and_place() {
        let e = DataError::ChatLine {
            path: "data/x.jsonl".into(),
            line: 7,
            message: "invalid JSON".into(),
        };
        assert_eq!(e.to_string(), "data/x.jsonl:7: invalid JSON");
        let e = DataError::Question {
            origin: "q.yaml".into(),
            index: 3,
            id: Some("quick_buck".into()),
            message: "missing field \"paraphrases\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "q.yaml: entry [3] (id \"quick_buck\"): missing field \"paraphrases\""
        );
        let e = DataError::io(
            "nope.jsonl",
            std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(e.to_string(), "nope.jsonl: cannot read: gone");
    }
}
