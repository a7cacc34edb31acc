//! Numbers as GitHub reads and writes them.
//!
//! GitHub's runner is .NET: it parses numbers with `Double.TryParse` (invariant culture, with
//! thousands separators), falls back to `0x` hexadecimal and `0o` octal 32-bit integers, and
//! formats them with the `G15` format (15 significant digits, exponent notation outside
//! 1e-5..1e15). These functions reproduce that behaviour.

/// Parses a number the way GitHub converts a string to a number: surrounding whitespace is
/// ignored, blank is 0, anything unparsable is NaN.
pub fn parse(s: &str) -> f64 {
    let s = s.trim();
    if s.is_empty() {
        return 0.0;
    }
    if let Some(n) = parse_decimal(s, true, false) {
        return n;
    }
    if let Some(hex) = s.strip_prefix("0x").filter(|h| !h.is_empty()) {
        return if hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            parse_radix_i32(hex, 16).unwrap_or(f64::NAN)
        } else {
            f64::NAN
        };
    }
    if let Some(oct) = s.strip_prefix("0o").filter(|o| !o.is_empty()) {
        return if oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            parse_radix_i32(oct, 8).unwrap_or(f64::NAN)
        } else {
            f64::NAN
        };
    }
    if let Some(n) = parse_decimal(s, false, true) {
        return n;
    }
    match s {
        "Infinity" | "+Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        _ => f64::NAN,
    }
}

/// A 32-bit integer in the given radix, read as .NET does: the bits of an unsigned 32-bit value
/// reinterpreted as signed, so `0xffffffff` is -1. `None` when it does not fit.
fn parse_radix_i32(digits: &str, radix: u32) -> Option<f64> {
    let unsigned = u32::from_str_radix(digits, radix).ok()?;
    Some(f64::from(unsigned as i32))
}

/// `[sign] digits [. digits] [e [sign] digits]`, optionally with `,` thousands separators in the
/// integer part (never together with an exponent, as in .NET's number styles GitHub uses).
fn parse_decimal(s: &str, allow_thousands: bool, allow_exponent: bool) -> Option<f64> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut clean = String::with_capacity(s.len());
    if let Some(&sign @ (b'+' | b'-')) = bytes.first() {
        clean.push(sign as char);
        i = 1;
    }
    let mut digits = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'0'..=b'9' => {
                clean.push(b as char);
                digits += 1;
            }
            b',' if allow_thousands && digits > 0 => {}
            _ => break,
        }
        i += 1;
    }
    if bytes.get(i) == Some(&b'.') {
        clean.push('.');
        i += 1;
        while let Some(&b @ b'0'..=b'9') = bytes.get(i) {
            clean.push(b as char);
            digits += 1;
            i += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if allow_exponent && matches!(bytes.get(i), Some(b'e' | b'E')) {
        clean.push('e');
        i += 1;
        if let Some(&sign @ (b'+' | b'-')) = bytes.get(i) {
            clean.push(sign as char);
            i += 1;
        }
        let start = i;
        while let Some(&b @ b'0'..=b'9') = bytes.get(i) {
            clean.push(b as char);
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    clean.parse().ok()
}

/// Formats a number as GitHub converts it to a string (`G15`, and `0` for negative zero).
pub fn format(n: f64) -> String {
    if let Some(special) = special(n) {
        return special.to_string();
    }
    if n == 0.0 {
        // Also negative zero, which .NET would print as "-0".
        return "0".to_string();
    }
    // `{:.14e}` rounds to 15 significant digits, correctly, as .NET Core does.
    layout(&format!("{n:.14e}"), 15)
}

/// Formats a number as GitHub's `toJSON` writes it: whole numbers in the 64-bit range as
/// integers, others in the shortest form that reads back the same.
pub fn format_json(n: f64) -> String {
    if let Some(special) = special(n) {
        return format!("\"{special}\"");
    }
    if let Some(i) = as_i64(n) {
        return i.to_string();
    }
    let text = layout(&format!("{n:e}"), 15);
    // Newtonsoft marks a double as one with a decimal point or exponent.
    if text.contains(['.', 'E']) {
        text
    } else {
        format!("{text}.0")
    }
}

/// The JSON value for a number: an integer where it is whole, a string for NaN and infinities.
pub fn to_json(n: f64) -> serde_json::Value {
    if let Some(special) = special(n) {
        return serde_json::Value::String(special.to_string());
    }
    match as_i64(n) {
        Some(i) => serde_json::Value::from(i),
        None => serde_json::Number::from_f64(n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
    }
}

fn special(n: f64) -> Option<&'static str> {
    if n.is_nan() {
        Some("NaN")
    } else if n == f64::INFINITY {
        Some("Infinity")
    } else if n == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

fn as_i64(n: f64) -> Option<i64> {
    // 2^63 is exactly representable; anything at or above it is out of range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (n.fract() == 0.0 && (-LIMIT..LIMIT).contains(&n)).then_some(n as i64)
}

/// Lays out Rust's exponent form (`-1.2345e-7`) as .NET's general format does: fixed point when
/// the exponent is in `-5 < exp < precision`, else `d.dddE±XX`; no trailing zeros.
fn layout(exponent_form: &str, precision: i32) -> String {
    let (mantissa, exp) = exponent_form
        .split_once('e')
        .unwrap_or((exponent_form, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };

    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    if exp > -5 && exp < precision {
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('E');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_dotnet() {
        assert_eq!(parse(" 123456.789 "), 123456.789);
        assert_eq!(parse("+1.5"), 1.5);
        assert_eq!(parse("1,000"), 1000.0);
        assert_eq!(parse(".5"), 0.5);
        assert_eq!(parse("5."), 5.0);
        assert_eq!(parse("1.2e-2"), 0.012);
        assert_eq!(parse("0xff"), 255.0);
        assert_eq!(parse("0xffffffff"), -1.0);
        assert!(parse("0x1ffffffff").is_nan());
        assert_eq!(parse("0o777"), 511.0);
        assert_eq!(parse("-Infinity"), f64::NEG_INFINITY);
        assert!(parse("1,000e3").is_nan());
        assert!(parse("-0xff").is_nan());
        assert!(parse("abc").is_nan());
        assert!(parse("1e").is_nan());
        assert!(parse(".").is_nan());
        assert_eq!(parse("   "), 0.0);
    }

    #[test]
    fn formats_like_g15() {
        assert_eq!(format(0.845_512_408_225_570_1), "0.84551240822557");
        assert_eq!(format(-0.0), "0");
        assert_eq!(format(120.0), "120");
        assert_eq!(format(0.012), "0.012");
        assert_eq!(format(123456789012345.0), "123456789012345");
        assert_eq!(format(1e15), "1E+15");
        assert_eq!(format(1234567890123456789.0), "1.23456789012346E+18");
        assert_eq!(format(0.0001), "0.0001");
        assert_eq!(format(0.00001), "1E-05");
        assert_eq!(format(-1.5e-300), "-1.5E-300");
        assert_eq!(format(f64::NAN), "NaN");
        assert_eq!(format(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn formats_json_numbers() {
        assert_eq!(format_json(-0.0), "0");
        assert_eq!(format_json(1234.5), "1234.5");
        assert_eq!(format_json(123456789.0), "123456789");
        assert_eq!(format_json(0.1), "0.1");
        assert_eq!(format_json(1e20), "1E+20");
        assert_eq!(format_json(f64::NAN), "\"NaN\"");
    }
}
