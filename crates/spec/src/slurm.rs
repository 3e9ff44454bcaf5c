//! `[slurm]`: how `emorg submit` asks Slurm for resources (the cluster side, kept apart from the
//! experiment: nothing here enters a cell or its key).
//!
//! ```toml
//! [slurm]
//! partition = "gpu"
//! account = "lab"
//! qos = "normal"
//! time = "04:00:00"                        # --time
//! mem = "16G"                              # --mem
//! cpus_per_task = 4                        # --cpus-per-task (and the worker's --threads)
//! gpus = "1"                               # --gpus
//! gres = "gpu:a100:1"                      # --gres
//! constraint = "a100"                      # --constraint
//! exclusive = false                        # --exclusive
//! setup = ["module load cuda/12.4"]        # shell lines run before the worker, verbatim
//! env = { HF_HOME = "/scratch/hf" }        # exported before the worker (values shell-quoted)
//! extra = ["--mail-type=FAIL"]             # extra #SBATCH directives
//! throttle = 50                            # at most this many tasks of an array run at once (%50)
//! grace_s = 120                            # --signal=B:USR1@120: time to checkpoint before the limit
//! max_requeues = 3                         # a stage asking to be requeued (exit 75) more often fails
//! worker = "/opt/emorg/bin/emorg-worker"   # the worker on the nodes (default: the one emorg finds)
//! state_dir = "/shared/emorg-slurm"        # scripts, cell lists and Slurm logs (a shared filesystem)
//! templates = "my-templates"               # a directory overriding templates/slurm/*.sbatch.j2
//!
//! [slurm.train]                            # per stage: train, sample, judge
//! mem = "32G"
//! [slurm.models.qwen-32b]                  # per model (a [models] name), and per model and stage
//! partition = "gpu"
//! gpus = "1"
//! mem = "80G"
//! [slurm.models.qwen-32b.train]
//! time = "12:00:00"
//! [slurm.protocols.full-sft]               # per protocol (a [protocols] name), and per protocol and stage
//! mem = "64G"
//! [slurm.protocols.full-sft.train]
//! time = "12:00:00"
//! ```
//!
//! Precedence, lowest first: `[slurm]` < `[slurm.<stage>]` < `[slurm.models.M]` <
//! `[slurm.models.M.<stage>]` < `[slurm.protocols.P]` < `[slurm.protocols.P.<stage>]`: the model
//! picks the hardware (a 32B model a GPU node, SmolLM2 a CPU node), a protocol adjusts within it.
//! Scalars replace; `setup`, `extra` and `env` add to the lower layers.
//! Values that become `#SBATCH` directives may not hold spaces, quotes or shell metacharacters (sbatch
//! reads those lines itself). No value here may hold a secret (`setup` lines, `env` names and values,
//! `extra` directives; see [`crate::secrets`] and the secrets check of `crate::resolve`): export
//! secrets in the submitting shell (sbatch passes the environment on), never in a sweep file or a
//! job script.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cell::Stage;
use crate::error::Diagnostic;
use crate::load::Sweep;
use crate::suggest::did_you_mean;

