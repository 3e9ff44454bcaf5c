//! Secrets end to end (README, "Secrets"): a secret written anywhere a user can write a sweep
//! setting (the file's `[slurm]` env values and names, setup lines, extra directives, the store
//! URL; `--set`; `EMORG_*` variables) is refused by `plan`, `render` and `run` with a message that
//! names the field and never the value, before anything is written; secrets in the environment,
//! where they belong, reach the workers and nothing else: no rendered script, no file of the store,
//! no log, no worker command line. Every secret here is made up and holds `MARKER`.

mod common;

use std::fs;
use std::path::Path;

use common::{Env, line_of, text, walk};

const GH_TOKEN: &str = "ghp_MARKERabcdefghijklmnopqrstuvwxyz012345";
const HF_TOKEN: &str = "hf_MARKERabcdefghijklmnopqrstuvwxyzABCD";
const OPENAI_KEY: &str = "sk-proj-MARKERabc123DEF456ghi789JKL012mno";
const AWS_KEY_ID: &str = "AKIAZZZZMARKER123456";
const AWS_SECRET: &str = "Zm9vYmFyMARKERbazQux1234567890abcdEFGHIJ";

/// The files under `dir` (but `skip`) whose bytes hold `MARKER`.
fn files_with_marker(dir: &Path, skip: &[&Path]) -> Vec<String> {
    walk(dir)
        .into_iter()
        .filter(|p| !skip.contains(&p.as_path()))
        .filter(|p| {
            let bytes = fs::read(p).unwrap_or_default();
            bytes.windows(6).any(|w| w == b"MARKER")
        })
        .map(|p| p.display().to_string())
        .collect()
}

