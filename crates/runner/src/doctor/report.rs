//! The doctor's findings: one [`Check`] per thing checked, as text for people or JSON for
//! automation.

use serde::Serialize;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Works, but deserves attention (config warnings, a clock off, a cache jobs cannot
    /// reach): does not fail the run.
    Warn,
    Fail,
    /// Not checked: something it needs failed, or it does not apply (said in `detail`).
    Skip,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }

    fn style(self) -> anstyle::Style {
        use anstyle::{AnsiColor, Style};
        match self {
            Status::Pass => Style::new().fg_color(Some(AnsiColor::Green.into())),
            Status::Warn => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
            Status::Fail => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
            Status::Skip => Style::new().dimmed(),
        }
    }
}

/// One check: its name (`forge`, `image:ubuntu-latest`), how it came out, what was found, and
/// what to change when it did not pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub advice: Option<String>,
}

impl Check {
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Pass,
            detail: detail.into(),
            advice: None,
        }
    }

    pub fn skip(name: impl Into<String>, why: impl Into<String>) -> Check {
        Check {
            status: Status::Skip,
            ..Check::pass(name, why)
        }
    }

    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        advice: impl Into<String>,
    ) -> Check {
        Check {
            status: Status::Fail,
            advice: Some(advice.into()),
            ..Check::pass(name, detail)
        }
    }

    pub fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        advice: impl Into<String>,
    ) -> Check {
        Check {
            status: Status::Warn,
            ..Check::fail(name, detail, advice)
        }
    }

    pub fn passed(&self) -> bool {
        matches!(self.status, Status::Pass)
    }
}

/// Every check, in the order run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// No check failed (warnings and skips allowed).
    pub fn ok(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Fail)
    }

    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// The report as one JSON array of `{name, status, detail, advice}`.
    pub fn to_json(&self) -> String {
        // Strings and enums only: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "[]".to_owned())
    }
}

/// The report for people: one line per check (status, name, what was found), the advice
/// under a failure or warning, a summary last; `color` for a terminal.
pub fn render_text(report: &Report, color: bool) -> String {
    let width = report
        .checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for check in &report.checks {
        let word = check.status.word();
        let word = if color {
            let style = check.status.style();
            format!("{style}{word}{style:#}")
        } else {
            word.to_owned()
        };
        out.push_str(&format!(
            "{word}  {:<width$}  {}\n",
            check.name,
            check.detail.replace('\n', "\n        ")
        ));
        if let Some(advice) = &check.advice {
            out.push_str(&format!("      {:<width$}  fix: {advice}\n", ""));
        }
    }
    let count = |status| report.checks.iter().filter(|c| c.status == status).count();
    out.push_str(&format!(
        "\n{} passed, {} warning(s), {} failed, {} skipped\n",
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail),
        count(Status::Skip)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            checks: vec![
                Check::pass("config", "read config.yaml"),
                Check::fail("forge", "nothing answers", "start the forge"),
                Check::skip("token", "needs the forge"),
                Check::warn("clock", "40 s ahead", "synchronise the clock"),
            ],
        }
    }

    #[test]
    fn a_failure_fails_the_report_and_a_warning_does_not() {
        assert!(!report().ok());
        let mut warned = report();
        warned.checks.remove(1);
        assert!(warned.ok());
    }

    #[test]
    fn text_names_each_check_and_the_fix_and_colours_only_when_asked() {
        let text = render_text(&report(), false);
        assert!(text.contains("FAIL  forge   nothing answers\n"), "{text}");
        assert!(text.contains("fix: start the forge\n"), "{text}");
        assert!(text.contains("skip  token   needs the forge\n"), "{text}");
        assert!(
            text.ends_with("1 passed, 1 warning(s), 1 failed, 1 skipped\n"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(render_text(&report(), true).contains('\u{1b}'));
    }

    #[test]
    fn json_is_an_array_of_checks() {
        let json: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        assert_eq!(json[1]["name"], "forge");
        assert_eq!(json[1]["status"], "fail");
        assert_eq!(json[1]["advice"], "start the forge");
        assert_eq!(json[0]["advice"], serde_json::Value::Null);
        assert_eq!(json[2]["status"], "skip");
    }
}