macro_rules! resource_fields {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        pub struct $name {
            /// `--partition`.
            pub partition: Option<String>,
            /// `--account`.
            pub account: Option<String>,
            /// `--qos`.
            pub qos: Option<String>,
            /// `--time` (`MM`, `HH:MM:SS`, `D-HH:MM:SS`, ...).
            pub time: Option<String>,
            /// `--mem` (`16G`, `512M`).
            pub mem: Option<String>,
            /// `--cpus-per-task`; also the worker's `--threads` unless `threads` says otherwise.
            pub cpus_per_task: Option<u32>,
            /// `--gpus`.
            pub gpus: Option<String>,
            /// `--gres`.
            pub gres: Option<String>,
            /// `--constraint`.
            pub constraint: Option<String>,
            /// `--exclusive`.
            pub exclusive: Option<bool>,
            /// Worker threads (`--threads`); default `cpus_per_task`, else 1.
            pub threads: Option<u32>,
            /// Shell lines run before the worker (module loads, activating an environment), verbatim.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub setup: Vec<String>,
            /// Variables exported before the worker; values are shell-quoted.
            #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
            pub env: BTreeMap<String, String>,
            /// Extra `#SBATCH` directives (`--mail-type=FAIL`).
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub extra: Vec<String>,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            /// The resource fields of this table.
            pub fn resources(&self) -> SlurmResources {
                SlurmResources {
                    partition: self.partition.clone(),
                    account: self.account.clone(),
                    qos: self.qos.clone(),
                    time: self.time.clone(),
                    mem: self.mem.clone(),
                    cpus_per_task: self.cpus_per_task,
                    gpus: self.gpus.clone(),
                    gres: self.gres.clone(),
                    constraint: self.constraint.clone(),
                    exclusive: self.exclusive,
                    threads: self.threads,
                    setup: self.setup.clone(),
                    env: self.env.clone(),
                    extra: self.extra.clone(),
                }
            }
        }
    };
}

resource_fields! {
    /// The resource settings of one layer (`[slurm]`, `[slurm.train]`, `[slurm.protocols.P]`, ...),
    /// and of a stage once the layers are merged ([`SlurmConfig::effective`]).
    #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SlurmResources {}
}

resource_fields! {
    /// `[slurm.models.M]` or `[slurm.protocols.P]`: resources, and per stage.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SlurmProtocol {
        pub train: Option<SlurmResources>,
        pub sample: Option<SlurmResources>,
        pub judge: Option<SlurmResources>,
    }
}

resource_fields! {
    /// `[slurm]`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SlurmConfig {
        pub train: Option<SlurmResources>,
        pub sample: Option<SlurmResources>,
        pub judge: Option<SlurmResources>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub models: BTreeMap<String, SlurmProtocol>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub protocols: BTreeMap<String, SlurmProtocol>,
        /// At most this many tasks of one array run at once (`--array=...%throttle`).
        pub throttle: Option<u32>,
        /// Seconds before the time limit at which the batch shell gets SIGUSR1 (default 120).
        pub grace_s: Option<u32>,
        /// Requeues a stage may ask for (exit 75) before it counts as failed (default 3).
        pub max_requeues: Option<u32>,
        /// Path of `emorg-worker` on the compute nodes (default: the worker `emorg` itself finds).
        pub worker: Option<String>,
        /// Directory for submissions (scripts, cell lists, Slurm logs); must be visible from the
        /// compute nodes. Default: `<cache dir>/emorg/slurm`.
        pub state_dir: Option<String>,
        /// Directory of templates overriding the built-in `templates/slurm/*.sbatch.j2`.
        pub templates: Option<String>,
    }
}

/// Default `grace_s`.
pub const DEFAULT_GRACE_S: u32 = 120;
/// Default `max_requeues`.
pub const DEFAULT_MAX_REQUEUES: u32 = 3;

impl SlurmResources {
    /// `self` with `over` on top: scalars given in `over` replace, lists and env add.
    pub fn overlay(&self, over: &SlurmResources) -> SlurmResources {
        let mut env = self.env.clone();
        env.extend(over.env.clone());
        SlurmResources {
            partition: over.partition.clone().or_else(|| self.partition.clone()),
            account: over.account.clone().or_else(|| self.account.clone()),
            qos: over.qos.clone().or_else(|| self.qos.clone()),
            time: over.time.clone().or_else(|| self.time.clone()),
            mem: over.mem.clone().or_else(|| self.mem.clone()),
            cpus_per_task: over.cpus_per_task.or(self.cpus_per_task),
            gpus: over.gpus.clone().or_else(|| self.gpus.clone()),
            gres: over.gres.clone().or_else(|| self.gres.clone()),
            constraint: over.constraint.clone().or_else(|| self.constraint.clone()),
            exclusive: over.exclusive.or(self.exclusive),
            threads: over.threads.or(self.threads),
            setup: self.setup.iter().chain(&over.setup).cloned().collect(),
            env,
            extra: self.extra.iter().chain(&over.extra).cloned().collect(),
        }
    }

