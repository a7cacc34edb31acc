//! GitHub's filter patterns, compiled to anchored regular expressions.
//!
//! The syntax is the one of the "Filter pattern cheat sheet" in GitHub's
//! *Workflow syntax for GitHub Actions*:
//!
//! | Syntax  | Meaning                                                        |
//! |---------|----------------------------------------------------------------|
//! | `*`     | zero or more characters, but not `/`                           |
//! | `**`    | zero or more of any character; `**/` also matches nothing, so  |
//! |         | `**/README.md` matches `README.md`                             |
//! | `?`     | zero or one of the preceding character                         |
//! | `+`     | one or more of the preceding character                         |
//! | `[…]`   | one character listed or in a range (`a-z`, `A-Z`, `0-9` only)  |
//! | `!`     | at the start only: the pattern is negative                     |
//! | `\c`    | the character `c` literally                                    |
//!
//! A pattern matches the whole input. `?` and `+` quantify the preceding
//! atom the way a regular expression does, which is how GitHub's matcher
//! behaves (`*.jsx?` matches `page.js` and `page.jsx`). A quantifier with
//! nothing before it, or `+` after another quantifier (`C++`), is rejected:
//! GitHub refuses such patterns too. A `?` right after a quantifier only
//! makes it lazy, which cannot change a whole-string match.

use regex::Regex;

/// Why a filter pattern could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter pattern `{pattern}`: {message} (at character {position})")]
pub struct PatternError {
    /// The pattern as written, including a leading `!`.
    pub pattern: String,
    /// 1-based character position of the problem in `pattern`.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

/// One compiled filter pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    negative: bool,
    regex: Regex,
}

impl Pattern {
    /// Compiles `pattern`; a leading `!` makes it negative.
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        let (negative, body, offset) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest, 1),
            None => (false, pattern, 0),
        };
        let fail = |position: usize, message: &str| PatternError {
            pattern: pattern.to_owned(),
            position: position + offset + 1,
            message: message.to_owned(),
        };
        if pattern.is_empty() {
            return Err(fail(0, "a pattern cannot be empty"));
        }
        let translated = translate(body).map_err(|(pos, msg)| fail(pos, msg))?;
        let regex = Regex::new(&translated).map_err(|e| fail(0, &e.to_string()))?;
        Ok(Self {
            source: pattern.to_owned(),
            negative,
            regex,
        })
    }

    /// The pattern as written, including a leading `!`.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern starts with `!`.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Whether the pattern, ignoring a leading `!`, matches all of `input`.
    pub fn is_match(&self, input: &str) -> bool {
        self.regex.is_match(input)
    }

    /// The regular expression the pattern was translated to (for diagnostics).
    pub fn regex(&self) -> &str {
        self.regex.as_str()
    }
}

/// What the last thing written to the regex was, for quantifier checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Start of the pattern: nothing to quantify.
    Nothing,
    /// A single character or class that may take `?` or `+`.
    Atom,
    /// A greedy repetition (`*`, `**`, `+`, `?`): only a lazy `?` may follow.
    Greedy,
    /// A lazy repetition: nothing may follow.
    Lazy,
}

/// Translates a pattern body (without the leading `!`) into an anchored
/// regular expression. Errors carry a 0-based character index in `body`.
fn translate(body: &str) -> Result<String, (usize, &'static str)> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = String::from(r"(?s)\A(?:");
    let mut prev = Prev::Nothing;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    if chars.get(i + 2) == Some(&'/') {
                        out.push_str("(?:.*/)?");
                        i += 3;
                    } else {
                        out.push_str(".*");
                        i += 2;
                    }
                } else {
                    out.push_str("[^/]*");
                    i += 1;
                }
                prev = Prev::Greedy;
                continue;
            }
            '?' | '+' => {
                prev = match (prev, c) {
                    (Prev::Nothing, _) => {
                        return Err((i, "a `?` or `+` must follow the character it repeats"))
                    }
                    (Prev::Atom, _) => Prev::Greedy,
                    (Prev::Greedy, '?') => Prev::Lazy,
                    _ => return Err((i, "nested quantifier: escape it as `\\+` or `\\?`")),
                };
                out.push(c);
            }
            '[' => {
                let (class, next) = translate_class(&chars, i)?;
                out.push_str(&class);
                prev = Prev::Atom;
                i = next;
                continue;
            }
            '\\' => {
                let Some(&escaped) = chars.get(i + 1) else {
                    return Err((i, "`\\` at the end of a pattern escapes nothing"));
                };
                push_literal(&mut out, escaped);
                prev = Prev::Atom;
                i += 2;
                continue;
            }
            _ => {
                push_literal(&mut out, c);
                prev = Prev::Atom;
            }
        }
        i += 1;
    }
    out.push_str(r")\z");
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// Translates the class starting at `chars[start] == '['`; returns the regex
/// text and the index just past the closing `]`.
fn translate_class(chars: &[char], start: usize) -> Result<(String, usize), (usize, &'static str)> {
    let mut out = String::from("[");
    let mut i = start + 1;
    if chars.get(i) == Some(&']') {
        return Err((start, "empty brackets `[]`"));
    }
    loop {
        let Some(&c) = chars.get(i) else {
            return Err((start, "missing closing bracket `]` after `[`"));
        };
        if c == ']' {
            out.push(']');
            return Ok((out, i + 1));
        }
        if !c.is_ascii_alphanumeric() {
            return Err((
                i,
                "brackets may only hold letters, digits and the ranges a-z, A-Z and 0-9",
            ));
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            let end = chars[i + 2];
            let same_kind = (c.is_ascii_lowercase() && end.is_ascii_lowercase())
                || (c.is_ascii_uppercase() && end.is_ascii_uppercase())
                || (c.is_ascii_digit() && end.is_ascii_digit());
            if !same_kind || end < c {
                return Err((i + 1, "ranges can only be within a-z, A-Z or 0-9, in order"));
            }
            out.push(c);
            out.push('-');
            out.push(end);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
}

/// An ordered list of patterns, as written under `branches:`, `paths:` and
/// friends.
#[derive(Debug, Clone, Default)]
pub struct PatternList {
    patterns: Vec<Pattern>,
}

impl PatternList {
    /// Compiles every pattern, stopping at the first invalid one.
    pub fn new<I, S>(patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = patterns
            .into_iter()
            .map(|p| Pattern::new(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { patterns })
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether the list holds no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether some pattern is negative (`!…`).
    pub fn has_negative(&self) -> bool {
        self.patterns.iter().any(Pattern::is_negative)
    }

    /// Whether some pattern is positive.
    pub fn has_positive(&self) -> bool {
        self.patterns.iter().any(|p| !p.is_negative())
    }

    /// The last pattern that matches `input`, if any.
    pub fn last_match(&self, input: &str) -> Option<&Pattern> {
        self.patterns.iter().rev().find(|p| p.is_match(input))
    }

    /// GitHub's rule for `branches`, `tags` and `paths`: `input` is selected
    /// when the last pattern it matches is positive. An input no pattern
    /// matches is not selected, so a list of only negative patterns selects
    /// nothing.
    pub fn selects(&self, input: &str) -> bool {
        self.last_match(input).is_some_and(|p| !p.is_negative())
    }
}
