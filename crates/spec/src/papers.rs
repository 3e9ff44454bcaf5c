//! The papers' training datasets, known by name.
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