/// One way to put a secret into a sweep.
struct Case {
    what: &'static str,
    /// Appended to jobs/t.toml.
    append: String,
    /// Replaces the store URL in jobs/t.toml.
    store_url: Option<String>,
    sets: Vec<String>,
    envs: Vec<(&'static str, String)>,
    /// The location the message starts with: a line of jobs/t.toml holding this text, or this
    /// text itself (an environment variable or `--set` argument).
    at_line_of: Option<&'static str>,
    at: &'static str,
    /// What the message says about the field.
    says: &'static str,
}

#[test]
fn a_secret_in_any_sweep_setting_is_refused_naming_the_field_never_the_value() {
    let env = Env::ready();
    let cases = [
        Case {
            what: "[slurm] env value",
            append: format!("\n[slurm]\nenv = {{ NOTE = \"{GH_TOKEN}\" }}\n"),
            store_url: None,
            sets: vec![],
            envs: vec![],
            at_line_of: Some("NOTE ="),
            at: "",
            says: "`slurm.env.NOTE` holds a GitHub token",
        },
        Case {
            what: "[slurm] env name",
            append: "\n[slurm.train]\nenv = { WANDB_API_KEY = \"MARKERwandb\" }\n".into(),
            store_url: None,
            sets: vec![],
            envs: vec![],
            at_line_of: Some("WANDB_API_KEY"),
            at: "",
            says: "`slurm.train.env.WANDB_API_KEY`: `WANDB_API_KEY` looks like a credential",
        },
        Case {
            what: "[slurm] setup",
            append: format!(
                "\n[slurm]\nsetup = [\n  \"module load cuda/12.4\",\n  \"huggingface-cli login --token {HF_TOKEN}\",\n]\n"
            ),
            store_url: None,
            sets: vec![],
            envs: vec![],
            at_line_of: Some("huggingface-cli"),
            at: "",
            says: "`slurm.setup[1]` holds a Hugging Face token",
        },
        Case {
            what: "[slurm] extra",
            append: format!("\n[slurm]\nextra = [\"--comment={OPENAI_KEY}\"]\n"),
            store_url: None,
            sets: vec![],
            envs: vec![],
            at_line_of: Some("--comment"),
            at: "",
            says: "`slurm.extra[0]` holds an OpenAI API key",
        },
        Case {
            what: "store URL user info",
            append: String::new(),
            store_url: Some(format!("s3://{AWS_KEY_ID}:{AWS_SECRET}@bucket/prefix")),
            sets: vec![],
            envs: vec![],
            at_line_of: Some("url = "),
            at: "",
            says: "`store.url` holds credentials before `@` (s3://***@bucket/prefix)",
        },
        Case {
            what: "--set",
            append: String::new(),
            store_url: None,
            sets: vec!["slurm.setup=[\"export WANDB_API_KEY=MARKERwandb\"]".into()],
            envs: vec![],
            at_line_of: None,
            at: "--set slurm.setup",
            says: "`slurm.setup[0]` holds a secret assigned to a secret-named variable",
        },
        Case {
            what: "EMORG_ variable",
            append: String::new(),
            store_url: None,
            sets: vec![],
            envs: vec![("EMORG_STORE__URL", "s3://KEY:MARKERsecret@bucket".into())],
            at_line_of: None,
            at: "environment variable EMORG_STORE__URL",
            says: "`store.url` holds credentials before `@` (s3://***@bucket)",
        },
    ];
    for case in &cases {
        let sweep = env.sweep("");
        let mut toml = fs::read_to_string(&sweep).unwrap();
        if let Some(url) = &case.store_url {
            toml = toml.replace(&env.store_url(), url);
        }
        toml.push_str(&case.append);
        fs::write(&sweep, &toml).unwrap();
        let at = match case.at_line_of {
            Some(needle) => format!("jobs/t.toml:{}", line_of(&sweep, needle)),
            None => case.at.to_string(),
        };
        for cmd in ["plan", "render", "run"] {
            let mut args = vec![cmd, "jobs/t.toml"];
            match cmd {
                "render" => args.extend(["--out", "rendered"]),
                "run" => args.push("--no-report"),
                _ => {}
            }
            for s in &case.sets {
                args.extend(["--set", s.as_str()]);
            }
            let envs: Vec<(&str, &str)> = case.envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let out = env.emorg(&args, &envs);
            let (stdout, stderr) = text(&out);
            let what = format!("{} / emorg {cmd}", case.what);
            assert_eq!(out.status.code(), Some(2), "{what}: {stdout}{stderr}");
            assert!(
                stderr.contains(&format!("{at}: {}", case.says)),
                "{what}: expected `{at}: {}` in\n{stderr}",
                case.says
            );
            assert!(
                !stdout.contains("MARKER") && !stderr.contains("MARKER"),
                "{what}: the secret is repeated: {stdout}{stderr}"
            );
        }
    }
    // Refused before anything was written: no store, no scripts, no logs, no record.
    assert!(!env.path("store").exists());
    assert!(!env.path("rendered").exists());
    assert!(!env.path("worker-argv.log").exists());
    let found = files_with_marker(env.dir.path(), &[&env.path("jobs/t.toml")]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn secrets_in_the_environment_reach_the_workers_and_nothing_else() {
    let env = Env::ready();
    let sweep = env.sweep("");
    let mut toml = fs::read_to_string(&sweep).unwrap();
    // What is allowed: ordinary set-up lines and variables, and references to the environment.
    toml.push_str(
        r#"
[slurm]
setup = ["module load cuda/12.4", "export HF_TOKEN=\"$HF_TOKEN\""]
env = { HF_HOME = "/scratch/hf", TOKENIZERS_PARALLELISM = "false" }
"#,
    );
    fs::write(&sweep, toml).unwrap();
    let vars = [
        ("AWS_ACCESS_KEY_ID", AWS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("HF_TOKEN", HF_TOKEN),
    ];
    let names: Vec<&str> = vars.iter().map(|(k, _)| *k).collect();
    let worker = env.recording_worker(&names);
    let worker = worker.display().to_string();
    let mut envs: Vec<(&str, &str)> = vars.to_vec();
    envs.push(("EMORG_WORKER", &worker));

    let mut outputs = String::new();
    for args in [
        &["plan", "jobs/t.toml"][..],
        &["render", "jobs/t.toml", "--out", "rendered"],
        &["run", "jobs/t.toml", "--no-report"],
        &["plan", "jobs/t.toml"],
    ] {
        let out = env.emorg(args, &envs);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stdout}{stderr}");
        outputs.push_str(&stdout);
        outputs.push_str(&stderr);
    }
    assert!(
        outputs.contains("to run: 0 train, 0 sample, 0 judge (0 stages)"),
        "{outputs}"
    );
    assert!(!outputs.contains("MARKER"), "{outputs}");

    // The scripts were rendered, with the reference and without the secrets.
    let scripts: Vec<_> = walk(&env.path("rendered"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sbatch"))
        .collect();
    assert!(!scripts.is_empty());
    for s in &scripts {
        let text = fs::read_to_string(s).unwrap();
        assert!(
            text.lines().any(|l| l == "export HF_TOKEN=\"$HF_TOKEN\""),
            "{text}"
        );
    }

    // The workers got the secrets from their environment, not on their command line.
    let env_log = fs::read_to_string(env.path("worker-env.log")).unwrap();
    for (name, value) in vars {
        let line = format!("{name}={}", value.len());
        assert!(env_log.lines().any(|l| l == line), "{line} in\n{env_log}");
    }
    let argv = fs::read_to_string(env.path("worker-argv.log")).unwrap();
    assert_eq!(argv.lines().count(), 5, "{argv}");
    assert!(
        argv.lines().all(|l| l.contains("--store file://")),
        "{argv}"
    );

    // Nothing under the scratch directory holds a secret: rendered scripts, the store (identities,
    // sweep record, stage logs), the local logs, the worker command lines.
    let logs = walk(env.dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .count();
    assert!(logs >= 5, "the stage logs are among the files checked");
    assert!(env.path("store/sweeps/t/latest.json").is_file());
    let found = files_with_marker(env.dir.path(), &[]);
    assert!(found.is_empty(), "{found:?}");
}