    /// The worker's `--threads`: `threads`, else `cpus_per_task`, else 1.
    pub fn worker_threads(&self) -> u32 {
        self.threads.or(self.cpus_per_task).unwrap_or(1).max(1)
    }
}

fn stage_table(
    train: &Option<SlurmResources>,
    sample: &Option<SlurmResources>,
    judge: &Option<SlurmResources>,
    stage: Stage,
) -> Option<SlurmResources> {
    match stage {
        Stage::Train => train.clone(),
        Stage::Sample => sample.clone(),
        Stage::Judge => judge.clone(),
    }
}

impl SlurmConfig {
    /// The merged resources of `stage` for cells of `model` and `protocol` (sweep names; `""`
    /// for neither).
    pub fn effective(&self, model: &str, protocol: &str, stage: Stage) -> SlurmResources {
        let mut r = self.resources();
        if let Some(s) = stage_table(&self.train, &self.sample, &self.judge, stage) {
            r = r.overlay(&s);
        }
        for layer in [self.models.get(model), self.protocols.get(protocol)]
            .into_iter()
            .flatten()
        {
            r = r.overlay(&layer.resources());
            if let Some(s) = stage_table(&layer.train, &layer.sample, &layer.judge, stage) {
                r = r.overlay(&s);
            }
        }
        r
    }

    pub fn grace_s(&self) -> u32 {
        self.grace_s.unwrap_or(DEFAULT_GRACE_S)
    }

    pub fn max_requeues(&self) -> u32 {
        self.max_requeues.unwrap_or(DEFAULT_MAX_REQUEUES)
    }
}

/// Characters a directive value may not hold: sbatch parses `#SBATCH` lines itself, so a value
/// with these would be cut or reinterpreted.
fn directive_value_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("is empty".into());
    }
    let bad: Vec<char> = value
        .chars()
        .filter(|c| !c.is_ascii_graphic() || "'\"`$;#\\<>".contains(*c))
        .collect();
    if bad.is_empty() {
        None
    } else {
        Some(format!(
            "holds {:?}: directive values may not contain spaces, quotes, `$`, `;`, `#`, `\\`, `<`, `>` or control characters",
            bad.iter().collect::<String>()
        ))
    }
}

fn check_resources(sweep: &Sweep, prefix: &str, r: &SlurmResources, out: &mut Vec<Diagnostic>) {
    let directives = [
        ("partition", &r.partition),
        ("account", &r.account),
        ("qos", &r.qos),
        ("time", &r.time),
        ("mem", &r.mem),
        ("gpus", &r.gpus),
        ("gres", &r.gres),
        ("constraint", &r.constraint),
    ];
    for (field, value) in directives {
        if let Some(v) = value
            && let Some(problem) = directive_value_problem(v)
        {
            let key = format!("{prefix}.{field}");
            out.push(sweep.diag(&key, format!("bad value for `{key}`: {v:?} {problem}")));
        }
    }
    for (field, value) in [("cpus_per_task", r.cpus_per_task), ("threads", r.threads)] {
        if value == Some(0) {
            let key = format!("{prefix}.{field}");
            out.push(sweep.diag(&key, format!("bad value for `{key}`: must be >= 1")));
        }
    }
    for (i, line) in r.setup.iter().enumerate() {
        if line.contains('\n') || line.contains('\r') {
            let key = format!("{prefix}.setup");
            out.push(sweep.diag(
                &key,
                format!("`{key}`[{i}] holds a line break: give one shell line per entry"),
            ));
        }
    }
    for (i, d) in r.extra.iter().enumerate() {
        let key = format!("{prefix}.extra");
        if !d.starts_with('-') {
            out.push(sweep.diag(
                &key,
                format!("`{key}`[{i}] = {d:?} is not an sbatch option: write it as `--name=value`"),
            ));
        } else if let Some(problem) = directive_value_problem(d) {
            out.push(sweep.diag(&key, format!("`{key}`[{i}] = {d:?} {problem}")));
        }
    }
    for (name, value) in &r.env {
        let key = format!("{prefix}.env.{name}");
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        // Names that look like credentials are refused by the secrets check
        // (`crate::resolve::credentials`), with every other secret in the sweep.
        if !valid_name {
            out.push(sweep.diag(
                &key,
                format!("`{name}` is not a shell variable name ([A-Za-z_][A-Za-z0-9_]*)"),
            ));
        }
        if value.contains('\n') || value.contains('\0') {
            out.push(sweep.diag(&key, format!("`{key}` holds a line break or NUL")));
        }
    }
}

