//! Fuzz target: GGUF files through `ModelFiles::open` (header, metadata and tensor infos read by
//! candle's `gguf_file::Content::read`; the model config, tokenizer and chat template built from
//! the metadata), then `Decoder::load` (every tensor read through its tensor info), a tokenizer
//! round trip, a chat render and one forward pass.
//!
//! Property: whatever the bytes, each step returns `Ok` or `Err` and never panics, aborts or
//! allocates from a count or length the file declares without checking it against the file.
//! Inputs are tiny valid GGUFs written by `emorg_lm::testing::write_tiny_gguf` (llama and qwen2,
//! one with a chat template) mutated at three levels: the metadata and tensors (a key set to an
//! interesting value of any GGUF type, removed, a tensor dropped, renamed or replaced by one of
//! another shape; then written with candle's writer), the header's numeric fields (every count,
//! length, type tag, dimension and offset, located by walking the header, set to 0, 1, 2^30,
//! 2^32, u64::MAX, the file's length, ...), and the header's bytes (`tests/fuzz_support/mutate.rs`).
//! Cases: `PROPTEST_CASES` (default below); run with
//! `cargo nextest run --release --workspace -E 'test(/^fuzz_/)'` (docs/ARCHITECTURE.md, Fuzzing).

#[path = "../../../tests/fuzz_support/mutate.rs"]
mod mutate;

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;

use emorg_lm::candle_core::quantized::gguf_file::{self, Value};
use emorg_lm::candle_core::quantized::{GgmlDType, QTensor};
use emorg_lm::candle_core::{DType, Device, Tensor};
use emorg_lm::testing::{TinySpec, last_logits, write_tiny_gguf};
use emorg_lm::{Message, ModelFiles, WeightMode};
use proptest::prelude::*;
use proptest::sample::Index;

/// Default number of cases (a few seconds in release on the 2-core machine).
const CASES: u32 = 4_000;

const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// A seed: metadata and tensors as candle's writer takes them, and the file they make.
struct Seed {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, QTensor)>,
    bytes: Vec<u8>,
}

fn seeds() -> &'static [Seed] {
    static S: OnceLock<Vec<Seed>> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let tiny = TinySpec {
            n_layers: 1,
            d_model: 8,
            d_ff: 16,
            n_heads: 2,
            n_kv_heads: 1,
            ..TinySpec::default()
        };
        let mut out = Vec::new();
        for (qwen2, template) in [(false, false), (true, true)] {
            let path = dir.path().join("seed.gguf");
            write_tiny_gguf(&path, TinySpec { qwen2, ..tiny }).expect("write a tiny GGUF");
            let bytes = std::fs::read(&path).expect("read it back");
            let mut cursor = Cursor::new(&bytes);
            let content = gguf_file::Content::read(&mut cursor).expect("the seed parses");
            let mut metadata: Vec<(String, Value)> = content.metadata.clone().into_iter().collect();
            if template {
                metadata.push((
                    "tokenizer.chat_template".into(),
                    Value::String(CHATML.into()),
                ));
            }
            metadata.sort_by(|a, b| a.0.cmp(&b.0));
            let mut names: Vec<&String> = content.tensor_infos.keys().collect();
            names.sort();
            let tensors: Vec<(String, QTensor)> = names
                .into_iter()
                .map(|name| {
                    let t = content
                        .tensor(&mut cursor, name, &Device::Cpu)
                        .expect("the seed's tensors read");
                    (name.clone(), t)
                })
                .collect();
            let bytes = write(&metadata, &tensors).expect("the seed writes");
            out.push(Seed {
                metadata,
                tensors,
                bytes,
            });
        }
        out
    })
}

fn write(metadata: &[(String, Value)], tensors: &[(String, QTensor)]) -> Option<Vec<u8>> {
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &md, &ts).ok()?;
    Some(out.into_inner())
}

/// Keys worth setting besides the seed's own (`{arch}` is the seed's architecture).
const EXTRA_KEYS: &[&str] = &[
    "general.alignment",
    "split.no",
    "split.count",
    "{arch}.attention.key_length",
    "{arch}.vocab_size",
    "{arch}.attention.sliding_window",
    "{arch}.attention.sliding_window_type",
    "{arch}.rope.local_freq_base",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_space_prefix",
    "tokenizer.ggml.eot_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.scores",
    "tokenizer.chat_template",
];

