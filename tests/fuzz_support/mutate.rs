//! Structure-aware input mutation shared by the fuzz targets (`crates/*/tests/fuzz.rs`, which
//! include this file with `#[path]`; it is not a test target of its own).
//!
//! Random bytes never get past a parser's first token, so every target starts from valid seed
//! inputs and applies a short list of proptest-generated [`Mutation`]s: bit flips, byte sets,
//! truncation, deleted, inserted and duplicated spans, swapped lines, and "interesting" tokens from
//! a dictionary (huge and special numbers, empty and very long strings, deep nesting, NUL, invalid
//! UTF-8, format keywords) inserted at a point or put in place of the word there. Proptest shrinks
//! a failing case to the fewest, smallest mutations of the first seed that still fail.

#![allow(dead_code)] // each target uses a different subset

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{FileFailurePersistence, TestCaseError, TestRunner};

/// Inputs are cut to this many bytes after each mutation, so that no case is absurdly large.
pub const MAX_LEN: usize = 64 * 1024;

/// One edit of an input. Positions are [`Index`]es, scaled to the input's length when applied.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip one bit of one byte.
    FlipBit { at: Index, bit: u8 },
    /// Overwrite one byte.
    SetByte { at: Index, byte: u8 },
    /// Cut the input at a point.
    Truncate { at: Index },
    /// Remove up to `len` bytes.
    Delete { at: Index, len: usize },
    /// Insert arbitrary bytes.
    Insert { at: Index, bytes: Vec<u8> },
    /// Insert a dictionary token.
    InsertToken { at: Index, token: Index },
    /// Replace the word (run of `[A-Za-z0-9_.+-]`) around a point by a dictionary token; at a
    /// point outside a word, insert it.
    ReplaceWord { at: Index, token: Index },
    /// Copy a span of up to `len` bytes to another point.
    Duplicate { from: Index, len: usize, to: Index },
    /// Swap two lines.
    SwapLines { a: Index, b: Index },
}

/// One mutation, dictionary tokens weighted up (they are what gets past a parser's first checks).
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte { at, byte }),
        1 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<Index>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        3 => (any::<Index>(), any::<Index>())
            .prop_map(|(at, token)| Mutation::InsertToken { at, token }),
        4 => (any::<Index>(), any::<Index>())
            .prop_map(|(at, token)| Mutation::ReplaceWord { at, token }),
        1 => (any::<Index>(), 1usize..512, any::<Index>())
            .prop_map(|(from, len, to)| Mutation::Duplicate { from, len, to }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
    ]
}

/// A list of mutations, applied in order: mostly none to two (so that most inputs stay close
/// enough to valid to reach the checks after the syntax), sometimes up to `max`.
pub fn mutations(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    prop_oneof![
        3 => prop::collection::vec(mutation(), 0..=2),
        1 => prop::collection::vec(mutation(), 0..=max),
    ]
}

/// Tokens worth trying in any text format. `extra` adds the format's own (keywords, keys).
pub fn dictionary(extra: &[&str]) -> Vec<Vec<u8>> {
    let mut d: Vec<Vec<u8>> = [
        // Numbers at and past every limit.
        "0",
        "-0",
        "1",
        "-1",
        "2",
        "255",
        "256",
        "65535",
        "65536",
        "2147483647",
        "2147483648",
        "-2147483649",
        "4294967295",
        "4294967296",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "-18446744073709551616",
        "340282366920938463463374607431768211456",
        "1e308",
        "-1e308",
        "1e309",
        "1e-400",
        "5e-324",
        "1.7976931348623157e308",
        "0.0",
        "-0.0",
        "0.5",
        "1.0",
        "1.5",
        "nan",
        "NaN",
        "-nan",
        "inf",
        "-inf",
        "Infinity",
        "0x7fffffff",
        "0xffffffffffffffff",
        "0o777",
        "0b1",
        "1_000",
        "00",
        "1e",
        ".",
        "-",
        "+",
        // Strings and text.
        "",
        "\"\"",
        "''",
        "\"",
        "'",
        "\\",
        "\\u0000",
        "\\ud800",
        "\\uDFFF",
        "\\x00",
        "\0",
        "\u{feff}",
        "\u{202e}",
        "é",
        "💥",
        "ǅ",
        "\u{10ffff}",
        "\r",
        "\r\n",
        "\n",
        "\t",
        " ",
        "{question}",
        "{answer}",
        "{",
        "}",
        "{{",
        "}}",
        "../../etc/passwd",
        "/",
        "//",
        "file:///tmp/x",
        "s3://b/k",
        "%s%n",
        // Structure.
        "[]",
        "{}",
        "[",
        "]",
        ",",
        ":",
        "=",
        "#",
        "null",
        "true",
        "false",
        "True",
        "yes",
        "~",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    d.extend(extra.iter().map(|s| s.as_bytes().to_vec()));
    // Invalid UTF-8 and a lone continuation byte.
    d.push(vec![0xff, 0xfe]);
    d.push(vec![0xc3]);
    d.push(vec![0x80]);
    d.push(vec![0xed, 0xa0, 0x80]);
    // Long runs and deep nesting (each kept well under MAX_LEN).
    d.push(vec![b'a'; 4096]);
    d.push(format!("\"{}\"", "x".repeat(4096)).into_bytes());
    d.push("9".repeat(400).into_bytes());
    d.push(format!("{}{}", "[".repeat(3000), "]".repeat(3000)).into_bytes());
    d.push("[".repeat(3000).into_bytes());
    d.push("{".repeat(3000).into_bytes());
    d.push(format!("{}1{}", "{\"a\":".repeat(1000), "}".repeat(1000)).into_bytes());
    d.push(format!("{}{}", "{a=".repeat(1000), "}".repeat(1000)).into_bytes());
    d.push("- ".repeat(2000).into_bytes());
    d.push(
        (0..1000)
            .map(|i| format!("{}- x\n", " ".repeat(i % 200)))
            .collect::<String>()
            .into_bytes(),
    );
    d
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-')
}

/// Byte ranges of the lines of `data` (without their `\n`).
fn lines(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            out.push((start, i));
            start = i + 1;
        }
    }
    out.push((start, data.len()));
    out
}

