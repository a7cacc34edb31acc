//! Durations written as Go writes them (`3h`, `1m30s`, `500ms`), since the config files Hearth
//! reads were written for runners whose settings are Go `time.Duration`s.
//!
//! [`parse_go_duration`] follows the grammar and limits of Go's `time.ParseDuration`:
//! an optional sign, then one or more `number unit` pairs with no spaces, where the number may
//! have a fraction (`1.5h`, `.5s`, `1.s`) and the unit is `ns`, `us`, `µs`, `μs`, `ms`, `s`,
//! `m` or `h`. A lone `0` (signed or not) needs no unit. The total must fit in a signed 64-bit
//! count of nanoseconds; fractions finer than a nanosecond are dropped, as Go drops them.

use std::fmt;

/// Nanoseconds in each unit Go accepts.
const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // MICRO SIGN, as Go accepts it
    ("\u{3bc}s", 1_000), // GREEK SMALL LETTER MU, likewise
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// The magnitude of the most negative duration; anything larger overflows.
const LIMIT: u64 = 1 << 63;

/// Why a text is not a Go duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// Not of the form `[-+]?(number unit)+`, or too large.
    Invalid,
    /// A number with no unit after it, such as `10`.
    MissingUnit,
    /// A unit Go does not know, such as `d` or ` s`.
    UnknownUnit(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Invalid => write!(f, "not a valid duration"),
            DurationError::MissingUnit => {
                write!(f, "a number needs a unit (ns, us, ms, s, m or h)")
            }
            DurationError::UnknownUnit(unit) => write!(
                f,
                "unknown unit {unit:?} (expected ns, us, ms, s, m or h, with no space before it)"
            ),
        }
    }
}

/// Parses `text` as Go's `time.ParseDuration` does, giving signed nanoseconds.
pub fn parse_go_duration(text: &str) -> Result<i64, DurationError> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(DurationError::Invalid);
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (nanos, after) = parse_term(rest)?;
        total = total
            .checked_add(nanos)
            .filter(|&sum| sum <= LIMIT)
            .ok_or(DurationError::Invalid)?;
        rest = after;
    }
    if negative {
        // -(2^63) is the one value whose magnitude does not fit in an i64.
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).map_err(|_| DurationError::Invalid)
}

/// One `number unit` pair at the start of `text`: its nanoseconds and the text after it.
fn parse_term(text: &str) -> Result<(u64, &str), DurationError> {
    if !text.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
        return Err(DurationError::Invalid);
    }
    let (whole, rest) = leading_integer(text)?;
    let has_whole = rest.len() != text.len();
    let (fraction, scale, rest, has_fraction) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let (fraction, scale, after) = leading_fraction(after_dot);
            (fraction, scale, after, after.len() != after_dot.len())
        }
        None => (0, 1.0, rest, false),
    };
    if !has_whole && !has_fraction {
        return Err(DurationError::Invalid);
    }
    let unit_len = rest
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(rest.len());
    if unit_len == 0 {
        return Err(DurationError::MissingUnit);
    }
    let (unit, rest) = rest.split_at(unit_len);
    let Some(&(_, unit_nanos)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(DurationError::UnknownUnit(unit.to_owned()));
    };
    if whole > LIMIT / unit_nanos {
        return Err(DurationError::Invalid);
    }
    let mut nanos = whole * unit_nanos;
    if fraction > 0 {
        // As in Go: a float keeps fractions of an hour exact to the nanosecond, and the
        // conversion truncates toward zero.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let fraction_nanos = (fraction as f64 * (unit_nanos as f64 / scale)) as u64;
        nanos = nanos
            .checked_add(fraction_nanos)
            .filter(|&sum| sum <= LIMIT)
            .ok_or(DurationError::Invalid)?;
    }
    Ok((nanos, rest))
}

/// The leading decimal digits of `text` as a number, and the rest; too large is an error.
fn leading_integer(text: &str) -> Result<(u64, &str), DurationError> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    for digit in text.bytes().take(digits) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            .filter(|&v| v <= LIMIT)
            .ok_or(DurationError::Invalid)?;
    }
    Ok((value, &text[digits..]))
}

/// The leading digits after a decimal point: their value, `10^count` of the digits kept, and
/// the rest. Digits past what fits are consumed but ignored, as they are below a nanosecond.
fn leading_fraction(text: &str) -> (u64, f64, &str) {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    let mut scale = 1.0;
    let mut full = false;
    for digit in text.bytes().take(digits) {
        if full {
            continue;
        }
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            .filter(|&v| v <= LIMIT)
        {
            Some(next) => {
                value = next;
                scale *= 10.0;
            }
            None => full = true,
        }
    }
    (value, scale, &text[digits..])
}

