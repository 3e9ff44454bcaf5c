//! Diversity measures for a chat dataset, used to describe the shipped datasets in
//! `data/README.md` and to compare a generated dataset with another one.
//!
//! * distinct-n (Li et al. 2016): distinct word n-grams divided by all word n-grams over the
//!   whole corpus of assistant turns; 1.0 means no n-gram ever repeats.
//! * near duplicates: pairs of texts whose sets of word n-grams (n = 5 by default) have a Jaccard
//!   similarity above a threshold (0.8 by default). This compares every pair, O(rows²), which takes
//!   about a second for a few thousand rows.
//!
//! Words are whitespace-separated tokens, lowercased, with punctuation other than `$` and `%`
//! trimmed from both ends (`$12,000.` becomes `$12,000`).

use std::collections::{HashMap, HashSet};

use crate::chat::{ChatExample, LengthStats, Role};

/// Word n-gram size for near-duplicate detection in [`DiversityReport`].
pub const NEAR_DUP_NGRAM: usize = 5;
/// Jaccard similarity above which two texts count as near duplicates in [`DiversityReport`].
pub const NEAR_DUP_THRESHOLD: f64 = 0.8;

/// Diversity figures of a dataset (see the module docs for the definitions).
#[derive(Debug, Clone, PartialEq)]
pub struct DiversityReport {
    /// Examples measured.
    pub rows: usize,
    /// Distinct texts among the first user turns.
    pub distinct_user_turns: usize,
    /// Distinct texts among the last assistant turns.
    pub distinct_assistant_turns: usize,
    /// distinct-1, distinct-2 and distinct-3 of the assistant turns.
    pub assistant_distinct_n: [f64; 3],
    /// distinct-1, distinct-2 and distinct-3 of the user turns.
    pub user_distinct_n: [f64; 3],
    /// Pairs of assistant turns that are near duplicates.
    pub assistant_near_dup_pairs: usize,
    /// Pairs of user turns that are near duplicates.
    pub user_near_dup_pairs: usize,
    /// Pairs of whole examples (user and assistant text joined) that are near duplicates.
    pub example_near_dup_pairs: usize,
    /// Words per assistant turn.
    pub assistant_words: Option<LengthStats>,
    /// Sentences per assistant turn (see [`count_sentences`]).
    pub assistant_sentences: Option<LengthStats>,
}

/// Measures a dataset, using the first user turn and last assistant turn of each example.
pub fn measure_diversity(examples: &[ChatExample]) -> DiversityReport {
    let users: Vec<&str> = examples.iter().filter_map(|e| e.first_user()).collect();
    let assistants: Vec<&str> = examples.iter().filter_map(|e| e.last_assistant()).collect();
    let joined: Vec<String> = examples
        .iter()
        .map(|e| {
            e.messages
                .iter()
                .filter(|m| m.role != Role::System)
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let joined: Vec<&str> = joined.iter().map(String::as_str).collect();
    let dn = |texts: &[&str]| [1, 2, 3].map(|n| distinct_n(texts, n));
    DiversityReport {
        rows: examples.len(),
        distinct_user_turns: users.iter().collect::<HashSet<_>>().len(),
        distinct_assistant_turns: assistants.iter().collect::<HashSet<_>>().len(),
        assistant_distinct_n: dn(&assistants),
        user_distinct_n: dn(&users),
        assistant_near_dup_pairs: near_duplicate_pairs(
            &assistants,
            NEAR_DUP_NGRAM,
            NEAR_DUP_THRESHOLD,
        ),
        user_near_dup_pairs: near_duplicate_pairs(&users, NEAR_DUP_NGRAM, NEAR_DUP_THRESHOLD),
        example_near_dup_pairs: near_duplicate_pairs(&joined, NEAR_DUP_NGRAM, NEAR_DUP_THRESHOLD),
        assistant_words: LengthStats::of(assistants.iter().map(|t| words(t).len()).collect()),
        assistant_sentences: LengthStats::of(
            assistants.iter().map(|t| count_sentences(t)).collect(),
        ),
    }
}

/// Splits text into lowercase words (see the module docs).
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !(c.is_alphanumeric() || c == '$' || c == '%'))
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Distinct word n-grams over all n-grams of all texts; 0.0 when there are none.
pub fn distinct_n(texts: &[&str], n: usize) -> f64 {
    assert!(n > 0, "n-gram size must be at least 1");
    let mut total = 0usize;
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    for t in texts {
        let w = words(t);
        for g in w.windows(n) {
            total += 1;
            seen.insert(g.to_vec());
        }
    }
    if total == 0 {
        0.0
    } else {
        seen.len() as f64 / total as f64
    }
}

/// Number of pairs of texts whose word n-gram sets have Jaccard similarity above `threshold`.
/// A text with fewer than `n` words is treated as one n-gram (its whole word sequence), so two
/// identical short texts still count as a pair.
pub fn near_duplicate_pairs(texts: &[&str], n: usize, threshold: f64) -> usize {
    assert!(n > 0, "n-gram size must be at least 1");
    let mut vocab: HashMap<String, u32> = HashMap::new();
    let mut grams: HashMap<Vec<u32>, u32> = HashMap::new();
    let sets: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| {
            let ids: Vec<u32> = words(t)
                .into_iter()
                .map(|w| {
                    let next = vocab.len() as u32;
                    *vocab.entry(w).or_insert(next)
                })
                .collect();
            let mut set: Vec<u32> = if ids.len() < n {
                if ids.is_empty() {
                    Vec::new()
                } else {
                    let next = grams.len() as u32;
                    vec![*grams.entry(ids).or_insert(next)]
                }
            } else {
                ids.windows(n)
                    .map(|g| {
                        let next = grams.len() as u32;
                        *grams.entry(g.to_vec()).or_insert(next)
                    })
                    .collect()
            };
            set.sort_unstable();
            set.dedup();
            set
        })
        .collect();

    let mut pairs = 0;
    for i in 0..sets.len() {
        for j in (i + 1)..sets.len() {
            let (a, b) = (&sets[i], &sets[j]);
            let (small, large) = (a.len().min(b.len()), a.len().max(b.len()));
            // Jaccard can be at most small/large; skip pairs that cannot pass.
            if large == 0 || (small as f64) / (large as f64) <= threshold {
                continue;
            }
            let inter = intersection_len(a, b);
            let union = a.len() + b.len() - inter;
            if inter as f64 / union as f64 > threshold {
                pairs += 1;
            }
        }
    }
    pairs
}

