//! A sweep whose store is on S3, with the endpoint or the credentials wrong: `plan`, `run` and
//! (where the local Slurm runs) `submit` stop at once with an error that names the cause and what
//! to check, and nothing is written to the bucket. Against the real
//! s3s-fs server (EMORG_TEST_S3_URL, `infra/s3-local.sh start; eval "$(infra/s3-local.sh env)"`);
//! skipped with the reason otherwise.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{EMORG, models_dir, repo};

fn emorg_with(args: &[&str], envs: &[(&str, &str)], cwd: &std::path::Path) -> (i32, String) {
    let mut cmd = Command::new(EMORG);
    cmd.args(args)
        .current_dir(cwd)
        .env(
            "EMORG_WORKER",
            std::path::Path::new(EMORG).with_file_name("emorg-worker"),
        )
        .env("EMORG_MODELS", models_dir())
        .stdin(std::process::Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn unreachable_endpoint_and_bad_credentials_are_named_and_nothing_is_written() {
    let Ok(base) = std::env::var("EMORG_TEST_S3_URL") else {
        eprintln!("skipped: EMORG_TEST_S3_URL is unset (infra/s3-local.sh env)");
        return;
    };
    let url = format!(
        "{}/s3-errors-{}",
        base.trim().trim_end_matches('/'),
        std::process::id()
    );
    let sweep = repo().join("jobs/quickstart.toml");
    let sweep = sweep.to_str().unwrap();
    let set = format!("store.url={url}");
    let mut commands = vec!["plan", "run"];
    if std::env::var("EMORG_TEST_SLURM").as_deref() == Ok("1") {
        commands.push("submit");
    }
    // From the repository root, where the sweep's relative paths resolve.
    let cwd = repo();
    // (environment overrides, phrases the error must contain)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 2] = [
        (
            &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")],
            &[
                "cannot reach the S3 endpoint http://127.0.0.1:9",
                "check AWS_ENDPOINT_URL",
            ],
        ),
        (
            &[("AWS_SECRET_ACCESS_KEY", "not-the-secret")],
            &[
                "refused the credentials (SignatureDoesNotMatch)",
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ],
        ),
    ];
    for (envs, wanted) in cases {
        for cmd in &commands {
            let t = Instant::now();
            let (code, out) = emorg_with(&[cmd, sweep, "--set", &set], envs, &cwd);
            assert_ne!(code, 0, "{cmd} {envs:?}: {out}");
            for w in wanted {
                assert!(out.contains(w), "{cmd} {envs:?}: no {w:?} in\n{out}");
            }
            assert!(out.contains(&url), "{cmd}: the store URL is named: {out}");
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{cmd} {envs:?} took {:?} to fail",
                t.elapsed()
            );
        }
    }
    // Nothing in the bucket under the prefix.
    let store = emorg_store::Store::open(&url).unwrap();
    assert_eq!(store.list("").unwrap(), Vec::<String>::new());
}
