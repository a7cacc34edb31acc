//! "Did you mean …?" hints for misspelt keys and values.

/// `"; did you mean 'x'?"` for the candidate closest to `word`, or an empty
/// string when none is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    closest(word, candidates)
        .map(|c| format!("; did you mean '{c}'?"))
        .unwrap_or_default()
}

/// The candidate closest to `word`. Case and the choice between `_` and `-`
/// are ignored first, since `runs_on` and `Runs-On` are the commonest slips;
/// otherwise the edit distance must be small for the word's length.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let normalize = |s: &str| s.to_lowercase().replace('_', "-");
    let wanted = normalize(word);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = strsim::damerau_levenshtein(&wanted, &normalize(candidate));
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    let (distance, candidate) = best?;
    let limit = match wanted.chars().count() {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    (distance <= limit).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_for_slips_and_not_for_strangers() {
        let keys = ["runs-on", "steps", "needs", "timeout-minutes"];
        assert_eq!(closest("runs_on", keys), Some("runs-on"));
        assert_eq!(closest("step", keys), Some("steps"));
        assert_eq!(closest("timeout-minuts", keys), Some("timeout-minutes"));
        assert_eq!(closest("banana", keys), None);
    }
}