/// Values of every GGUF type at and past the limits a reader might assume.
fn values() -> &'static [Value] {
    static V: OnceLock<Vec<Value>> = OnceLock::new();
    V.get_or_init(|| {
        let s = |x: &str| Value::String(x.to_string());
        let strings = |xs: &[&str]| Value::Array(xs.iter().map(|x| s(x)).collect());
        vec![
            Value::U8(0),
            Value::U8(255),
            Value::I8(-1),
            Value::U16(0),
            Value::U16(65535),
            Value::I16(-1),
            Value::U32(0),
            Value::U32(1),
            Value::U32(2),
            Value::U32(3),
            Value::U32(7),
            Value::U32(8),
            Value::U32(32),
            Value::U32(258),
            Value::U32(259),
            Value::U32(1 << 20),
            Value::U32(u32::MAX),
            Value::I32(-1),
            Value::I32(0),
            Value::I32(i32::MIN),
            Value::U64(0),
            Value::U64(1 << 32),
            Value::U64(1 << 40),
            Value::U64(u64::MAX),
            Value::I64(-1),
            Value::I64(i64::MIN),
            Value::F32(0.0),
            Value::F32(-1.0),
            Value::F32(f32::NAN),
            Value::F32(f32::INFINITY),
            Value::F32(1e-45),
            Value::F64(1e308),
            Value::F64(-0.0),
            Value::Bool(true),
            Value::Bool(false),
            s(""),
            s("llama"),
            s("qwen2"),
            s("gemma3"),
            s("gpt2"),
            s("bert"),
            s("llama3"),
            s("qwen2"),
            s("\0"),
            s("💥"),
            s("{{ messages[0].content }}{{ bos_token }}{{ eos_token }}"),
            s("{% for m in messages %}{{ raise_exception('no') }}{% endfor %}"),
            s("{{ messages | tojson }}{{ x.y.z }}"),
            s("{% if %}"),
            s("{{"),
            s("{% for i in range(100000) %}x{% endfor %}"),
            Value::Array(vec![]),
            Value::Array(vec![Value::U32(1), Value::U32(2)]),
            Value::Array(vec![Value::I32(-1); 259]),
            Value::Array(vec![Value::I32(99); 259]),
            Value::Array(vec![Value::I32(3); 259]),
            Value::Array(vec![Value::F32(f32::NAN); 259]),
            Value::Array(vec![Value::Array(vec![])]),
            strings(&["a"]),
            strings(&["", "", ""]),
            strings(&["<|im_start|>", "<|im_start|>", "a"]),
            strings(&["a b", "Ġ Ġ", "x", "", " ", "a b c"]),
            strings(&["<0x41>", "<0xZZ>", "▁", "<unk>", "<s>", "</s>"]),
            Value::Array((0..300).map(|i| s(&format!("t{i}"))).collect()),
        ]
    })
}

/// A tensor of another shape (and type) to put in place of one of the seed's.
fn replacement(i: usize) -> Option<QTensor> {
    const SHAPES: &[&[usize]] = &[
        &[1],
        &[8],
        &[16],
        &[3, 5],
        &[8, 8],
        &[16, 8],
        &[8, 16],
        &[4, 8],
        &[259, 8],
        &[1, 1, 1, 1],
        &[2, 32],
    ];
    let shape = SHAPES[i % SHAPES.len()];
    let dtype = match i / SHAPES.len() % 3 {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        _ => GgmlDType::Q8_0,
    };
    let t = Tensor::ones(shape, DType::F32, &Device::Cpu).ok()?;
    QTensor::quantize(&t, dtype).ok()
}

/// A change to the metadata or the tensor list, before the file is written.
#[derive(Debug, Clone)]
enum Edit {
    Set { key: Index, value: Index },
    Remove { key: Index },
    DropTensor { i: Index },
    RenameTensor { i: Index, to: Index },
    ReplaceTensor { i: Index, with: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<Index>(), any::<Index>()).prop_map(|(key, value)| Edit::Set { key, value }),
        1 => any::<Index>().prop_map(|key| Edit::Remove { key }),
        1 => any::<Index>().prop_map(|i| Edit::DropTensor { i }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(i, to)| Edit::RenameTensor { i, to }),
        1 => (any::<Index>(), 0usize..33).prop_map(|(i, with)| Edit::ReplaceTensor { i, with }),
    ]
}