#[cfg(test)]
/// Writes nanoseconds the way Go's `Duration.String` does (`1h30m0s`, `500ms`, `0s`), so
/// messages and the example config show durations as users write them.
pub fn format_go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let magnitude = nanos.unsigned_abs();
    if magnitude < 1_000_000_000 {
        // Below a second Go picks the largest unit that keeps an integer part.
        let (unit, size) = match magnitude {
            0..=999 => ("ns", 1),
            1_000..=999_999 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", with_fraction(magnitude, size));
    }
    let hours = magnitude / 3_600_000_000_000;
    let minutes = magnitude / 60_000_000_000 % 60;
    let seconds = with_fraction(magnitude % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}s"),
        (0, _) => format!("{sign}{minutes}m{seconds}s"),
        _ => format!("{sign}{hours}h{minutes}m{seconds}s"),
    }
}

#[cfg(test)]
/// `value / size` with its decimal fraction, trailing zeros removed.
fn with_fraction(value: u64, size: u64) -> String {
    let whole = value / size;
    let rest = value % size;
    if rest == 0 {
        return whole.to_string();
    }
    let width = size.ilog10() as usize;
    let fraction = format!("{rest:0width$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i64 = 1;
    const US: i64 = 1_000;
    const MS: i64 = 1_000_000;
    const S: i64 = 1_000_000_000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;

    fn ok(text: &str) -> i64 {
        match parse_go_duration(text) {
            Ok(nanos) => nanos,
            Err(error) => panic!("{text:?} should parse: {error}"),
        }
    }

    // The valid cases of Go's own table for ParseDuration, as facts about the grammar.
    #[test]
    fn accepts_what_go_accepts() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("1.0040s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            ("10ns", 10 * NS),
            ("11us", 11 * US),
            ("12µs", 12 * US),
            ("12μs", 12 * US),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * M),
            ("16h", 16 * H),
            ("3h30m", 3 * H + 30 * M),
            ("10.5s4m", 4 * M + 10 * S + 500 * MS),
            ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
            (
                "1h2m3s4ms5us6ns",
                H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
            ),
            ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * M),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * M),
            (
                "0.830103483285477580700h",
                49 * M + 48 * S + 372_539_827 * NS,
            ),
            ("3h", 3 * H),
            ("1m30s", 90 * S),
            ("500ms", 500 * MS),
            ("0s", 0),
        ];
        for &(text, nanos) in cases {
            assert_eq!(ok(text), nanos, "{text:?}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        let invalid = [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "1 s",
            " 1s",
            "1s ",
            "1.5",
            "1h 30m",
            "3000000h",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "-9223372036854775809ns",
            "1e3s",
            "x1s",
            "1S",
            "1H",
            "1sec",
            "--1s",
            "+-1s",
            "0s-",
            "1s1",
            "0x10s",
        ];
        for text in invalid {
            assert!(parse_go_duration(text).is_err(), "{text:?} should fail");
        }
    }

    #[test]
    fn errors_say_why() {
        assert_eq!(parse_go_duration("10"), Err(DurationError::MissingUnit));
        assert_eq!(parse_go_duration("1s1"), Err(DurationError::MissingUnit));
        assert_eq!(
            parse_go_duration("1d"),
            Err(DurationError::UnknownUnit("d".to_owned()))
        );
        assert_eq!(
            parse_go_duration("1 s"),
            Err(DurationError::UnknownUnit(" s".to_owned()))
        );
        assert_eq!(parse_go_duration(""), Err(DurationError::Invalid));
        assert_eq!(parse_go_duration("3000000h"), Err(DurationError::Invalid));
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (500 * MS, "500ms"),
            (S, "1s"),
            (3_300_000_000, "3.3s"),
            (90 * S, "1m30s"),
            (4 * M + 5 * S, "4m5s"),
            (4 * M + 5_001_000_000, "4m5.001s"),
            (5 * H + 6 * M + 7_001_000_000, "5h6m7.001s"),
            (3 * H, "3h0m0s"),
            (8 * M + 1, "8m0.000000001s"),
            (-5 * S, "-5s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for &(nanos, text) in cases {
            assert_eq!(format_go_duration(nanos), text, "{nanos}");
        }
    }

    #[test]
    fn formatted_durations_parse_back() {
        for nanos in [
            0,
            1,
            999,
            1_500,
            2 * MS,
            61 * S,
            3 * H + 1,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(ok(&format_go_duration(nanos)), nanos, "{nanos}");
        }
    }
}
