//! YAML 1.2 core schema: what a scalar means, and which tags are allowed.
//!
//! Resolution is deliberately strict 1.2: YAML 1.1 spellings such as `on`,
//! `off`, `yes`, `no`, `y`, `n`, `0b1010` or `1_000` stay strings. GitHub's
//! top-level `on:` key depends on this.

use super::error::YamlErrorKind;
use super::node::{ScalarStyle, YamlValue};

/// The prefix that `!!` expands to.
const CORE_PREFIX: &str = "tag:yaml.org,2002:";

/// A tag the loader understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnownTag {
    /// The non-specific tag `!`: for a scalar it means "string".
    NonSpecific,
    Str,
    Int,
    Float,
    Bool,
    Null,
    Seq,
    Map,
}

impl KnownTag {
    /// Recognises a tag from its expanded text (handle + suffix).
    pub(crate) fn from_expanded(tag: &str) -> Result<Self, YamlErrorKind> {
        if tag == "!" {
            return Ok(KnownTag::NonSpecific);
        }
        let known = match tag.strip_prefix(CORE_PREFIX) {
            Some("str") => Some(KnownTag::Str),
            Some("int") => Some(KnownTag::Int),
            Some("float") => Some(KnownTag::Float),
            Some("bool") => Some(KnownTag::Bool),
            Some("null") => Some(KnownTag::Null),
            Some("seq") => Some(KnownTag::Seq),
            Some("map") => Some(KnownTag::Map),
            _ => None,
        };
        known.ok_or_else(|| YamlErrorKind::UnsupportedTag {
            tag: short_form(tag),
        })
    }

    fn short_name(self) -> &'static str {
        match self {
            KnownTag::NonSpecific => "!",
            KnownTag::Str => "!!str",
            KnownTag::Int => "!!int",
            KnownTag::Float => "!!float",
            KnownTag::Bool => "!!bool",
            KnownTag::Null => "!!null",
            KnownTag::Seq => "!!seq",
            KnownTag::Map => "!!map",
        }
    }

    /// Checks that this tag may be put on a sequence (`is_mapping == false`)
    /// or a mapping.
    pub(crate) fn check_collection(self, is_mapping: bool) -> Result<(), YamlErrorKind> {
        match (self, is_mapping) {
            (KnownTag::NonSpecific, _) | (KnownTag::Seq, false) | (KnownTag::Map, true) => Ok(()),
            _ => Err(self.mismatch(if is_mapping {
                "a mapping"
            } else {
                "a sequence"
            })),
        }
    }

    fn mismatch(self, found: impl Into<String>) -> YamlErrorKind {
        YamlErrorKind::TagMismatch {
            tag: self.short_name().to_owned(),
            found: found.into(),
        }
    }
}

/// Writes `tag:yaml.org,2002:foo` as `!!foo`, the way users type it.
fn short_form(tag: &str) -> String {
    match tag.strip_prefix(CORE_PREFIX) {
        Some(suffix) => format!("!!{suffix}"),
        None => tag.to_owned(),
    }
}

/// Resolves a scalar's text to a value, honouring its style and tag.
pub(crate) fn resolve_scalar(
    text: String,
    style: ScalarStyle,
    tag: Option<KnownTag>,
) -> Result<YamlValue, YamlErrorKind> {
    let Some(tag) = tag else {
        return Ok(if style == ScalarStyle::Plain {
            resolve_plain(text)
        } else {
            YamlValue::String(text)
        });
    };
    let resolved = match tag {
        KnownTag::NonSpecific | KnownTag::Str => return Ok(YamlValue::String(text)),
        KnownTag::Null => parse_null(&text).then_some(YamlValue::Null),
        KnownTag::Bool => parse_bool(&text).map(YamlValue::Bool),
        KnownTag::Int => parse_int(&text),
        KnownTag::Float => parse_float(&text)
            .or_else(|| parse_int(&text).map(into_float))
            .map(YamlValue::Float),
        KnownTag::Seq | KnownTag::Map => None,
    };
    resolved.ok_or_else(|| tag.mismatch(format!("the scalar {text:?}")))
}

/// Resolves an untagged plain scalar with the core schema's rules.
pub(crate) fn resolve_plain(text: String) -> YamlValue {
    if parse_null(&text) {
        return YamlValue::Null;
    }
    if let Some(b) = parse_bool(&text) {
        return YamlValue::Bool(b);
    }
    if let Some(number) = parse_int(&text) {
        return number;
    }
    if let Some(f) = parse_float(&text) {
        return YamlValue::Float(f);
    }
    YamlValue::String(text)
}