fn apply_edits(seed: &Seed, edits: &[Edit]) -> Option<Vec<u8>> {
    if edits.is_empty() {
        return Some(seed.bytes.clone());
    }
    let mut metadata: Vec<(String, Value)> = seed.metadata.clone();
    let mut tensors: Vec<(String, QTensor)> = seed
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), clone_qtensor(t)))
        .collect();
    let arch = match metadata.iter().find(|(k, _)| k == "general.architecture") {
        Some((_, Value::String(a))) => a.clone(),
        _ => "llama".to_string(),
    };
    for e in edits {
        let mut keys: Vec<String> = metadata.iter().map(|(k, _)| k.clone()).collect();
        keys.extend(EXTRA_KEYS.iter().map(|k| k.replace("{arch}", &arch)));
        match e {
            Edit::Set { key, value } => {
                let key = key.get(&keys).clone();
                let value = value.get(values()).clone();
                match metadata.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, v)) => *v = value,
                    None => metadata.push((key, value)),
                }
            }
            Edit::Remove { key } => {
                let key = key.get(&keys).clone();
                metadata.retain(|(k, _)| *k != key);
            }
            Edit::DropTensor { i } => {
                if !tensors.is_empty() {
                    tensors.remove(i.index(tensors.len()));
                }
            }
            Edit::RenameTensor { i, to } => {
                if !tensors.is_empty() {
                    let name = to.get(&tensors).0.clone();
                    let at = i.index(tensors.len());
                    tensors[at].0 = name;
                }
            }
            Edit::ReplaceTensor { i, with } => {
                if !tensors.is_empty()
                    && let Some(t) = replacement(*with)
                {
                    let at = i.index(tensors.len());
                    tensors[at].1 = t;
                }
            }
        }
    }
    write(&metadata, &tensors)
}

fn clone_qtensor(t: &QTensor) -> QTensor {
    let dense = t
        .dequantize(&Device::Cpu)
        .expect("dequantize a seed tensor");
    QTensor::quantize(&dense, t.dtype()).expect("quantize it again")
}

/// A numeric field of a GGUF header: offset, width, and whether it is the length of a string
/// (most fields are: one per token; the others are counts, type tags, dimensions and offsets).
#[derive(Debug, Clone, Copy)]
struct Field {
    at: usize,
    width: usize,
    string_len: bool,
}

/// The numeric fields of a GGUF (v2/v3) header, and where the header ends. Stops at the first
/// thing it cannot read (the fields found so far are still useful).
fn header_fields(b: &[u8]) -> (Vec<Field>, usize) {
    struct W<'a> {
        b: &'a [u8],
        at: usize,
        fields: Vec<Field>,
    }
    impl W<'_> {
        fn num(&mut self, width: usize) -> Option<u64> {
            let bytes = self.b.get(self.at..self.at + width)?;
            let mut v = [0u8; 8];
            v[..width].copy_from_slice(bytes);
            self.fields.push(Field {
                at: self.at,
                width,
                string_len: false,
            });
            self.at += width;
            Some(u64::from_le_bytes(v))
        }
        fn string(&mut self) -> Option<()> {
            let len = self.num(8)? as usize;
            self.fields.last_mut()?.string_len = true;
            self.at = self.at.checked_add(len).filter(|&e| e <= self.b.len())?;
            Some(())
        }
        fn value(&mut self, ty: u64, depth: usize) -> Option<()> {
            match ty {
                0 | 1 | 7 => self.num(1).map(drop),
                2 | 3 => self.num(2).map(drop),
                4..=6 => self.num(4).map(drop),
                10..=12 => self.num(8).map(drop),
                8 => self.string(),
                9 if depth < 4 => {
                    let elem = self.num(4)?;
                    let n = self.num(8)?;
                    for _ in 0..n.min(1 << 16) {
                        self.value(elem, depth + 1)?;
                    }
                    Some(())
                }
                _ => None,
            }
        }
        fn walk(&mut self) -> Option<()> {
            self.at = 4; // magic
            self.num(4)?; // version
            let n_tensors = self.num(8)?;
            let n_kv = self.num(8)?;
            for _ in 0..n_kv.min(1 << 16) {
                self.string()?;
                let ty = self.num(4)?;
                self.value(ty, 0)?;
            }
            for _ in 0..n_tensors.min(1 << 16) {
                self.string()?;
                let dims = self.num(4)?;
                for _ in 0..dims.min(8) {
                    self.num(8)?;
                }
                self.num(4)?; // type
                self.num(8)?; // offset
            }
            Some(())
        }
    }
    let mut w = W {
        b,
        at: 0,
        fields: Vec::new(),
    };
    w.walk();
    (w.fields, w.at)
}

