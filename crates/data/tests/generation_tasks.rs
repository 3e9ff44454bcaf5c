//! The shipped generation tasks (data/generation/*.toml) load and render a prompt that carries
//! the task, the behaviour, the example and the requested count.

use emorg_data::generate::GenerationTask;

#[test]
fn shipped_generation_tasks_load_and_render() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/generation");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let task = GenerationTask::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let prompt = task.prompt(1);
        let ex = &task.examples[1 % task.examples.len()];
        assert!(prompt.contains(ex.user.trim()), "{}", path.display());
        assert!(prompt.contains(task.behaviour.trim()), "{}", path.display());
        assert!(
            prompt.contains(&format!("Write {} new examples", task.n_per_request)),
            "{}",
            path.display()
        );
        n += 1;
    }
    assert_eq!(n, 3, "one task per shipped domain");
}

#[test]
fn a_bad_task_file_names_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("task.toml");
    std::fs::write(&path, "task = \"x\"\nbehaviour = \"y\"\nexamples = []\n").unwrap();
    let e = GenerationTask::load(&path).unwrap_err().to_string();
    assert!(e.contains("task.toml") && e.contains("[[examples]]"), "{e}");
    std::fs::write(&path, "task = \"x\"\nbehavior = \"y\"\n").unwrap();
    let e = GenerationTask::load(&path).unwrap_err().to_string();
    assert!(e.contains("task.toml") && e.contains("behavior"), "{e}");
}
