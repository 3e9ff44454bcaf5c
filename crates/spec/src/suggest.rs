//! "Did you mean" suggestions.

/// The candidate nearest to `word`, when it is near enough to be a plausible typo.
pub fn nearest<'a, I, S>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let c = c.as_ref();
        if c == word {
            continue;
        }
        let score = strsim::jaro_winkler(&word.to_lowercase(), &c.to_lowercase());
        let close =
            score >= 0.8 || strsim::levenshtein(word, c) <= (word.len().max(c.len()) / 3).max(1);
        if close && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c.to_string())
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
    }
}