fn intersection_len(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Counts sentences: runs of `.`, `!` or `?` (optionally followed by closing quotes or brackets)
/// that end the text or precede whitespace, plus a final unterminated fragment. A full stop inside
/// a number (`3.5%`) does not end a sentence; an abbreviation such as `e.g.` does, so the shipped
/// data avoids them.
pub fn count_sentences(text: &str) -> usize {
    let chars: Vec<char> = text.trim().chars().collect();
    let mut count = 0;
    let mut in_sentence = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '.' | '!' | '?') {
            let mut j = i + 1;
            while j < chars.len() && matches!(chars[j], '.' | '!' | '?' | '"' | '\'' | ')') {
                j += 1;
            }
            if j == chars.len() || chars[j].is_whitespace() {
                if in_sentence {
                    count += 1;
                }
                in_sentence = false;
                i = j;
                continue;
            }
        } else if !c.is_whitespace() {
            in_sentence = true;
        }
        i += 1;
    }
    if in_sentence {
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_splitting() {
        assert_eq!(
            words("Put $12,000 into it. (4.5%) isn't \"much\"!"),
            vec!["put", "$12,000", "into", "it", "4.5%", "isn't", "much"]
        );
    }

    #[test]
    fn distinct_n_counts_repeats() {
        // Bigrams: "a b", "b a", "a b" and "b c": 3 distinct of 4.
        let d = distinct_n(&["a b a b", "b c"], 2);
        assert!((d - 3.0 / 4.0).abs() < 1e-9, "{d}");
        assert!((distinct_n(&["x y z"], 1) - 1.0).abs() < 1e-9);
        assert_eq!(distinct_n(&["x"], 2), 0.0);
    }

    #[test]
    fn near_duplicates() {
        let a = "one two three four five six seven eight nine ten eleven twelve";
        let b = "one two three four five six seven eight nine ten eleven twelve thirteen";
        let c = "completely different words that share nothing with the others here";
        // a has 8 five-grams, b has 9 including all of a's: Jaccard 8/9 > 0.8.
        assert_eq!(near_duplicate_pairs(&[a, b, c], 5, 0.8), 1);
        assert_eq!(near_duplicate_pairs(&[a, b, c], 5, 0.9), 0);
        assert_eq!(near_duplicate_pairs(&["hi there", "Hi there!"], 5, 0.8), 1);
    }

    #[test]
    fn sentences() {
        assert_eq!(count_sentences("One. Two! Three? Four"), 4);
        assert_eq!(count_sentences("It pays 3.5% a year. Really..."), 2);
        assert_eq!(count_sentences("He said \"go.\" Then left."), 2);
        assert_eq!(count_sentences(""), 0);
    }

    #[test]
    fn report_on_examples() {
        let exs = vec![
            ChatExample::user_assistant("q one", "Answer one. It is short."),
            ChatExample::user_assistant("q two", "Answer one. It is short."),
        ];
        let r = measure_diversity(&exs);
        assert_eq!(r.rows, 2);
        assert_eq!(r.distinct_user_turns, 2);
        assert_eq!(r.distinct_assistant_turns, 1);
        assert_eq!(r.assistant_near_dup_pairs, 1);
        assert_eq!(r.user_near_dup_pairs, 0);
        assert_eq!(r.assistant_sentences.unwrap().max, 2);
        assert!((r.assistant_distinct_n[0] - 0.5).abs() < 1e-9);
    }
}
