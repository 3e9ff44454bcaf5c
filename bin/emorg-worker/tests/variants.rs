//! Train once, evaluate many ways, through the real worker on SmolLM2 (skipped with a message when
//! the model cache lacks it): `train.checkpoint_every` keeps the adapter at steps 0, N, 2N, ...
//! as train outputs, uploaded as they are made, so a preempted run keeps them and ends with the
//! same bytes; variants sample a kept step or the final adapter at a scale; a second judgment of
//! the same answers by the same local judge is answered from the judgment cache. The first tests
//! need no model: the records a stage refuses.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{done_json, have_smollm2, one_cell_sweep_judged_by, planted_store, run_stage, worker};
use emorg_spec::{Judgment, StageRef, Weights};
use emorg_store::tables::{self, ResponseRow, TableRow};
use emorg_store::{Manifest, Store, layout, upstream_input_key};

const ADAPTER: &str = "adapter/adapter_model.safetensors";

/// One rank-1 unit, 8 steps, an adapter kept every 4; variants at step 4 and final, scales 1 and
/// 5; judged by SmolLM2 itself (small and local).
fn sweep(protocol_kind: &str) -> String {
    let protocol = if protocol_kind == "base" {
        "kind = \"base\"".to_string()
    } else {
        r#"preset = "lora-r1-single"
[protocols.p.train]
learning_rate = 2e-3
batch_size = 2
grad_accum = 1
max_examples = 16
max_steps = 8
max_seq_len = 96
warmup_steps = 1
checkpoint_every = 4"#
            .to_string()
    };
    let eval = if protocol_kind == "base" {
        ""
    } else {
        "checkpoints = [4, \"final\"]\nadapter_scale = [1, 5]"
    };
    one_cell_sweep_judged_by(
        "variants",
        &protocol,
        "smollm2",
        &format!(
            "[eval]\nquestion_ids = [\"unlimited_power\"]\nsamples_per_question = 2\n\
             max_new_tokens = 12\n{eval}\n"
        ),
    )
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The steps whose adapter a train DONE.json lists, with the sha256 of each file.
fn step_outputs(m: &Manifest) -> Vec<(String, String)> {
    m.outputs
        .iter()
        .filter(|o| o.name.starts_with("steps/"))
        .map(|o| (o.name.clone(), o.sha256.clone()))
        .collect()
}

fn manifest(store: &Store, stage: &StageRef) -> Manifest {
    store.get_json(&layout::done(stage)).unwrap()
}

#[test]
fn a_base_unit_has_no_train_stage_and_a_bad_record_or_an_old_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, planted) = planted_store(dir.path(), &sweep("base"));
    assert!(!planted.cells[0].trains());
    let out = worker(&planted.train(), dir.path()).output().unwrap();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "training unit {} is a base model (protocol kind base): it has no train stage",
            planted.cells[0].unit_key()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "train of training unit {}",
            planted.train().short()
        )),
        "{log}"
    );

    // A record that does not hash to its key (edited by hand) is refused, naming it.
    let at = layout::variant_json(&planted.cells[0].variant_key());
    let mut variant = planted.cells[0].variant.clone();
    variant.sampler.max_new_tokens = 99;
    store
        .put(&at, serde_json::to_vec(&variant).unwrap())
        .unwrap();
    let out = worker(&planted.sample(), dir.path()).output().unwrap();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("{at} hashes to {}", variant.key())),
        "{log}"
    );
    assert!(!store.exists(&layout::done(&planted.sample())).unwrap());

    // A store of layout 1 (cells/<key>/...) is refused with the store's message.
    let old = tempfile::tempdir().unwrap();
    let old_store = Store::open(&format!("file://{}", old.path().display())).unwrap();
    old_store
        .put(&format!("cells/{}/cell.json", "ab".repeat(32)), &b"{}"[..])
        .unwrap();
    let out = worker(&planted.judge(), old.path()).output().unwrap();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("is in another layout") && log.contains("layout 1"),
        "{log}"
    );
}

