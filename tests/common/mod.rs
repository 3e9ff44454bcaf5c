//! Shared by the CLI tests that run the real `emorg` binary from the repository root.

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

pub const EMORG: &str = env!("CARGO_BIN_EXE_emorg");

/// The repository root (relative paths in sweep files resolve from there).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The model cache the tests read (EMORG_MODELS, else ~/.cache/emorg/models).
pub fn models_dir() -> PathBuf {
    std::env::var_os("EMORG_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/emorg/models")
        })
}

/// Runs `emorg ARGS` in the repository root with the worker next to it and no terminal on stdin;
/// returns the exit code and stdout + stderr.
pub fn emorg(args: &[&str]) -> (i32, String) {
    let out = Command::new(EMORG)
        .args(args)
        .current_dir(repo())
        .env(
            "EMORG_WORKER",
            Path::new(EMORG).with_file_name("emorg-worker"),
        )
        // Not a terminal: emorg must not stop to ask for a path.
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run emorg");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The OpenAI-compatible test server (URL, model) that infra/test.sh starts, or `None` with the
/// skip reason printed.
pub fn openai_server() -> Option<(String, String)> {
    match (
        std::env::var("EMORG_TEST_OPENAI_URL"),
        std::env::var("EMORG_TEST_OPENAI_MODEL"),
    ) {
        (Ok(url), Ok(model)) => Some((url, model)),
        _ => {
            eprintln!(
                "skipped: EMORG_TEST_OPENAI_URL is not set (infra/test.sh starts the server)"
            );
            None
        }
    }
}

/// Every file under `dir`, recursively (none when it does not exist).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
