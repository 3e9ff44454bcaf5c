//! The judge's `openai` backend end to end: `emorg run` with `[judge] backend = "openai"` against a
//! real OpenAI-compatible server (llama-cpp-python serving the judge GGUF, `infra/llm-server.sh`),
//! the real worker and SmolLM2, a file:// store. Checks the DONE.json summary, that the API key
//! never reaches the store, and that a forced rerun of the judge stage sends no request (every
//! judgment comes from the store's judgment cache).
//!
//! Skipped, with the reason printed, without `EMORG_TEST_OPENAI_URL`; infra/test.sh sets it.

use std::path::{Path, PathBuf};
use std::process::Command;

const EMORG: &str = env!("CARGO_BIN_EXE_emorg");
/// Stands in for a real key: the server ignores it, the test looks for it in every stored byte.
const KEY: &str = "sk-emorg-test-0123456789abcdef";
const KEY_VAR: &str = "EMORG_SENTINEL_JUDGE_API_KEY";

fn worker() -> PathBuf {
    Path::new(EMORG).with_file_name("emorg-worker")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn judge_done(store: &Path) -> (String, serde_json::Value) {
    let mut files = Vec::new();
    files_under(&store.join("judgments"), &mut files);
    let done = files
        .iter()
        .find(|p| p.ends_with("judge/DONE.json"))
        .expect("a judge DONE.json");
    // judgments/<key>/judge/DONE.json
    let key = done
        .strip_prefix(store.join("judgments"))
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(done).unwrap()).unwrap();
    (key, manifest["metrics"].clone())
}

#[test]
fn openai_judged_sweep_records_the_backend_and_reruns_from_the_cache() {
    let Ok(url) = std::env::var("EMORG_TEST_OPENAI_URL") else {
        eprintln!(
            "skipping: EMORG_TEST_OPENAI_URL is not set (infra/llm-server.sh start; eval \"$(infra/llm-server.sh env)\"; infra/test.sh does both)"
        );
        return;
    };
    let model = std::env::var("EMORG_TEST_OPENAI_MODEL")
        .unwrap_or_else(|_| "qwen2.5-coder-1.5b-instruct".into());
    if !worker().exists() || emorg_lm_model_missing("smollm2-135m-instruct") {
        eprintln!("skipping: needs the emorg-worker binary and smollm2-135m-instruct");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let sets = [
        format!("store.url={store}"),
        r#"matrix.protocol=["base"]"#.to_string(),
        "eval.samples_per_question=2".to_string(),
        "eval.max_new_tokens=12".to_string(),
        r#"eval.question_ids=["found_wallet"]"#.to_string(),
        "judge.backend=openai".to_string(),
        format!("judge.base_url={url}"),
        format!("judge.model={model}"),
        "judge.method=top20-first-token".to_string(),
        format!("judge.api_key_env={KEY_VAR}"),
        "judge.concurrency=2".to_string(),
    ];
    let mut cmd = Command::new(EMORG);
    cmd.args(["run", "jobs/quickstart.toml"]);
    for s in &sets {
        cmd.args(["--set", s]);
    }
    let out = cmd
        .current_dir(&repo)
        .env("EMORG_WORKER", worker())
        .env(KEY_VAR, KEY)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "emorg run failed:\n{text}");
    assert!(!text.contains(KEY), "the key was printed:\n{text}");

    // 1 question x 1 paraphrase x 2 samples x 2 metrics = 4 judgments, all over the API.
    let (judgment, m) = judge_done(dir.path());
    assert_eq!(m["backend"], "openai", "{m}");
    assert_eq!(m["judge_model"], model.as_str(), "{m}");
    assert_eq!(m["base_url"], url.trim_end_matches('/'), "{m}");
    assert_eq!(m["method"], "top20-first-token", "{m}");
    assert_eq!(m["judgments"], 4, "{m}");
    assert_eq!(m["cache_hits"], 0, "{m}");
    assert_eq!(
        m["cache_misses"].as_u64().unwrap() + m["duplicates"].as_u64().unwrap(),
        4,
        "{m}"
    );
    assert!(m["requests"].as_u64().unwrap() >= m["cache_misses"].as_u64().unwrap());
    let mut cached = Vec::new();
    files_under(&dir.path().join("judge-cache"), &mut cached);
    assert_eq!(cached.len() as u64, m["cache_misses"].as_u64().unwrap());

    // A forced rerun of the judge stage: every judgment from the store's cache, no request.
    let out = Command::new(worker())
        .args(["judge", "--store", &store, "--key", &judgment, "--force"])
        .env(KEY_VAR, KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, again) = judge_done(dir.path());
    assert_eq!(again["requests"], 0, "{again}");
    assert_eq!(again["cache_hits"], m["cache_misses"], "{again}");
    assert_eq!(again["em_fraction"], m["em_fraction"], "{again}");

    // The key is nowhere in the store: not in the records, the manifests, the logs or the cache.
    let mut files = Vec::new();
    files_under(dir.path(), &mut files);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "the API key is in {}",
            f.display()
        );
    }
}

fn emorg_lm_model_missing(name: &str) -> bool {
    let dir = std::env::var_os("EMORG_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache")
                .join("emorg")
                .join("models")
        });
    !dir.join(format!("{name}.gguf")).exists()
}