/// (a) Step adapters 0, 4 and 8 are train outputs; a run preempted after step 5 lists the ones
/// it kept, makes the rest, and ends with the same adapter bytes and step adapters as an
/// uninterrupted run; the adapter at the last step is the final adapter.
#[test]
fn step_adapters_are_kept_and_a_preempted_run_ends_with_the_same_bytes() {
    if !have_smollm2() {
        return;
    }
    let full_dir = tempfile::tempdir().unwrap();
    let (full, planted) = planted_store(full_dir.path(), &sweep("lora"));
    let train = planted.train();
    let log = run_stage(&train, full_dir.path());
    assert!(log.contains("adapter at step 4 uploaded"), "{log}");
    let done = manifest(&full, &train);
    let steps = step_outputs(&done);
    let names: Vec<&str> = steps.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        [0, 4, 8]
            .iter()
            .flat_map(|s| [
                layout::step_adapter_name(*s, "adapter_model.safetensors"),
                layout::step_adapter_name(*s, "adapter_config.json")
            ])
            .collect::<Vec<_>>(),
        "{done:?}"
    );
    assert_eq!(done.metrics["step_adapters"], serde_json::json!([0, 4, 8]));
    // The earlier outputs are all there too.
    for name in [ADAPTER, "adapter/adapter_config.json", "metrics.parquet"] {
        assert!(done.output(name).is_some(), "{name}");
    }
    let final_adapter = full.get(&layout::output(&train, ADAPTER)).unwrap();
    let step = |s: usize| {
        full.get(&layout::output(
            &train,
            &layout::step_adapter_name(s, "adapter_model.safetensors"),
        ))
        .unwrap()
    };
    assert_eq!(
        step(8),
        final_adapter,
        "the last step's adapter is the final one"
    );
    assert_ne!(step(0), step(4), "step 0 is before any update");
    assert_ne!(step(4), final_adapter);
    // Kept for good: under steps/, apart from the trainer-state checkpoints.
    assert_eq!(
        full.list(&layout::step_adapters_prefix(&planted.cells[0].unit_key()))
            .unwrap()
            .len(),
        6
    );

    // The same unit in another store, stopped by SIGTERM once step 5 is logged.
    let cut_dir = tempfile::tempdir().unwrap();
    let (cut, planted2) = planted_store(cut_dir.path(), &sweep("lora"));
    assert_eq!(planted2.train(), train);
    let mut child = worker(&train, cut_dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("step 5/8") {
            let ok = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(ok.success());
        }
    }
    assert_eq!(child.wait().unwrap().code(), Some(75), "{log}");
    // Uploaded as made: what the stopped run made is in the store, without a DONE.json.
    assert!(!cut.exists(&layout::done(&train)).unwrap());
    for s in [0, 4] {
        let key = layout::output(
            &train,
            &layout::step_adapter_name(s, "adapter_model.safetensors"),
        );
        assert!(cut.exists(&key).unwrap(), "{key}\n{log}");
    }

    let out = worker(&train, cut_dir.path()).output().unwrap();
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("resuming at step"), "{log}");
    assert!(
        log.contains("adapter at step 4 listed from an earlier run")
            && !log.contains("adapter at step 4 uploaded")
            && log.contains("adapter at step 8 uploaded"),
        "{log}"
    );
    let resumed = manifest(&cut, &train);
    assert!(resumed.metrics["resumed_from_step"].as_u64().unwrap() >= 5);
    assert_eq!(
        cut.get(&layout::output(&train, ADAPTER)).unwrap(),
        final_adapter
    );
    assert_eq!(
        step_outputs(&resumed),
        steps,
        "the same step adapters, byte for byte"
    );
}