fn parse_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Core schema integers: `[-+]?[0-9]+`, `0o[0-7]+` and `0x[0-9a-fA-F]+`.
/// Integers that do not fit in an `i64` become floats rather than strings,
/// because they are still numbers to every YAML reader.
fn parse_int(text: &str) -> Option<YamlValue> {
    let (digits, radix, negative) = if let Some(octal) = text.strip_prefix("0o") {
        (octal, 8, false)
    } else if let Some(hex) = text.strip_prefix("0x") {
        (hex, 16, false)
    } else if let Some(decimal) = text.strip_prefix('-') {
        (decimal, 10, true)
    } else {
        (text.strip_prefix('+').unwrap_or(text), 10, false)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Parsing the sign together with the digits keeps i64::MIN representable.
    let signed = if negative {
        format!("-{digits}")
    } else {
        digits.to_owned()
    };
    if let Ok(i) = i64::from_str_radix(&signed, radix) {
        return Some(YamlValue::Int(i));
    }
    let magnitude = big_magnitude(digits, radix);
    Some(YamlValue::Float(if negative {
        -magnitude
    } else {
        magnitude
    }))
}

/// Value of a digit string too large for `i64`, rounded to the nearest f64.
fn big_magnitude(digits: &str, radix: u32) -> f64 {
    if radix == 10 {
        // Rust's decimal parser rounds correctly, and the digits are valid.
        return digits.parse().unwrap_or(f64::INFINITY);
    }
    match u128::from_str_radix(digits, radix) {
        // Rounding to the nearest f64 is the point of the conversion.
        #[allow(clippy::cast_precision_loss)]
        Ok(n) => n as f64,
        Err(_) => digits.chars().fold(0.0, |acc, c| {
            acc * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0))
        }),
    }
}

fn into_float(value: YamlValue) -> f64 {
    match value {
        // Precision loss above 2^53 is what `!!float` asks for.
        #[allow(clippy::cast_precision_loss)]
        YamlValue::Int(i) => i as f64,
        YamlValue::Float(f) => f,
        _ => f64::NAN,
    }
}

/// Core schema floats: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`,
/// `[-+]?\.(inf|Inf|INF)` and `\.(nan|NaN|NAN)`.
fn parse_float(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    if !has_float_syntax(text) {
        return None;
    }
    // The syntax check keeps out what Rust accepts but YAML does not
    // (`inf`, `NaN`, `infinity`), so Rust's parser can do the conversion.
    text.parse::<f64>().ok()
}

fn has_float_syntax(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (int_digits, rest) = split_digits(unsigned);
    let (frac_digits, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => split_digits(after_dot),
        None => ("", rest),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return false;
    }
    match rest.strip_prefix(['e', 'E']) {
        Some(exponent) => {
            let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            let (exp_digits, rest) = split_digits(exponent);
            !exp_digits.is_empty() && rest.is_empty()
        }
        None => rest.is_empty(),
    }
}

/// Splits `text` into its leading ASCII digits and the rest.
fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at_checked(end).unwrap_or((text, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> YamlValue {
        resolve_plain(text.to_owned())
    }

    #[test]
    fn float_syntax_follows_the_core_schema() {
        for ok in [
            "1.5", "-1.5", "+.5", "5.", "1e3", "1E+3", "1.5e-3", ".5e1", "0.0",
        ] {
            assert!(has_float_syntax(ok), "{ok} should be a float");
        }
        for bad in [
            ".", "e3", "1e", "1.5.5", "inf", "nan", "1_0.0", "1e+", "--1.0", "0x1.0",
        ] {
            assert!(!has_float_syntax(bad), "{bad} should not be a float");
        }
    }

    #[test]
    fn integers_keep_extreme_values() {
        assert_eq!(plain("-9223372036854775808"), YamlValue::Int(i64::MIN));
        assert_eq!(plain("9223372036854775807"), YamlValue::Int(i64::MAX));
        assert_eq!(
            plain("9223372036854775808"),
            YamlValue::Float(9_223_372_036_854_775_808.0)
        );
        assert_eq!(plain("0x"), YamlValue::String("0x".into()));
        assert_eq!(plain("0o8"), YamlValue::String("0o8".into()));
        assert_eq!(plain("-0x1"), YamlValue::String("-0x1".into()));
    }
}
