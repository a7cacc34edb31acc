//! How the engine's log lines become the forge's log rows.
//!
//! The forge stores plain text rows and its web UI renders workflow commands in them
//! (`::group::`, `::endgroup::`, annotations), the way the reference runners pass them through.
//! So lines the engine parsed into commands are written back as commands, and the runner's own
//! messages use the `##[error]` / `##[warning]` prefixes of GitHub's logs.

use std::fmt::Write as _;

use hearth_events::Level;
use hearth_events::{AnnotationRef, LogLine};

/// The forge keeps at most this much of a row (Gitea's `MaxLineSize`); longer lines are sent
/// as several rows instead of being cut.
pub(crate) const MAX_ROW_BYTES: usize = 64 * 1024;

/// The text of a log line as the forge shows it.
pub(crate) fn row_text(line: &LogLine<'_>) -> String {
    match *line {
        LogLine::Output(text) | LogLine::Echo(text) | LogLine::Info(text) => text.to_owned(),
        LogLine::Group(title) => format!("::group::{title}"),
        LogLine::EndGroup => "::endgroup::".to_owned(),
        LogLine::Annotation(annotation) => annotation_command(&annotation),
        LogLine::Debug(text) => format!("::debug::{text}"),
        LogLine::Warning(text) => format!("##[warning]{text}"),
        LogLine::Error(text) => format!("##[error]{text}"),
    }
}

/// `::error file=a.rs,line=3,title=T::message`, escaped as the workflow command syntax wants.
fn annotation_command(annotation: &AnnotationRef<'_>) -> String {
    let level = match annotation.level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
    };
    let mut text = format!("::{level}");
    let mut separator = ' ';
    let mut property = |text: &mut String, name: &str, value: &str| {
        let _ = write!(text, "{separator}{name}={}", escape_property(value));
        separator = ',';
    };
    if let Some(title) = annotation.title {
        property(&mut text, "title", title);
    }
    if let Some(file) = annotation.file {
        property(&mut text, "file", file);
    }
    let numbers = [
        ("line", annotation.line),
        ("endLine", annotation.end_line),
        ("col", annotation.column),
        ("endColumn", annotation.end_column),
    ];
    for (name, value) in numbers {
        if let Some(value) = value {
            property(&mut text, name, &value.to_string());
        }
    }
    text.push_str("::");
    text.push_str(&escape_data(annotation.message));
    text
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `text` in pieces of at most [`MAX_ROW_BYTES`], cut at character boundaries.
pub(crate) fn split_row(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        if current.len() <= MAX_ROW_BYTES {
            rest = None;
            return Some(current);
        }
        let mut cut = MAX_ROW_BYTES;
        while !current.is_char_boundary(cut) {
            cut -= 1;
        }
        rest = Some(&current[cut..]);
        Some(&current[..cut])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_written_back() {
        assert_eq!(row_text(&LogLine::Group("Build")), "::group::Build");
        assert_eq!(row_text(&LogLine::EndGroup), "::endgroup::");
        assert_eq!(row_text(&LogLine::Output("plain")), "plain");
        assert_eq!(
            row_text(&LogLine::Error("Process completed with exit code 1.")),
            "##[error]Process completed with exit code 1."
        );
        let annotation = AnnotationRef {
            level: Level::Warning,
            message: "50% done\nnext",
            title: Some("a: b"),
            file: Some("src/a,b.rs"),
            line: Some(3),
            end_line: None,
            column: Some(7),
            end_column: None,
        };
        assert_eq!(
            row_text(&LogLine::Annotation(annotation)),
            "::warning title=a%3A b,file=src/a%2Cb.rs,line=3,col=7::50%25 done%0Anext"
        );
    }

    #[test]
    fn long_lines_are_split_at_character_boundaries() {
        let line = "é".repeat(MAX_ROW_BYTES); // two bytes each
        let pieces: Vec<&str> = split_row(&line).collect();
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.len() <= MAX_ROW_BYTES));
        assert_eq!(pieces.concat(), line);
        assert_eq!(split_row("").collect::<Vec<_>>(), vec![""]);
    }
}
