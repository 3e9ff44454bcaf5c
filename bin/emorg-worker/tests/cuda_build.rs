//! The device choice (`EMORG_DEVICE`) of the worker, on this node, which has no GPU.
//!
//! Always (when the SmolLM2 GGUF is cached): the CPU-built worker refuses `EMORG_DEVICE=cuda` and
//! unknown values with a one-line error. With `EMORG_TEST_CUDA_WORKER` (the worker built with
//! `--features cuda` by infra/cuda-build.sh, whose `test-env` sets it together with
//! `EMORG_CUDA_STUB_LIBRARY_PATH`), that binary is started with the stub libcuda on the loader
//! path: `EMORG_DEVICE=cuda` must fail with the driver's cause and no panic, and `cpu` / `auto`
//! must compute the same logits as the CPU-built worker. Nothing here runs on a GPU.

use std::path::PathBuf;
use std::process::{Command, Output};

const CPU_WORKER: &str = env!("CARGO_BIN_EXE_emorg-worker");
const TEXT: &str = "def add(a, b):\n    return";

fn smollm2() -> Option<PathBuf> {
    emorg_lm::testing::cached_model("smollm2-135m-instruct")
}

/// The cuda-built worker and the loader path holding the stub driver, or None (with the reason).
fn cuda_worker() -> Option<(PathBuf, String)> {
    let Some(worker) = std::env::var_os("EMORG_TEST_CUDA_WORKER") else {
        eprintln!(
            "skipped: EMORG_TEST_CUDA_WORKER is unset (run infra/cuda-build.sh, then eval \"$(infra/cuda-build.sh test-env)\")"
        );
        return None;
    };
    let worker = PathBuf::from(worker);
    assert!(
        worker.is_file(),
        "EMORG_TEST_CUDA_WORKER={} does not exist: run infra/cuda-build.sh",
        worker.display()
    );
    let stubs = std::env::var("EMORG_CUDA_STUB_LIBRARY_PATH").expect(
        "EMORG_TEST_CUDA_WORKER is set but EMORG_CUDA_STUB_LIBRARY_PATH is not: eval \"$(infra/cuda-build.sh test-env)\"",
    );
    Some((worker, stubs))
}

/// `logits` of TEXT on `model` with `worker` under `EMORG_DEVICE=device` (None: unset).
fn logits(worker: &PathBuf, stubs: Option<&str>, device: Option<&str>, model: &str) -> Output {
    let mut cmd = Command::new(worker);
    cmd.args(["logits", "--model", model, "--text", TEXT])
        .env_remove("EMORG_DEVICE")
        .env("RUST_BACKTRACE", "1"); // a panic, if any, shows in stderr
    if let Some(stubs) = stubs {
        cmd.env("LD_LIBRARY_PATH", stubs);
    }
    if let Some(device) = device {
        cmd.env("EMORG_DEVICE", device);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one `error:` line of a failed run, after checking it failed cleanly (exit 1, no panic,
/// nothing on stdout).
fn clean_failure(out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    errors[0].to_string()
}

fn logits_json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_cpu_built_worker_refuses_cuda_and_unknown_devices() {
    let Some(model) = smollm2() else { return };
    let m = model.to_str().unwrap();
    let cpu = PathBuf::from(CPU_WORKER);
    let line = clean_failure(&logits(&cpu, None, Some("cuda"), m));
    assert!(
        line.contains(
            "EMORG_DEVICE=cuda but this emorg-worker was built without the `cuda` feature"
        ),
        "{line}"
    );
    let line = clean_failure(&logits(&cpu, None, Some("gpu"), m));
    assert!(
        line.contains("EMORG_DEVICE=\"gpu\": expected cpu, cuda or auto"),
        "{line}"
    );
    // auto on a CPU-only build is the CPU, silently.
    let out = logits(&cpu, None, Some("auto"), m);
    assert!(
        !logits_json(&out)["logits"][0]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_cuda_built_worker_without_a_gpu_fails_clearly_on_cuda_and_runs_on_cpu_otherwise() {
    let Some((worker, stubs)) = cuda_worker() else {
        return;
    };
    let Some(model) = smollm2() else { return };
    let m = model.to_str().unwrap();

    let line = clean_failure(&logits(&worker, Some(&stubs), Some("cuda"), m));
    assert!(
        line.contains(
            "EMORG_DEVICE=cuda but CUDA is not usable on this node: CUDA_ERROR_STUB_LIBRARY"
        ),
        "{line}"
    );
    assert!(line.contains("set EMORG_DEVICE=cpu"), "{line}");

    // The reference: the same command from the CPU-only build.
    let reference = logits_json(&logits(&PathBuf::from(CPU_WORKER), None, Some("cpu"), m));
    let vocab = reference["logits"][0].as_array().unwrap().len();
    assert_eq!(vocab, 49152, "SmolLM2's vocabulary");
    let on_cpu = logits_json(&logits(&worker, Some(&stubs), Some("cpu"), m));
    assert_eq!(on_cpu, reference, "cuda build, EMORG_DEVICE=cpu");
    for device in [Some("auto"), None] {
        let out = logits(&worker, Some(&stubs), device, m);
        let err = stderr(&out);
        assert!(
            err.contains("CUDA is not usable on this node (CUDA_ERROR_STUB_LIBRARY")
                && err.contains("running on the CPU"),
            "EMORG_DEVICE={device:?} must warn that it falls back: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            logits_json(&out),
            reference,
            "cuda build, EMORG_DEVICE={device:?}"
        );
    }
}