/// Static checks of `[slurm]` (value syntax, model and protocol names), as diagnostics.
pub fn check_slurm(sweep: &Sweep) -> Vec<Diagnostic> {
    let s = &sweep.file.slurm;
    let mut out = Vec::new();
    check_resources(sweep, "slurm", &s.resources(), &mut out);
    let stages = |t: &Option<SlurmResources>, name: &str, prefix: &str, out: &mut Vec<_>| {
        if let Some(t) = t {
            check_resources(sweep, &format!("{prefix}.{name}"), t, out);
        }
    };
    stages(&s.train, "train", "slurm", &mut out);
    stages(&s.sample, "sample", "slurm", &mut out);
    stages(&s.judge, "judge", "slurm", &mut out);
    for (name, p) in &s.models {
        let prefix = format!("slurm.models.{name}");
        if !sweep.file.models.contains_key(name) {
            out.push(sweep.diag(
                &prefix,
                format!(
                    "`{prefix}`: no model `{name}` in [models]{}",
                    did_you_mean(name, sweep.file.models.keys())
                ),
            ));
        }
        // `@` separates model and protocol in a resource profile's name (`emorg_slurm::profile_of`).
        if name.contains('@') {
            out.push(sweep.diag(
                &prefix,
                format!("`{prefix}`: a model name here may not hold `@`"),
            ));
        }
        check_resources(sweep, &prefix, &p.resources(), &mut out);
        stages(&p.train, "train", &prefix, &mut out);
        stages(&p.sample, "sample", &prefix, &mut out);
        stages(&p.judge, "judge", &prefix, &mut out);
    }
    for (name, p) in &s.protocols {
        let prefix = format!("slurm.protocols.{name}");
        if !sweep.file.protocols.contains_key(name) {
            out.push(sweep.diag(
                &prefix,
                format!(
                    "`{prefix}`: no protocol `{name}` in [protocols]{}",
                    did_you_mean(name, sweep.file.protocols.keys())
                ),
            ));
        }
        if name.contains('@') {
            out.push(sweep.diag(
                &prefix,
                format!("`{prefix}`: a protocol name here may not hold `@`"),
            ));
        }
        check_resources(sweep, &prefix, &p.resources(), &mut out);
        stages(&p.train, "train", &prefix, &mut out);
        stages(&p.sample, "sample", &prefix, &mut out);
        stages(&p.judge, "judge", &prefix, &mut out);
    }
    if s.throttle == Some(0) {
        out.push(sweep.diag(
            "slurm.throttle",
            "bad value for `slurm.throttle`: must be >= 1",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::LoadOptions;

    const BASE: &str = r#"
name = "s"
[matrix]
model = ["m"]
protocol = ["base", "full-sft"]
dataset = ["d"]
[models.m]
registry = "smollm2-135m-instruct"
[datasets.d]
path = "d.jsonl"
[models.unused]
registry = "smollm2-135m-instruct"
[protocols.base]
kind = "base"
[protocols.full-sft]
kind = "lora"
rank = 1
modules = ["down_proj"]
"#;

    fn load(extra: &str) -> Result<Sweep, crate::SpecError> {
        Sweep::from_text(
            "sweep.toml",
            format!("{BASE}{extra}"),
            &LoadOptions::default(),
        )
    }

    #[test]
    fn layers_merge_in_order() {
        let sweep = load(
            r#"
[slurm]
partition = "cpu"
mem = "4G"
setup = ["module load a"]
env = { A = "1" }
[slurm.train]
mem = "8G"
[slurm.protocols.full-sft]
mem = "64G"
setup = ["module load b"]
[slurm.protocols.full-sft.train]
time = "12:00:00"
env = { A = "2", B = "x y" }
"#,
        )
        .unwrap();
        let s = &sweep.file.slurm;
        let base_train = s.effective("m", "base", Stage::Train);
        assert_eq!(base_train.mem.as_deref(), Some("8G"));
        assert_eq!(base_train.partition.as_deref(), Some("cpu"));
        assert_eq!(
            s.effective("m", "base", Stage::Sample).mem.as_deref(),
            Some("4G")
        );
        let sft_train = s.effective("m", "full-sft", Stage::Train);
        assert_eq!(sft_train.mem.as_deref(), Some("64G"));
        assert_eq!(sft_train.time.as_deref(), Some("12:00:00"));
        assert_eq!(sft_train.setup, vec!["module load a", "module load b"]);
        assert_eq!(sft_train.env["A"], "2");
        assert_eq!(s.effective("m", "full-sft", Stage::Judge).time, None);
        assert_eq!(sft_train.worker_threads(), 1);
    }

    /// A model's table picks its hardware for every protocol; a protocol's table ranks above it.
    #[test]
    fn a_models_resources_apply_to_its_cells_below_the_protocols() {
        let sweep = load(
            r#"
[slurm]
partition = "cpu"
mem = "4G"
[slurm.models.m]
partition = "gpu"
gpus = "1"
mem = "80G"
setup = ["module load cuda"]
[slurm.models.m.train]
time = "12:00:00"
[slurm.protocols.full-sft]
mem = "96G"
"#,
        )
        .unwrap();
        let s = &sweep.file.slurm;
        let base = s.effective("m", "base", Stage::Train);
        assert_eq!(
            (
                base.partition.as_deref(),
                base.gpus.as_deref(),
                base.mem.as_deref()
            ),
            (Some("gpu"), Some("1"), Some("80G"))
        );
        assert_eq!(base.time.as_deref(), Some("12:00:00"));
        assert_eq!(base.setup, vec!["module load cuda"]);
        assert_eq!(s.effective("m", "base", Stage::Sample).time, None);
        assert_eq!(
            s.effective("m", "full-sft", Stage::Train).mem.as_deref(),
            Some("96G")
        );
        // Another model keeps [slurm].
        let other = s.effective("unused", "base", Stage::Train);
        assert_eq!(
            (other.partition.as_deref(), other.gpus),
            (Some("cpu"), None)
        );

        let e = load(
            "[slurm.models.mm]
mem = \"1G\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no model `mm`") && e.contains("`m`"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_located_errors() {
        let e = load("[slurm]\npartiton = \"gpu\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("partiton") && e.contains("partition"), "{e}");
        assert!(e.contains("sweep.toml:"), "{e}");

        let e = load("[slurm.protocols.ful-sft]\nmem = \"1G\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no protocol `ful-sft`") && e.contains("full-sft"),
            "{e}"
        );

        let e = load("[slurm]\npartition = \"gpu; rm -rf /\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("slurm.partition") && e.contains("directive values"),
            "{e}"
        );

        let e = load("[slurm]\nenv = { AWS_SECRET_ACCESS_KEY = \"x\" }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("looks like a credential"), "{e}");

        let e = load("[slurm]\nextra = [\"mail-type=FAIL\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an sbatch option"), "{e}");

        let e = load("[slurm]\ncpus_per_task = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("slurm.cpus_per_task") && e.contains(">= 1"),
            "{e}"
        );
    }

    #[test]
    fn absent_table_is_empty() {
        let sweep = load("").unwrap();
        assert_eq!(sweep.file.slurm, SlurmConfig::default());
        assert_eq!(sweep.file.slurm.grace_s(), DEFAULT_GRACE_S);
    }
}