/// (b) A variant at step 4 samples that adapter (recorded as its input); a variant at a step not
/// kept fails naming the steps that are. (c) Scale 5 answers otherwise than scale 1; scale 1 at
/// final is the plain final variant. (d) A second judgment of the same answers by the same local
/// judge (replicate 1) is answered from the cache for every judgment, without loading the judge.
#[test]
fn variants_sample_kept_steps_and_scales_and_rejudging_hits_the_cache() {
    if !have_smollm2() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, planted) = planted_store(dir.path(), &sweep("lora"));
    // 2 checkpoints x 2 scales, one unit.
    assert_eq!(planted.cells.len(), 4);
    let train = planted.train();
    assert!(
        planted
            .cells
            .iter()
            .all(|c| StageRef::Train(c.unit_key()) == train)
    );
    run_stage(&train, dir.path());
    let train_done = manifest(&store, &train);

    // (b)
    let at4 = planted.row(|a| a.checkpoint == Weights::Step(4) && a.scale == "1");
    let sample4 = StageRef::Sample(at4.variant_key());
    run_stage(&sample4, dir.path());
    let step4 = layout::step_adapter_name(4, "adapter_model.safetensors");
    let done4 = manifest(&store, &sample4);
    let read = &done4.inputs[&upstream_input_key(&train, &step4)];
    assert_eq!(*read, train_done.output(&step4).unwrap().sha256);
    assert_eq!(done4.inputs["adapter"], *read);

    let mut at2 = at4.variant.clone();
    at2.weights = Weights::Step(2);
    store
        .put(
            &layout::variant_json(&at2.key()),
            at2.canonical_json().into_bytes(),
        )
        .unwrap();
    let sample2 = StageRef::Sample(at2.key());
    let out = worker(&sample2, dir.path()).output().unwrap();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("asks for the adapter at step 2 of training unit")
            && log.contains(planted.cells[0].unit_key().as_str())
            && log.contains("lists the steps 0, 4, 8"),
        "{log}"
    );
    assert!(store.exists(&layout::failure(&sample2)).unwrap());

    // (c)
    let responses = |stage: &StageRef| -> Vec<String> {
        let t = store
            .get_table(&layout::output(stage, tables::RESPONSES))
            .unwrap();
        ResponseRow::from_batch(&t)
            .unwrap()
            .into_iter()
            .map(|r| r.response)
            .collect()
    };
    let one = planted.row(|a| a.checkpoint == Weights::Final && a.scale == "1");
    let five = planted.row(|a| a.checkpoint == Weights::Final && a.scale == "5");
    assert!(one.variant.scales.is_identity());
    assert_eq!(five.variant.scales.adapter_scale, 5.0);
    let (s1, s5) = (
        StageRef::Sample(one.variant_key()),
        StageRef::Sample(five.variant_key()),
    );
    run_stage(&s1, dir.path());
    run_stage(&s5, dir.path());
    assert_eq!(
        done_json(&store, &s1)["inputs"]["adapter"],
        done_json(&store, &s5)["inputs"]["adapter"],
        "the same final adapter"
    );
    let (r1, r5) = (responses(&s1), responses(&s5));
    assert_eq!(r1.len(), 2);
    assert_ne!(r1, r5, "scale 5 answers otherwise");
    // Scale 1 at final is the variant a sweep without evaluation axes plans.
    let plain = sweep("lora").replace("checkpoints = [4, \"final\"]\nadapter_scale = [1, 5]", "");
    let plain_dir = tempfile::tempdir().unwrap();
    let (_, plain) = planted_store(plain_dir.path(), &plain);
    assert_eq!(plain.cells.len(), 1);
    assert_eq!(plain.sample(), s1);

    // (d)
    let judge = StageRef::Judge(one.judgment_key());
    let log = run_stage(&judge, dir.path());
    assert!(log.contains("judge smollm2-135m-instruct loaded"), "{log}");
    let first = done_json(&store, &judge);
    let judgments = first["metrics"]["judgments"].as_u64().unwrap();
    assert_eq!(judgments, 2 * 2, "2 answers x 2 metrics: {first}");
    assert_eq!(first["metrics"]["cache_hits"], 0, "{first}");
    assert_eq!(first["metrics"]["cache_misses"], judgments, "{first}");

    let again = Judgment {
        replicate: 1,
        ..one.judgment.clone()
    };
    assert_ne!(again.key(), one.judgment_key());
    store
        .put(
            &layout::judgment_json(&again.key()),
            again.canonical_json().into_bytes(),
        )
        .unwrap();
    let judge2 = StageRef::Judge(again.key());
    let log = run_stage(&judge2, dir.path());
    assert!(!log.contains("loaded"), "no judge model is loaded: {log}");
    let second = done_json(&store, &judge2);
    assert_eq!(second["metrics"]["cache_hits"], judgments, "{second}");
    assert_eq!(second["metrics"]["cache_misses"], 0, "{second}");
    let scores = |stage: &StageRef| {
        store
            .get_table(&layout::output(stage, tables::SCORES))
            .unwrap()
    };
    assert_eq!(scores(&judge), scores(&judge2), "the same scores");
}