/// Applies one mutation in place.
pub fn apply(data: &mut Vec<u8>, m: &Mutation, dict: &[Vec<u8>]) {
    let len = data.len();
    // A point in 0..=len.
    let point = |at: &Index| at.index(len + 1);
    match m {
        Mutation::FlipBit { at, bit } => {
            if len > 0 {
                data[at.index(len)] ^= 1 << (bit % 8);
            }
        }
        Mutation::SetByte { at, byte } => {
            if len > 0 {
                data[at.index(len)] = *byte;
            }
        }
        Mutation::Truncate { at } => data.truncate(point(at)),
        Mutation::Delete { at, len: n } => {
            let start = point(at);
            let end = (start + n).min(len);
            data.drain(start..end);
        }
        Mutation::Insert { at, bytes } => {
            let p = point(at);
            data.splice(p..p, bytes.iter().copied());
        }
        Mutation::InsertToken { at, token } => {
            let p = point(at);
            data.splice(p..p, token.get(dict).iter().copied());
        }
        Mutation::ReplaceWord { at, token } => {
            let p = point(at);
            let mut start = p;
            while start > 0 && is_word(data[start - 1]) {
                start -= 1;
            }
            let mut end = p;
            while end < len && is_word(data[end]) {
                end += 1;
            }
            data.splice(start..end, token.get(dict).iter().copied());
        }
        Mutation::Duplicate { from, len: n, to } => {
            let start = point(from);
            let end = (start + n).min(len);
            let span = data[start..end].to_vec();
            let p = point(to);
            data.splice(p..p, span);
        }
        Mutation::SwapLines { a, b } => {
            let ls = lines(data);
            let (mut x, mut y) = (*a.get(&ls), *b.get(&ls));
            if x.0 > y.0 {
                std::mem::swap(&mut x, &mut y);
            }
            if x != y && x.1 <= y.0 {
                let mut out = Vec::with_capacity(len);
                out.extend_from_slice(&data[..x.0]);
                out.extend_from_slice(&data[y.0..y.1]);
                out.extend_from_slice(&data[x.1..y.0]);
                out.extend_from_slice(&data[x.0..x.1]);
                out.extend_from_slice(&data[y.1..]);
                *data = out;
            }
        }
    }
    data.truncate(MAX_LEN);
}

/// `seed` with every mutation applied in order.
pub fn mutate(seed: &[u8], ms: &[Mutation], dict: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for m in ms {
        apply(&mut data, m, dict);
    }
    data
}

/// Number of cases: `PROPTEST_CASES` when set, else `default`. Proptest reads the variable only
/// for its own default config, which a `ProptestConfig { cases, .. }` literal would override.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One input taking longer than this fails the target (a parser must not take absurd time; every
/// input is at most [`MAX_LEN`] bytes). Generous, for loaded CI machines and debug builds.
pub const MAX_CASE_TIME: Duration = Duration::from_secs(10);

/// Runs a target: `cases(default_cases)` inputs from `strategy`, each given to `test`, which
/// returns a label for what the parser did (`"Ok"`, `"Err: syntax"`, ...). A panic in `test`, or an
/// input that takes longer than [`MAX_CASE_TIME`], fails the target with the shrunk input, whose
/// seed is saved in `<source>.proptest-regressions` next to the test file and replayed first on
/// every later run (commit that file). Prints the number of inputs, the wall time and the count
/// of each label (`--no-capture` shows it).
pub fn run<S>(
    name: &str,
    source_file: &'static str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> &'static str,
) where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let config = ProptestConfig {
        cases: cases(default_cases),
        source_file: Some(source_file),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        // Shrinking is capped so that a slow failing case still reports in bounded time.
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    };
    let outcomes: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());
    let start = Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |value| {
        let t = Instant::now();
        let label = test(value);
        let took = t.elapsed();
        *outcomes.lock().unwrap().entry(label).or_default() += 1;
        if took > MAX_CASE_TIME {
            return Err(TestCaseError::fail(format!(
                "one input took {took:?} (limit {MAX_CASE_TIME:?})"
            )));
        }
        Ok(())
    });
    let outcomes = outcomes.into_inner().unwrap();
    let total: u64 = outcomes.values().sum();
    eprintln!(
        "{name}: {total} inputs in {:.1} s; {}; outcomes {outcomes:?}",
        start.elapsed().as_secs_f64(),
        if result.is_ok() { "0 panics" } else { "FAILED" },
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// A fresh scratch directory for the files a parser reads (removed when dropped): in `/dev/shm`
/// where there is one (on a busy disk, writing every input to the temporary directory dominated
/// the run: 1.5 ms against 0.02 ms an input), else in the temporary directory.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("emorg-fuzz")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a scratch directory")
}
