//! Byte sizes such as `4MiB`, for Hearth's own settings that hold an amount of memory.
//!
//! A size is a whole number of bytes, optionally followed by a unit (with or without a space):
//! `B`, the decimal `kB`/`KB`, `MB`, `GB` or the binary `KiB`, `MiB`, `GiB`. Units ignore case,
//! since nobody means "megabits" in a memory limit.

/// Units and their sizes in bytes.
const UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
];

/// Parses a size such as `4MiB`, `512 KiB` or `1000`; `None` when it is not one or overflows.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let number: u64 = text[..digits].parse().ok()?;
    let unit = text[digits..].trim_start().to_ascii_lowercase();
    if unit.is_empty() {
        return Some(number);
    }
    let (_, size) = UNITS.iter().find(|(name, _)| *name == unit)?;
    number.checked_mul(*size)
}

/// Parses a memory size as Docker's `--memory` reads it (`512m`, `2g`, `1.5g`, `2GiB`, `100`):
/// a number, optionally with a fraction, then optionally a space and one of `k`, `m`, `g`,
/// `t`, `p` (binary: `k` is 1024), an `i` and a `b`, in any case. `None` when it is not one or
/// does not fit in an `i64`.
pub fn parse_docker_size(text: &str) -> Option<i64> {
    let text = text.trim();
    let number_end = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    // Docker's pattern is `\d+(\.\d+)*`: digits first, no empty fraction.
    if !number.starts_with(|c: char| c.is_ascii_digit()) || number.ends_with('.') {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    let bytes = number * 1024f64.powi(power);
    // `as` would saturate: a size past i64 is refused instead.
    (bytes.is_finite() && bytes < i64::MAX as f64).then_some(bytes as i64)
}

#[cfg(test)]
/// Writes `bytes` with the largest binary unit that divides it (`4MiB`, `1536KiB`, `10B`).
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes != 0 && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("1000", 1000),
            ("10B", 10),
            ("4MiB", 4 << 20),
            ("4 MiB", 4 << 20),
            ("4mib", 4 << 20),
            ("512KiB", 512 << 10),
            ("2GiB", 2 << 30),
            ("3kB", 3_000),
            ("3KB", 3_000),
            ("5MB", 5_000_000),
            ("1GB", 1_000_000_000),
            (" 7 KiB ", 7 << 10),
        ];
        for &(text, bytes) in cases {
            assert_eq!(parse_size(text), Some(bytes), "{text:?}");
        }
    }

    #[test]
    fn rejects_non_sizes() {
        for text in [
            "",
            "MiB",
            "-1",
            "1.5MiB",
            "4 M i B",
            "4TB",
            "4 megabytes",
            "99999999999999999999",
            "18446744073709551615GiB",
        ] {
            assert_eq!(parse_size(text), None, "{text:?}");
        }
    }

    #[test]
    fn parses_docker_sizes_as_docker_does() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("100", 100),
            ("512m", 512 << 20),
            ("512M", 512 << 20),
            ("2g", 2 << 30),
            ("2gb", 2 << 30),
            ("2GiB", 2 << 30),
            ("2 g", 2 << 30),
            ("1.5g", 3 << 29),
            ("64k", 64 << 10),
            ("1t", 1 << 40),
        ];
        for &(text, bytes) in cases {
            assert_eq!(parse_docker_size(text), Some(bytes), "{text:?}");
        }
        for text in [
            "", "g", "-1g", ".5g", "1.g", "2x", "2 gigs", "2  g", "1e3", "9999999p",
        ] {
            assert_eq!(parse_docker_size(text), None, "{text:?}");
        }
    }

    #[test]
    fn formats_sizes() {
        assert_eq!(format_size(4 << 20), "4MiB");
        assert_eq!(format_size(1536 << 10), "1536KiB");
        assert_eq!(format_size(3 << 30), "3GiB");
        assert_eq!(format_size(10), "10B");
        assert_eq!(format_size(0), "0B");
        for bytes in [0, 10, 4 << 20, 1536 << 10] {
            assert_eq!(parse_size(&format_size(bytes)), Some(bytes));
        }
    }
}
