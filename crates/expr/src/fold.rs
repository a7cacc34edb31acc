//! Case-insensitive string comparison, the way GitHub's runner does it.
//!
//! GitHub compares strings with .NET's `OrdinalIgnoreCase`: every UTF-16 code unit is mapped
//! through its simple (one-to-one) upper-case mapping and the results are compared as numbers.
//! Characters whose upper case is more than one character (`ß` → `SS`) are left alone, and so
//! are the two non-ASCII letters whose upper case is ASCII (dotless `ı`, long `ſ`): .NET's
//! invariant casing keeps them apart from `I` and `S`. Ordering follows UTF-16, so a
//! supplementary character sorts below U+E000..U+FFFF.

use std::cmp::Ordering;
use std::hash::Hasher;

/// The simple upper-case mapping of one character.
#[inline]
pub fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) if !u.is_ascii() => u,
        _ => c,
    }
}

/// A key that orders a folded character the way its UTF-16 encoding would order.
#[inline]
fn utf16_order(c: char) -> (u32, u32) {
    let v = c as u32;
    if v < 0x10000 {
        (v, 0)
    } else {
        let w = v - 0x10000;
        (0xD800 + (w >> 10), 0xDC00 + (w & 0x3FF))
    }
}

/// `a == b`, ignoring case.
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars().map(fold_char).eq(b.chars().map(fold_char))
}

/// Orders `a` and `b`, ignoring case.
pub fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        let fa = a.bytes().map(|b| b.to_ascii_uppercase());
        let fb = b.bytes().map(|b| b.to_ascii_uppercase());
        return fa.cmp(fb);
    }
    let fa = a.chars().map(|c| utf16_order(fold_char(c)));
    let fb = b.chars().map(|c| utf16_order(fold_char(c)));
    fa.cmp(fb)
}

/// Whether `haystack` starts with `prefix`, ignoring case.
pub fn starts_with_ignore_case(haystack: &str, prefix: &str) -> bool {
    if haystack.is_ascii() && prefix.is_ascii() {
        return haystack
            .as_bytes()
            .get(..prefix.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(prefix.as_bytes()));
    }
    let mut h = haystack.chars();
    prefix
        .chars()
        .all(|p| h.next().is_some_and(|c| fold_char(c) == fold_char(p)))
}

/// Whether `haystack` ends with `suffix`, ignoring case.
pub fn ends_with_ignore_case(haystack: &str, suffix: &str) -> bool {
    if haystack.is_ascii() && suffix.is_ascii() {
        return haystack
            .len()
            .checked_sub(suffix.len())
            .and_then(|start| haystack.as_bytes().get(start..))
            .is_some_and(|h| h.eq_ignore_ascii_case(suffix.as_bytes()));
    }
    let mut h = haystack.chars().rev();
    suffix
        .chars()
        .rev()
        .all(|p| h.next().is_some_and(|c| fold_char(c) == fold_char(p)))
}

/// Whether `haystack` contains `needle`, ignoring case.
pub fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let n = needle.len();
        if n == 0 {
            return true;
        }
        return haystack
            .as_bytes()
            .windows(n)
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()));
    }
    let h: String = haystack.chars().map(fold_char).collect();
    let n: String = needle.chars().map(fold_char).collect();
    h.contains(&n)
}

/// Feeds the folded form of `s` to a hasher, so that strings equal under [`eq_ignore_case`]
/// hash alike.
pub fn hash_ignore_case<H: Hasher>(s: &str, state: &mut H) {
    // Folded text goes to the hasher in chunks: hashers are much faster fed slices than bytes.
    let mut buffer = [0u8; 64];
    if s.len() <= buffer.len() && s.is_ascii() {
        let folded = &mut buffer[..s.len()];
        folded.copy_from_slice(s.as_bytes());
        folded.make_ascii_uppercase();
        state.write(folded);
        state.write_u8(0xff);
        return;
    }
    let mut len = 0;
    for c in s.chars() {
        let mut encoded = [0u8; 4];
        let folded = fold_char(c).encode_utf8(&mut encoded).as_bytes();
        if len + folded.len() > buffer.len() {
            state.write(&buffer[..len]);
            len = 0;
        }
        buffer[len..len + folded.len()].copy_from_slice(folded);
        len += folded.len();
    }
    state.write(&buffer[..len]);
    state.write_u8(0xff);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_like_ordinal_ignore_case() {
        assert!(eq_ignore_case("ς", "Σ"));
        assert!(eq_ignore_case("σ", "ς"));
        assert!(eq_ignore_case("üÜ", "ÜÜ"));
        assert!(!eq_ignore_case("ß", "SS"));
        assert!(!eq_ignore_case("ı", "I"));
        assert!(!eq_ignore_case("ſ", "s"));
        assert_eq!(cmp_ignore_case("a", "["), Ordering::Less);
        assert_eq!(cmp_ignore_case("_", "a"), Ordering::Greater);
        // U+FFFD sorts above a supplementary character in UTF-16.
        assert_eq!(cmp_ignore_case("\u{FFFD}", "😊"), Ordering::Greater);
    }

    #[test]
    fn affixes() {
        assert!(starts_with_ignore_case("refs/TAGS/v1", "refs/tags/V"));
        assert!(!starts_with_ignore_case("ref", "refs"));
        assert!(ends_with_ignore_case("Main.RS", ".rs"));
        assert!(contains_ignore_case("abCdEf", "cDe"));
        assert!(contains_ignore_case("ÄbÇ", "bç"));
        assert!(contains_ignore_case("x", ""));
    }
}