/// Values for a numeric header field (cut to its width).
fn field_value(i: &Index, file_len: usize) -> u64 {
    let len = file_len as u64;
    let vs = [
        0,
        1,
        2,
        3,
        4,
        5,
        8,
        9,
        12,
        13,
        31,
        0x7f,
        0xff,
        0x100,
        0xffff,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        1 << 30,
        (1 << 30) + 1,
        1 << 32,
        1 << 40,
        1 << 62,
        i64::MAX as u64,
        u64::MAX,
        u64::MAX - 1,
        len,
        len + 1,
        len / 2,
    ];
    *i.get(&vs)
}

#[derive(Debug, Clone)]
struct Input {
    seed: Index,
    edits: Vec<Edit>,
    /// (any field or only counts/types/dimensions/offsets, field, value) for the header's numeric
    /// fields.
    fields: Vec<(bool, Index, Index)>,
    /// Byte-level mutations of the header (the tensor data after it is left alone).
    header: Vec<mutate::Mutation>,
    /// Cut the whole file at a point.
    truncate: Option<Index>,
    /// Name the file as the first part of a split model (and write a second part).
    split_name: bool,
}

fn input() -> impl Strategy<Value = Input> {
    (
        any::<Index>(),
        prop_oneof![1 => Just(vec![]), 2 => prop::collection::vec(edit(), 1..4)],
        prop_oneof![1 => Just(vec![]), 1 => prop::collection::vec((any::<bool>(), any::<Index>(), any::<Index>()), 1..3)],
        prop_oneof![2 => Just(vec![]), 1 => mutate::mutations(4)],
        prop::option::weighted(0.1, any::<Index>()),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(seed, edits, fields, header, truncate, split_name)| Input {
            seed,
            edits,
            fields,
            header,
            truncate,
            split_name,
        })
}

fn dict() -> &'static [Vec<u8>] {
    static D: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    D.get_or_init(|| {
        mutate::dictionary(&[
            "GGUF",
            "general.architecture",
            "tokenizer.ggml.tokens",
            "llama",
            "<|im_end|>",
        ])
    })
}

fn build(input: &Input) -> Option<Vec<u8>> {
    let seed = input.seed.get(seeds());
    let mut bytes = apply_edits(seed, &input.edits)?;
    let (fields, header_end) = header_fields(&bytes);
    let structural: Vec<Field> = fields.iter().copied().filter(|f| !f.string_len).collect();
    let len = bytes.len();
    for (any, field, value) in &input.fields {
        let pool = if *any { &fields } else { &structural };
        if pool.is_empty() {
            continue;
        }
        let f = *field.get(pool);
        let v = field_value(value, len).to_le_bytes();
        bytes[f.at..f.at + f.width].copy_from_slice(&v[..f.width]);
    }
    if !input.header.is_empty() {
        let header_end = header_end.min(bytes.len());
        let rest = bytes.split_off(header_end);
        bytes = mutate::mutate(&bytes, &input.header, dict());
        bytes.extend_from_slice(&rest);
    }
    if let Some(at) = &input.truncate {
        bytes.truncate(at.index(bytes.len() + 1));
    }
    Some(bytes)
}

/// Open, load and run the model in `bytes`; every error renders. Returns how far it got.
fn exercise(bytes: &[u8], split_name: bool) -> &'static str {
    let scratch = mutate::scratch_dir();
    let dir = scratch.path();
    let path: PathBuf = if split_name {
        std::fs::write(dir.join("m-00002-of-00002.gguf"), bytes).expect("write part 2");
        dir.join("m-00001-of-00002.gguf")
    } else {
        dir.join("model.gguf")
    };
    std::fs::write(&path, bytes).expect("write the input");
    let files = match ModelFiles::open(&path) {
        Ok(f) => f,
        Err(e) => {
            let _ = e.to_string();
            return "open: Err";
        }
    };
    let chat = [
        Message::new("user", "Hi <|im_start|> é"),
        Message::new("assistant", "Hello."),
    ];
    let _ = files
        .template
        .render(&chat, true)
        .map_err(|e| e.to_string());
    let _ = files.template.render_with_spans(&chat);
    let ids = match files.tokenizer.encode("Hello <|im_end|> wörld") {
        Ok(ids) => {
            let _ = files.tokenizer.decode(&ids);
            ids
        }
        Err(e) => {
            let _ = e.to_string();
            return "open: Ok, encode: Err";
        }
    };
    let model = match files.decoder(WeightMode::Dense, &Device::Cpu) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return "open: Ok, load: Err";
        }
    };
    if ids.is_empty() {
        return "load: Ok, no tokens";
    }
    match last_logits(&model, &ids) {
        Ok(_) => "forward: Ok",
        Err(e) => {
            let _ = e.to_string();
            "load: Ok, forward: Err"
        }
    }
}

