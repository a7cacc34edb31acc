//! Display names of matrix jobs (GitHub's `JobNameBuilder`).

use serde_json::Value;

use super::Combination;

/// GitHub's limit on a job's display name, in UTF-16 code units; longer names end in `...`.
pub const MAX_NAME_LENGTH: usize = 100;

/// The display name of the job for `combination`: `base (v1, v2, ...)`.
///
/// The values are the combination's [`Combination::name_values`], walked depth first through
/// nested mappings and sequences; strings, numbers (as GitHub formats them) and booleans are
/// used, `null` and empty strings skipped. Without any value the name is `base`. The name is
/// cut to 100 characters as GitHub does (97 and `...`). An empty `base` is returned as is.
///
/// When the job's `name:` uses the matrix (`name_has_matrix_expression`), the caller has
/// already evaluated it per combination and `base` is returned unchanged.
pub fn display_name(
    base: &str,
    combination: &Combination,
    name_has_matrix_expression: bool,
) -> String {
    if name_has_matrix_expression || base.is_empty() {
        return base.to_owned();
    }
    let mut segments = Vec::new();
    for (_, value) in combination.name_values() {
        collect_segments(value, &mut segments);
    }
    let name = if segments.is_empty() {
        base.to_owned()
    } else {
        format!("{base} ({})", segments.join(", "))
    };
    truncate(name)
}

fn collect_segments(value: &Value, segments: &mut Vec<String>) {
    let segment = match value {
        Value::Null => return,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => hearth_expr::format_number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            for item in items {
                collect_segments(item, segments);
            }
            return;
        }
        Value::Object(map) => {
            for item in map.values() {
                collect_segments(item, segments);
            }
            return;
        }
    };
    if !segment.is_empty() {
        segments.push(segment);
    }
}

/// .NET's `name.Substring(0, 97) + "..."` when the name is longer than 100 UTF-16 units. A
/// surrogate pair that would be split is dropped whole.
fn truncate(name: String) -> String {
    if name.encode_utf16().count() <= MAX_NAME_LENGTH {
        return name;
    }
    let mut units = 0;
    let mut end = 0;
    for (i, c) in name.char_indices() {
        if units + c.len_utf16() > MAX_NAME_LENGTH - 3 {
            break;
        }
        units += c.len_utf16();
        end = i + c.len_utf8();
    }
    format!("{}...", &name[..end])
}
