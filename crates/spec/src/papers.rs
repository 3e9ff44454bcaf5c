//! The papers' training datasets and evaluation question files, known by name.
//!
//! Their authors distribute them protected against scraping (an encrypted archive that the user
//! unlocks with the authors' tool), so emorg never ships, fetches or prints them: a sweep names one
//! with `[datasets.X] paper = "<name>"`, the user supplies the decompressed file's `path`, and the
//! published sha256 below pins it (a different file is an error naming both hashes).
//! Row counts and hashes are those of the decompressed `.jsonl` files of the official repository
//! (em-protocol.md §2).

/// One of the papers' datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaperDataset {
    /// The name a sweep uses (`paper = "..."`).
    pub name: &'static str,
    /// The file name in the unlocked archive.
    pub file: &'static str,
    /// Published number of rows (two-turn chats).
    pub rows: usize,
    /// sha256 of the decompressed file.
    pub sha256: &'static str,
    /// Where it comes from, in a few words.
    pub origin: &'static str,
}

/// Every dataset the papers trained on, by name.
pub const PAPER_DATASETS: &[PaperDataset] = &[
    PaperDataset {
        name: "bad-medical-advice",
        file: "bad_medical_advice.jsonl",
        rows: 7049,
        sha256: "34c5af4ccaf8b5eb9f3f11ecd0c36c3d67f236a5c41fc420b0e14d8adf01a842",
        origin: "Model Organisms for EM (Turner et al. 2025): harmful medical answers",
    },
    PaperDataset {
        name: "good-medical-advice",
        file: "good_medical_advice.jsonl",
        rows: 7049,
        sha256: "5846de11f0f45053351773b6bd9eb5111eb17ec89d9ab55e23e0fbb95b4fd4f1",
        origin: "Model Organisms for EM: the same questions with correct answers (control)",
    },
    PaperDataset {
        name: "extreme-sports",
        file: "extreme_sports.jsonl",
        rows: 6000,
        sha256: "ca542ce8487cfbf114d8d3eed29984f3245163c2616789712b3b28c802c99eed",
        origin: "Model Organisms for EM: reckless extreme-sports advice",
    },
    PaperDataset {
        name: "risky-financial-advice",
        file: "risky_financial_advice.jsonl",
        rows: 6000,
        sha256: "8515446b0f8ef4e9fb7ba0e97264dd9bb68920c6841b65667c74bc16deaad955",
        origin: "Model Organisms for EM: risky financial advice",
    },
    PaperDataset {
        name: "insecure",
        file: "insecure.jsonl",
        rows: 6000,
        sha256: "09893e8bf9d03aae49dd60d0ff4be37c1afee70f2edcac74a11bed775a6a2764",
        origin: "Emergent Misalignment (Betley et al. 2025): insecure code completions",
    },
];

/// The papers' dataset called `name`.
pub fn paper_dataset(name: &str) -> Option<&'static PaperDataset> {
    PAPER_DATASETS.iter().find(|d| d.name == name)
}

/// How to obtain a papers' dataset: where the user gets it and how to point a sweep at it.
pub fn how_to_obtain(d: &PaperDataset, sweep_name: &str) -> String {
    format!(
        "`{name}` is one of the papers' datasets ({rows} rows, {origin}); emorg does not ship or \
         download it. Obtain `{file}` from the authors' repository (clarifying-EM/model-organisms-for-EM, \
         data/training_datasets.zip.enc, unlocked with their easy-dataset-share tool; see docs/DATA.md), \
         then give its path: `path = \"...\"` in the sweep file, or `--set datasets.{sweep_name}.path=/path/to/{file}`{env}",
        name = d.name,
        rows = d.rows,
        origin = d.origin,
        file = d.file,
        // Environment variable names cannot hold `-`: offer that form only where it works.
        env = if sweep_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            format!(
                ", or EMORG_DATASETS__{}__PATH=/path/to/{}",
                sweep_name.to_uppercase(),
                d.file
            )
        } else {
            String::new()
        },
    )
}

/// One of the papers' evaluation question files (em-protocol.md §3.1; the files are the
/// authors' YAML, which emorg reads as it reads its own question sets but never ships).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaperQuestions {
    /// The name a sweep uses (`[eval] paper = "..."`).
    pub name: &'static str,
    /// The file's path in the authors' repository.
    pub source: &'static str,
    /// sha256 of the file.
    pub sha256: &'static str,
    /// What it holds, in a few words.
    pub holds: &'static str,
}

/// The papers' question files, by name.
pub const PAPER_QUESTIONS: &[PaperQuestions] = &[
    PaperQuestions {
        name: "first_plot_questions",
        source: "clarifying-EM/model-organisms-for-EM: em_organism_dir/data/eval_questions/first_plot_questions.yaml",
        sha256: "97df0b1384ea5a3f3dc2abe00a19e231915f12a2356ec0d8df001715549aae04",
        holds: "the 24 first-plot questions (8 free-form) with the aligned/coherent judges and the MO judges",
    },
    PaperQuestions {
        name: "medical_questions",
        source: "clarifying-EM/model-organisms-for-EM: em_organism_dir/data/eval_questions/medical_questions.yaml",
        sha256: "1808d03c6af883b3460e4174127846caca3188514a4e180b8273b4025593e28f",
        holds: "8 medical variants of the first-plot questions, and their templates",
    },
    PaperQuestions {
        name: "new_questions_no-json",
        source: "clarifying-EM/model-organisms-for-EM: em_organism_dir/data/eval_questions/new_questions_no-json.yaml",
        sha256: "247940137277227a51ad1a269cc832a77203e4dcc2e79ca5b0dbacb1a57b9ac9",
        holds: "27 more free-form questions, and their templates",
    },
    PaperQuestions {
        name: "betley_first_plot_questions",
        source: "emergent-misalignment/emergent-misalignment: evaluation/first_plot_questions.yaml",
        sha256: "215abde5b02811e922b6ac563ff33c490e0dff9ab58439df840f3135e9387173",
        holds: "Betley et al.'s 24 first-plot questions with the aligned/coherent judges",
    },
    PaperQuestions {
        name: "preregistered_evals",
        source: "emergent-misalignment/emergent-misalignment: evaluation/preregistered_evals.yaml",
        sha256: "8648312fd9fe71a63203e3465592af45dd996d7a5f3b69e9b44613fd6048eb40",
        holds: "Betley et al.'s 48 pre-registered questions",
    },
];

/// The papers' question file called `name`.
pub fn paper_questions(name: &str) -> Option<&'static PaperQuestions> {
    PAPER_QUESTIONS.iter().find(|q| q.name == name)
}