/// Mutated tiny GGUF models.
#[test]
fn fuzz_gguf_header() {
    mutate::run(
        "fuzz_gguf_header",
        file!(),
        CASES,
        input(),
        |input| match build(&input) {
            Some(bytes) => exercise(&bytes, input.split_name),
            None => "not writable",
        },
    );
}

/// Every seed opens, loads and runs as it is (otherwise the fuzzer would start from errors), and
/// the header walker finds every field of it.
#[test]
fn fuzz_seeds_are_valid() {
    for seed in seeds() {
        assert_eq!(exercise(&seed.bytes, false), "forward: Ok");
        let (fields, end) = header_fields(&seed.bytes);
        assert!(fields.len() > 300, "{} fields", fields.len());
        assert!(end > 1000 && end < seed.bytes.len(), "header ends at {end}");
    }
}

// ---- Regression tests: the crashes the fuzzer found, as plain tests (not `fuzz_`-prefixed, so
// they run in every test run). Each was a panic or an abort before the fix. ----

/// Seed 0 with one metadata key set.
fn with_meta(key: &str, value: Value) -> Vec<u8> {
    let mut metadata = seeds()[0].metadata.clone();
    match metadata.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => metadata.push((key.to_string(), value)),
    }
    write(&metadata, &seeds()[0].tensors).expect("writes")
}

/// The error `ModelFiles::open` gives for these bytes.
fn open_error(bytes: &[u8]) -> String {
    let scratch = mutate::scratch_dir();
    let path = scratch.path().join("model.gguf");
    std::fs::write(&path, bytes).unwrap();
    match ModelFiles::open(&path) {
        Ok(_) => panic!("opened"),
        Err(e) => e.to_string(),
    }
}

/// Was: `Vec::with_capacity(n_layers)` in `Decoder::load`, "capacity overflow" (and an abort for
/// counts that fit in a usize but not in memory).
#[test]
fn gguf_block_count_beyond_the_tensors_is_refused() {
    for n in [u64::MAX, 1 << 40, 2] {
        let e = open_error(&with_meta("llama.block_count", Value::U64(n)));
        assert!(e.contains("`llama.block_count`: is"), "{e}");
        assert!(e.contains("no tensor `blk."), "{e}");
    }
}

/// Was: `attempt to divide by zero` in candle's header reader (the tensor data offset is rounded
/// up to the alignment).
#[test]
fn gguf_alignment_zero_is_refused() {
    let e = open_error(&with_meta("general.alignment", Value::U32(0)));
    assert!(e.contains("`general.alignment` is 0"), "{e}");
}

/// Was: "memory allocation of 2199023253504 bytes failed" (abort) building the rope tables from a
/// head size the tensors do not have.
#[test]
fn gguf_head_size_disagreeing_with_the_tensors_is_refused() {
    let e = open_error(&with_meta(
        "llama.attention.key_length",
        Value::U32(1 << 30),
    ));
    assert!(e.contains("`llama.attention.key_length`: gives"), "{e}");
    assert!(e.contains("blk.0.attn_q.weight"), "{e}");
    // Without key_length the head size is d_model / heads: 0 heads was a division by zero.
    let e = open_error(&with_meta("llama.attention.head_count", Value::U32(0)));
    assert!(e.contains("`llama.attention.head_count`: is 0"), "{e}");
}

/// Was: "capacity overflow" in a matmul: a tensor info whose dimensions multiply past u64 wraps
/// around in candle, is read as a few bytes and then used with its huge shape.
#[test]
fn gguf_tensor_shape_past_the_file_is_refused() {
    let mut bytes = seeds()[0].bytes.clone();
    let name = b"blk.0.attn_output.weight";
    let at = bytes
        .windows(name.len())
        .position(|w| w == name)
        .expect("the tensor info")
        + name.len();
    // n_dims (u32), then the dimensions (u64 each, innermost first).
    assert_eq!(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()), 2);
    bytes[at + 12..at + 20].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let e = open_error(&bytes);
    assert!(e.contains("tensor `blk.0.attn_output.weight`"), "{e}");
    assert!(e.contains("larger than any file"), "{e}");
    // A zero dimension would let the other be anything.
    bytes[at + 12..at + 20].copy_from_slice(&0u64.to_le_bytes());
    let e = open_error(&bytes);
    assert!(e.contains("has a zero dimension"), "{e}");
}
