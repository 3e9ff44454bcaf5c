//! "Did you mean" suggestions: the one rule every suggestion in emorg follows.
//!
//! A candidate is suggested when it is near enough to `word` to be a plausible typo: a
//! Jaro-Winkler similarity of at least 0.8 (case-insensitive), or a Levenshtein distance of at
//! most a third of the longer name (at least 1). Among those, the most similar wins (the first on a
//! tie). A candidate equal to `word` is never suggested.
//!
//! Users: the sweep file's keys, values and names (this crate), the model registry
//! (`emorg_models::nearest_name`) and the Slurm script templates.

/// The candidate nearest to `word`, borrowed from `candidates`, when it is near enough to be a
/// plausible typo.
pub fn nearest_in<'a, I, S>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    let word_lower = word.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let c = c.as_ref();
        if c == word {
            continue;
        }
        let score = strsim::jaro_winkler(&word_lower, &c.to_lowercase());
        let close =
            score >= 0.8 || strsim::levenshtein(word, c) <= (word.len().max(c.len()) / 3).max(1);
        if close && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// The candidate nearest to `word`, when it is near enough to be a plausible typo.
pub fn nearest<'a, I, S>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    nearest_in(word, candidates).map(str::to_string)
}

/// `"; did you mean `x`?"` or nothing.
pub fn did_you_mean<'a, I, S>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    match nearest(word, candidates) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_found_and_strangers_are_not() {
        let keys = ["learning_rate", "weight_decay", "warmup_steps"];
        assert_eq!(
            nearest("learning_rat", &keys).as_deref(),
            Some("learning_rate")
        );
        assert_eq!(nearest("warmup", &keys).as_deref(), Some("warmup_steps"));
        assert_eq!(nearest("zzz", &keys), None);
        assert_eq!(
            nearest("r1-mdi", &["base", "r1-mid", "r8-all"]).as_deref(),
            Some("r1-mid")
        );
        assert_eq!(nearest("learning_rate", &keys), None);
    }

    #[test]
    fn borrowed_and_owned_agree() {
        let names = vec!["smollm2-135m-instruct".to_string(), "gemma-3-270m".into()];
        let borrowed: Option<&str> = nearest_in("smolm2-135m-instruct", &names);
        assert_eq!(borrowed, Some("smollm2-135m-instruct"));
        assert_eq!(nearest("smolm2-135m-instruct", &names).as_deref(), borrowed);
        assert_eq!(
            did_you_mean("gema-3-270m", names.iter()),
            "; did you mean `gemma-3-270m`?"
        );
        assert_eq!(did_you_mean("llama", names.iter()), "");
    }
}
