//! The POSIX cron syntax of `on.schedule[].cron`, as GitHub documents it: five fields (minute,
//! hour, day of month, month, day of week), each `*` or a comma-separated list of values and
//! ranges (`a-b`), optionally stepped (`*/15`, `1-30/2`); months and weekdays also by name
//! (`JAN`–`DEC`, `SUN`–`SAT`, any case).

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
    },
    Field {
        name: "day of week",
        min: 0,
        max: 6,
        names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    },
];

/// Checks a cron expression; the error says which field is wrong and why.
pub(crate) fn check(expression: &str) -> Result<(), String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() != FIELDS.len() {
        return Err(format!(
            "expected 5 fields (minute hour day month weekday), found {}",
            fields.len()
        ));
    }
    for (text, field) in fields.iter().zip(&FIELDS) {
        for part in text.split(',') {
            check_part(part, field)?;
        }
    }
    Ok(())
}

fn check_part(part: &str, field: &Field) -> Result<(), String> {
    let (range, step) = match part.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (part, None),
    };
    if let Some(step) = step {
        match step.parse::<u32>() {
            Ok(n) if n >= 1 => {}
            _ => return Err(format!("invalid step '{step}' in the {} field", field.name)),
        }
    }
    if range == "*" {
        return Ok(());
    }
    let (low, high) = match range.split_once('-') {
        Some((low, high)) => (value(low, field)?, value(high, field)?),
        None => {
            let v = value(range, field)?;
            (v, v)
        }
    };
    if low > high {
        return Err(format!(
            "range '{range}' of the {} field runs backwards",
            field.name
        ));
    }
    Ok(())
}

fn value(text: &str, field: &Field) -> Result<u32, String> {
    if let Some(index) = field
        .names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(text))
    {
        return Ok(field.min + index as u32);
    }
    let out_of_range = || {
        let names = match (field.names.first(), field.names.last()) {
            (Some(first), Some(last)) => format!(" or {first}-{last}"),
            _ => String::new(),
        };
        format!(
            "'{text}' is not a valid {} ({}-{}{names})",
            field.name, field.min, field.max
        )
    };
    let n: u32 = text.parse().map_err(|_| out_of_range())?;
    if (field.min..=field.max).contains(&n) {
        Ok(n)
    } else {
        Err(out_of_range())
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_githubs_documented_forms() {
        for ok in [
            "* * * * *",
            "30 5 * * 1,3",
            "30 5,17 * * *",
            "*/15 * * * *",
            "0 0 1-15/2 * *",
            "0 12 * JAN-mar sun",
            "15 4 31 12 6",
            "0 0 * * MON-FRI",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_with_the_field_named() {
        let cases = [
            (
                "0 3 * *",
                "expected 5 fields (minute hour day month weekday), found 4",
            ),
            ("60 * * * *", "'60' is not a valid minute (0-59)"),
            ("0 24 * * *", "'24' is not a valid hour (0-23)"),
            ("0 0 0 * *", "'0' is not a valid day of month (1-31)"),
            ("0 0 * 13 *", "'13' is not a valid month (1-12 or JAN-DEC)"),
            (
                "0 0 * * 7",
                "'7' is not a valid day of week (0-6 or SUN-SAT)",
            ),
            ("*/0 * * * *", "invalid step '0' in the minute field"),
            (
                "0 0 * * FRI-MON",
                "range 'FRI-MON' of the day of week field runs backwards",
            ),
            ("0 0 L * *", "'L' is not a valid day of month (1-31)"),
            (
                "0 0 * * ,",
                "'' is not a valid day of week (0-6 or SUN-SAT)",
            ),
        ];
        for (expression, message) in cases {
            assert_eq!(check(expression), Err(message.to_owned()), "{expression}");
        }
    }
}
