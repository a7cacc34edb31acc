//! `hearth exec`'s output for people: every line of every job prefixed with the job's name, as
//! act does, so that parallel jobs can share one terminal; step starts and ends, groups folded
//! into an indent, annotations highlighted, and a table of all jobs at the end.
//!
//! Without colour, a job reads:
//!
//! ```text
//! [build] ● Job started
//! [build] ▶ Run make
//! [build]   | cc -c main.c
//! [build]   ▸ Tests
//! [build]   |   test a ... ok
//! [build]   | error: undefined x (src/a.c:3:5)
//! [build] ✘ Run make failure (1.2s)
//! [build] ⊘ Deploy (skipped)
//! [build] ✘ Job failed (3.4s)
//! ```
//!
//! A step can print hundreds of megabytes, so the common case (an output line) costs no
//! allocation and no system call: the job's ready-made prefix and the line are copied into one
//! buffer, which goes out when the engine calls [`EventSink::flush`] (after each chunk a process
//! writes) or when it fills up.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

// Colours come from `anstyle` (already in the build through clap): it renders the escape
// sequences for a style, so this module names styles and never spells an escape code.
use anstyle::{AnsiColor, Style};

use super::out::Out;
use hearth_events::Level;
use hearth_events::{AnnotationRef, Conclusion, Event, EventSink, JobLabel, LogLine, StepLabel};

/// Colours for job prefixes, one per job in start order; red and yellow are left to failures
/// and warnings.
const JOB_COLORS: [AnsiColor; 6] = [
    AnsiColor::Cyan,
    AnsiColor::Magenta,
    AnsiColor::Blue,
    AnsiColor::Green,
    AnsiColor::BrightCyan,
    AnsiColor::BrightMagenta,
];

/// Whether output to stdout should be coloured: when it is a terminal, unless `NO_COLOR` is set
/// (no-color.org), `CLICOLOR=0` or `TERM=dumb`; `CLICOLOR_FORCE` colours even a pipe.
pub fn color_for_stdout() -> bool {
    decide_color(io::stdout().is_terminal(), |name| std::env::var_os(name))
}

/// The same for stderr, where the daemon logs: journald, `docker logs` and files get no colour
/// codes.
pub fn color_for_stderr() -> bool {
    decide_color(io::stderr().is_terminal(), |name| std::env::var_os(name))
}

/// [`color_for_stdout`] with the terminal test and the environment given, for tests.
fn decide_color(is_terminal: bool, var: impl Fn(&str) -> Option<OsString>) -> bool {
    let is = |name: &str, value: &str| var(name).is_some_and(|v| v == value);
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    if set("NO_COLOR") {
        return false;
    }
    if set("CLICOLOR_FORCE") && !is("CLICOLOR_FORCE", "0") {
        return true;
    }
    if is("CLICOLOR", "0") || is("TERM", "dumb") {
        return false;
    }
    is_terminal
}

/// The console sink. Shared by all jobs of a run; each event is written whole under one lock,
/// so lines of parallel jobs interleave but never mix.
pub struct Console<W: Write> {
    inner: Mutex<Inner<W>>,
}

impl<W: Write + Send> Console<W> {
    /// A console writing to `out`, with colours when `color` (see [`color_for_stdout`]).
    pub fn new(out: W, color: bool) -> Self {
        Console {
            inner: Mutex::new(Inner {
                out: Out::new(out),
                styles: Styles::new(color),
                name_width: 0,
                jobs: Vec::new(),
                last: 0,
            }),
        }
    }

    #[cfg(test)]
    /// Pads job names in prefixes to `width` characters so that parallel jobs' lines line up;
    /// the caller knows every job's display name before the run starts.
    pub fn with_name_width(mut self, width: usize) -> Self {
        self.inner
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .name_width = width;
        self
    }

    #[cfg(test)]
    /// The table of jobs, in the order they started (a skipped job where it was reported): name,
    /// result and duration in aligned columns, and why a job was skipped.
    pub fn summary(&self) -> String {
        let inner = self.lock();
        summary_table(&inner.jobs, &inner.styles)
    }

    /// Writes [`Console::summary`] after everything written so far, and flushes.
    pub fn write_summary(&self) {
        let mut inner = self.lock();
        let table = summary_table(&inner.jobs, &inner.styles);
        inner.out.put(table.as_bytes());
        inner.out.flush();
    }

    /// The first write error, if writing failed; nothing is written after one.
    pub fn take_error(&self) -> Option<io::Error> {
        self.lock().out.take_error()
    }

    #[cfg(test)]
    /// Flushes and returns the writer (tests read what was written this way).
    pub fn into_inner(self) -> io::Result<W> {
        let inner = self
            .inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        inner.out.into_inner()
    }

    /// The state, even after a panic elsewhere: output matters more than consistency then.
    fn lock(&self) -> MutexGuard<'_, Inner<W>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<W: Write + Send> EventSink for Console<W> {
    fn event(&self, event: &Event<'_>) {
        let mut inner = self.lock();
        match *event {
            Event::JobStarted { job } => inner.job_started(job),
            Event::StepStarted { job, step } => inner.step_started(job, step),
            Event::Log { job, line, .. } => inner.log(job, line),
            Event::StepSummary {
                job,
                step,
                markdown,
            } => inner.step_summary(job, step, markdown),
            Event::StepFinished {
                job,
                step,
                outcome,
                conclusion,
                duration,
            } => inner.step_finished(job, step, outcome, conclusion, duration),
            Event::JobFinished {
                job,
                result,
                reason,
                duration,
                ..
            } => inner.job_finished(job, result, reason, duration),
        }
    }

    fn flush(&self) {
        self.lock().out.flush();
    }
}

/// Everything behind the lock.
struct Inner<W: Write> {
    out: Out<W>,
    styles: Styles,
    name_width: usize,
    /// Every job seen, in the order of its first event.
    jobs: Vec<JobState>,
    /// The job of the last event: most events belong to the same job as the one before.
    last: usize,
}

/// What the console remembers of a job.
struct JobState {
    label: JobLabel,
    /// `[name] `, padded and painted, ready to copy before each line.
    prefix: String,
    in_group: bool,
    /// The step between its start and its end, whose summary waits for its end line.
    open_step: Option<usize>,
    pending_summary: String,
    result: Option<Conclusion>,
    reason: Option<String>,
    duration: Duration,
}

impl<W: Write> Inner<W> {
    /// The index of `label`'s state, added on its first event.
    fn job(&mut self, label: &JobLabel) -> usize {
        if self.jobs.get(self.last).is_some_and(|j| j.label == *label) {
            return self.last;
        }
        let index = match self.jobs.iter().position(|j| j.label == *label) {
            Some(index) => index,
            None => {
                let paint = self.styles.job(self.jobs.len());
                self.jobs.push(JobState {
                    label: label.clone(),
                    prefix: format!(
                        "{}[{:<width$}]{} ",
                        paint.on,
                        label.name,
                        paint.off,
                        width = self.name_width
                    ),
                    in_group: false,
                    open_step: None,
                    pending_summary: String::new(),
                    result: None,
                    reason: None,
                    duration: Duration::ZERO,
                });
                self.jobs.len() - 1
            }
        };
        self.last = index;
        index
    }

    fn job_started(&mut self, label: &JobLabel) {
        let j = self.job(label);
        let Inner {
            out, styles, jobs, ..
        } = self;
        out.put_str(&jobs[j].prefix);
        painted(out, &styles.heading, "● Job started");
        out.put(b"\n");
    }

    fn step_started(&mut self, label: &JobLabel, step: &StepLabel) {
        let j = self.job(label);
        let Inner {
            out, styles, jobs, ..
        } = self;
        let job = &mut jobs[j];
        job.in_group = false;
        // A summary still waiting belongs to a step whose end never came.
        write_pending_summary(out, styles, job);
        job.open_step = Some(step.index);
        let paint = &styles.heading;
        out.put_str(&job.prefix);
        out.put_str(&paint.on);
        out.put_str("▶ ");
        out.put_str(&step.name);
        out.put_str(&paint.off);
        out.put(b"\n");
    }

    fn log(&mut self, label: &JobLabel, line: LogLine<'_>) {
        let j = self.job(label);
        let Inner {
            out, styles, jobs, ..
        } = self;
        let job = &mut jobs[j];
        let plain = &styles.plain;
        match line {
            LogLine::Output(text) | LogLine::Echo(text) | LogLine::Info(text) => {
                write_log(out, job, plain, "", text)
            }
            LogLine::Group(title) => {
                // Groups do not nest: a new group's header is never indented, and it ends the
                // group before.
                out.put_str(&job.prefix);
                out.put_str("  ");
                out.put_str(&styles.heading.on);
                out.put_str("▸ ");
                out.put_str(title);
                out.put_str(&styles.heading.off);
                out.put(b"\n");
                job.in_group = true;
            }
            LogLine::EndGroup => job.in_group = false,
            LogLine::Annotation(annotation) => {
                let paint = styles.level(annotation.level);
                write_log(out, job, paint, "", &annotation_text(&annotation));
            }
            LogLine::Debug(text) => write_log(out, job, &styles.debug, "debug: ", text),
            LogLine::Warning(text) => write_log(out, job, &styles.warning, "warning: ", text),
            LogLine::Error(text) => write_log(out, job, &styles.error, "error: ", text),
        }
    }

    /// A summary is shown after its step's end line, so one that comes while the step runs
    /// waits for it.
    fn step_summary(&mut self, label: &JobLabel, step: &StepLabel, markdown: &str) {
        let j = self.job(label);
        let job = &mut self.jobs[j];
        if job.open_step == Some(step.index) {
            job.pending_summary.push_str(markdown);
        } else {
            write_step_summary(&mut self.out, &self.styles, &job.prefix, markdown);
        }
    }

    fn step_finished(
        &mut self,
        label: &JobLabel,
        step: &StepLabel,
        outcome: Conclusion,
        conclusion: Conclusion,
        duration: Duration,
    ) {
        let j = self.job(label);
        let Inner {
            out, styles, jobs, ..
        } = self;
        let job = &mut jobs[j];
        job.in_group = false;
        let paint = styles.step_end(outcome, conclusion);
        out.put_str(&job.prefix);
        out.put_str(&paint.on);
        out.put_str(mark(outcome));
        out.put_str(" ");
        out.put_str(&step.name);
        match outcome {
            Conclusion::Skipped => out.put_str(" (skipped)"),
            Conclusion::Success => out.put_fmt(format_args!(" ({})", Human(duration))),
            Conclusion::Failure | Conclusion::Cancelled if outcome != conclusion => out.put_fmt(
                format_args!(" {outcome} ({}; continue-on-error)", Human(duration)),
            ),
            Conclusion::Failure | Conclusion::Cancelled => {
                out.put_fmt(format_args!(" {outcome} ({})", Human(duration)))
            }
        }
        out.put_str(&paint.off);
        out.put(b"\n");
        if job.open_step == Some(step.index) {
            job.open_step = None;
            write_pending_summary(out, styles, job);
        }
    }

    fn job_finished(
        &mut self,
        label: &JobLabel,
        result: Conclusion,
        reason: Option<&str>,
        duration: Duration,
    ) {
        let j = self.job(label);
        let Inner {
            out, styles, jobs, ..
        } = self;
        let job = &mut jobs[j];
        job.in_group = false;
        job.open_step = None;
        write_pending_summary(out, styles, job);
        job.result = Some(result);
        job.reason = reason.map(str::to_owned);
        job.duration = duration;

        let paint = styles.result(result);
        out.put_str(&job.prefix);
        out.put_str(&paint.on);
        out.put_str(mark(result));
        match (result, reason) {
            (Conclusion::Skipped, Some(reason)) => {
                out.put_fmt(format_args!(" Job skipped: {reason}"))
            }
            (Conclusion::Skipped, None) => out.put_str(" Job skipped"),
            _ => out.put_fmt(format_args!(
                " Job {} ({})",
                job_verb(result),
                Human(duration)
            )),
        }
        out.put_str(&paint.off);
        out.put(b"\n");
    }
}

/// One log line (or, if `text` holds several, each of them), prefixed and indented in a group.
fn write_log<W: Write>(out: &mut Out<W>, job: &JobState, paint: &Paint, label: &str, text: &str) {
    let bar: &[u8] = if job.in_group { b"  |   " } else { b"  | " };
    for line in lines(text) {
        out.put_str(&job.prefix);
        if line.is_empty() && label.is_empty() {
            // No trailing blanks on an empty line.
            out.put(b"  |\n");
            continue;
        }
        out.put(bar);
        out.put_str(&paint.on);
        out.put_str(label);
        out.put_str(line);
        out.put_str(&paint.off);
        out.put(b"\n");
    }
}

/// A step summary under a `summary:` heading, each line prefixed like the log.
fn write_step_summary<W: Write>(out: &mut Out<W>, styles: &Styles, prefix: &str, markdown: &str) {
    out.put_str(prefix);
    out.put_str("  ");
    painted(out, &styles.heading, "summary:");
    out.put(b"\n");
    for line in lines(markdown) {
        out.put_str(prefix);
        out.put(if line.is_empty() { b"  |" } else { b"  | " });
        out.put_str(line);
        out.put(b"\n");
    }
}

fn write_pending_summary<W: Write>(out: &mut Out<W>, styles: &Styles, job: &mut JobState) {
    if !job.pending_summary.is_empty() {
        write_step_summary(out, styles, &job.prefix, &job.pending_summary);
        job.pending_summary.clear();
    }
}

/// The lines of `text`, without a final newline's empty line and without carriage returns
/// before newlines; an empty text is one empty line.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
}

/// `error: title: message (file:line:col)`, the parts that are there.
fn annotation_text(a: &AnnotationRef<'_>) -> String {
    let mut text = String::with_capacity(a.message.len() + 32);
    text.push_str(match a.level {
        Level::Error => "error: ",
        Level::Warning => "warning: ",
        Level::Notice => "notice: ",
    });
    if let Some(title) = a.title.filter(|t| !t.is_empty()) {
        text.push_str(title);
        text.push_str(": ");
    }
    text.push_str(a.message);
    if let Some(file) = a.file {
        use fmt::Write as _;
        let _ = write!(text, " ({file}{})", Location(a));
    }
    text
}

/// `:line:col`, `:line-end_line`, `:line:col-end_col` or `:line:col-end_line:end_col`: the
/// position after an annotation's file, as much of it as is known.
struct Location<'a, 'b>(&'a AnnotationRef<'b>);

impl fmt::Display for Location<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0;
        let Some(line) = a.line else { return Ok(()) };
        write!(f, ":{line}")?;
        if let Some(column) = a.column {
            write!(f, ":{column}")?;
        }
        match (a.end_line.filter(|&l| l != line), a.end_column) {
            (Some(end_line), Some(end_column)) => write!(f, "-{end_line}:{end_column}"),
            (Some(end_line), None) => write!(f, "-{end_line}"),
            (None, Some(end_column)) if a.column.is_some_and(|c| c != end_column) => {
                write!(f, "-{end_column}")
            }
            _ => Ok(()),
        }
    }
}

fn mark(conclusion: Conclusion) -> &'static str {
    match conclusion {
        Conclusion::Success => "✔",
        Conclusion::Failure | Conclusion::Cancelled => "✘",
        Conclusion::Skipped => "⊘",
    }
}

fn job_verb(result: Conclusion) -> &'static str {
    match result {
        Conclusion::Success => "succeeded",
        Conclusion::Failure => "failed",
        Conclusion::Cancelled => "cancelled",
        Conclusion::Skipped => "skipped",
    }
}

/// A duration as people read it: `12ms`, `1.2s`, `3m04s`, `1h02m`.
struct Human(Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let secs = d.as_secs();
        if secs == 0 {
            write!(f, "{}ms", d.subsec_millis())
        } else if secs < 60 {
            // Tenths cut off, not rounded, so 59.96 s does not read `60.0s`.
            let tenths = d.as_millis() / 100;
            write!(f, "{}.{}s", tenths / 10, tenths % 10)
        } else if secs < 3600 {
            write!(f, "{}m{:02}s", secs / 60, secs % 60)
        } else {
            write!(f, "{}h{:02}m", secs / 3600, secs % 3600 / 60)
        }
    }
}

/// The table [`Console::summary`] returns. Columns are padded before painting, so escape codes
/// do not disturb the alignment.
fn summary_table(jobs: &[JobState], styles: &Styles) -> String {
    let rows: Vec<[String; 4]> = jobs
        .iter()
        .map(|job| {
            let duration = match job.result {
                None | Some(Conclusion::Skipped) => "-".to_owned(),
                Some(_) => Human(job.duration).to_string(),
            };
            [
                job.label.name.clone(),
                job.result.map_or("-", Conclusion::as_str).to_owned(),
                duration,
                job.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["JOB", "RESULT", "DURATION", "NOTE"].map(str::to_owned);
    let width = |c: usize| {
        rows.iter()
            .chain([&header])
            .map(|r| r[c].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (name_w, result_w, duration_w) = (width(0), width(1), width(2));
    let with_notes = rows.iter().any(|r| !r[3].is_empty());

    let mut table = String::new();
    let mut row = |cells: &[String; 4], paint: &Paint, head: bool| {
        use fmt::Write as _;
        let result = format!("{:<result_w$}", cells[1]);
        let _ = write!(
            table,
            "{:<name_w$}  {}{result}{}  {:>duration_w$}",
            cells[0], paint.on, paint.off, cells[2]
        );
        if with_notes && (head || !cells[3].is_empty()) {
            let _ = write!(table, "  {}", cells[3]);
        }
        table.push('\n');
    };
    row(&header, &styles.plain, true);
    for (cells, job) in rows.iter().zip(jobs) {
        let paint = job.result.map_or(&styles.plain, |r| styles.result(r));
        row(cells, paint, false);
    }
    table
}

/// The escape sequences that switch a style on and off; both empty without colour, so that
/// painting costs two empty copies.
#[derive(Default)]
struct Paint {
    on: String,
    off: String,
}

impl Paint {
    fn new(style: Style, color: bool) -> Self {
        if !color {
            return Paint::default();
        }
        Paint {
            on: style.render().to_string(),
            off: style.render_reset().to_string(),
        }
    }
}

/// Every style the console uses, rendered once.
struct Styles {
    color: bool,
    plain: Paint,
    heading: Paint,
    ok: Paint,
    failed: Paint,
    ignored: Paint,
    skipped: Paint,
    debug: Paint,
    warning: Paint,
    error: Paint,
    notice: Paint,
}

impl Styles {
    fn new(color: bool) -> Self {
        let paint = |style| Paint::new(style, color);
        Styles {
            color,
            plain: Paint::default(),
            heading: paint(Style::new().bold()),
            ok: paint(AnsiColor::Green.on_default()),
            failed: paint(AnsiColor::Red.on_default().bold()),
            ignored: paint(AnsiColor::Yellow.on_default()),
            skipped: paint(Style::new().dimmed()),
            debug: paint(Style::new().dimmed()),
            warning: paint(AnsiColor::Yellow.on_default()),
            error: paint(AnsiColor::Red.on_default()),
            notice: paint(AnsiColor::Cyan.on_default()),
        }
    }

    /// The colour of the `n`th job's prefix.
    fn job(&self, n: usize) -> Paint {
        Paint::new(JOB_COLORS[n % JOB_COLORS.len()].on_default(), self.color)
    }

    fn level(&self, level: Level) -> &Paint {
        match level {
            Level::Error => &self.error,
            Level::Warning => &self.warning,
            Level::Notice => &self.notice,
        }
    }

    fn result(&self, result: Conclusion) -> &Paint {
        match result {
            Conclusion::Success => &self.ok,
            Conclusion::Failure | Conclusion::Cancelled => &self.failed,
            Conclusion::Skipped => &self.skipped,
        }
    }

    /// A failure that `continue-on-error` turned into success is shown as a warning.
    fn step_end(&self, outcome: Conclusion, conclusion: Conclusion) -> &Paint {
        if outcome != conclusion {
            &self.ignored
        } else {
            self.result(outcome)
        }
    }
}

/// Writes `text` in `paint`'s colours.
fn painted<W: Write>(out: &mut Out<W>, paint: &Paint, text: &str) {
    out.put_str(&paint.on);
    out.put_str(text);
    out.put_str(&paint.off);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn job(id: &str, name: &str) -> JobLabel {
        JobLabel {
            id: id.into(),
            name: name.into(),
        }
    }

    fn step(index: usize, name: &str) -> StepLabel {
        StepLabel {
            index,
            id: None,
            name: name.into(),
        }
    }

    fn annotation<'a>(level: Level, message: &'a str) -> AnnotationRef<'a> {
        AnnotationRef {
            level,
            message,
            title: None,
            file: None,
            line: None,
            end_line: None,
            column: None,
            end_column: None,
        }
    }

    fn text(console: Console<Vec<u8>>) -> String {
        String::from_utf8(console.into_inner().expect("a Vec never fails")).expect("UTF-8")
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// One job with every kind of event, and a skipped second job.
    fn run(console: &Console<Vec<u8>>) {
        let build = job("build", "build (linux)");
        let deploy = job("deploy", "deploy");
        let (make, lint, docs) = (step(0, "Run make"), step(1, "Lint"), step(2, "Docs"));
        let log = |line| Event::Log {
            job: &build,
            step: Some(&make),
            line,
        };
        let events = [
            Event::JobStarted { job: &build },
            Event::StepStarted {
                job: &build,
                step: &make,
            },
            log(LogLine::Info("make all")),
            log(LogLine::Output("cc -c main.c")),
            log(LogLine::Output("")),
            log(LogLine::Group("Tests")),
            log(LogLine::Output("test a ... ok")),
            log(LogLine::Debug("cache hit")),
            log(LogLine::Group("More")),
            log(LogLine::Output("test b ... ok")),
            log(LogLine::EndGroup),
            log(LogLine::Annotation(AnnotationRef {
                title: Some("Compile"),
                file: Some("src/a.c"),
                line: Some(3),
                column: Some(5),
                ..annotation(Level::Error, "undefined x")
            })),
            log(LogLine::Annotation(AnnotationRef {
                file: Some("src/b.c"),
                line: Some(7),
                end_line: Some(9),
                ..annotation(Level::Warning, "unused y")
            })),
            log(LogLine::Annotation(annotation(Level::Notice, "two\nlines"))),
            log(LogLine::Warning("slow disk")),
            log(LogLine::Error("Process completed with exit code 2.")),
            Event::StepSummary {
                job: &build,
                step: &make,
                markdown: "# Report\n\nall good\n",
            },
            Event::StepFinished {
                job: &build,
                step: &make,
                outcome: Conclusion::Failure,
                conclusion: Conclusion::Success,
                duration: ms(1234),
            },
            Event::StepStarted {
                job: &build,
                step: &lint,
            },
            Event::StepFinished {
                job: &build,
                step: &lint,
                outcome: Conclusion::Failure,
                conclusion: Conclusion::Failure,
                duration: ms(80),
            },
            Event::StepFinished {
                job: &build,
                step: &docs,
                outcome: Conclusion::Skipped,
                conclusion: Conclusion::Skipped,
                duration: Duration::ZERO,
            },
            Event::JobFinished {
                job: &build,
                result: Conclusion::Failure,
                reason: None,
                outputs: &[],
                duration: Duration::from_secs(75),
            },
            Event::JobFinished {
                job: &deploy,
                result: Conclusion::Skipped,
                reason: Some("needs build failed"),
                outputs: &[],
                duration: Duration::ZERO,
            },
        ];
        for event in &events {
            console.event(event);
            console.flush();
        }
    }

    #[test]
    fn writes_every_event_kind_without_colour() {
        let console = Console::new(Vec::new(), false);
        run(&console);
        assert_eq!(
            console.summary(),
            "\
JOB            RESULT   DURATION  NOTE
build (linux)  failure     1m15s
deploy         skipped         -  needs build failed
"
        );
        assert_eq!(
            text(console),
            "\
[build (linux)] ● Job started
[build (linux)] ▶ Run make
[build (linux)]   | make all
[build (linux)]   | cc -c main.c
[build (linux)]   |
[build (linux)]   ▸ Tests
[build (linux)]   |   test a ... ok
[build (linux)]   |   debug: cache hit
[build (linux)]   ▸ More
[build (linux)]   |   test b ... ok
[build (linux)]   | error: Compile: undefined x (src/a.c:3:5)
[build (linux)]   | warning: unused y (src/b.c:7-9)
[build (linux)]   | notice: two
[build (linux)]   | lines
[build (linux)]   | warning: slow disk
[build (linux)]   | error: Process completed with exit code 2.
[build (linux)] ✘ Run make failure (1.2s; continue-on-error)
[build (linux)]   summary:
[build (linux)]   | # Report
[build (linux)]   |
[build (linux)]   | all good
[build (linux)] ▶ Lint
[build (linux)] ✘ Lint failure (80ms)
[build (linux)] ⊘ Docs (skipped)
[build (linux)] ✘ Job failed (1m15s)
[deploy] ⊘ Job skipped: needs build failed
"
        );
    }

    #[test]
    fn pads_names_and_ends_steps_and_jobs() {
        let console = Console::new(Vec::new(), false).with_name_width(6);
        let (a, b) = (job("a", "a"), job("b", "b"));
        let s = step(0, "Test");
        let summary_after_end = [
            Event::JobStarted { job: &a },
            Event::StepStarted { job: &a, step: &s },
            Event::StepFinished {
                job: &a,
                step: &s,
                outcome: Conclusion::Success,
                conclusion: Conclusion::Success,
                duration: ms(2500),
            },
            Event::StepSummary {
                job: &a,
                step: &s,
                markdown: "late",
            },
            Event::JobFinished {
                job: &a,
                result: Conclusion::Success,
                reason: None,
                outputs: &[],
                duration: Duration::from_secs(3 * 3600 + 120),
            },
            Event::JobStarted { job: &b },
            Event::StepStarted { job: &b, step: &s },
            Event::StepFinished {
                job: &b,
                step: &s,
                outcome: Conclusion::Cancelled,
                conclusion: Conclusion::Cancelled,
                duration: ms(500),
            },
            Event::JobFinished {
                job: &b,
                result: Conclusion::Cancelled,
                reason: None,
                outputs: &[],
                duration: ms(600),
            },
        ];
        for event in &summary_after_end {
            console.event(event);
        }
        assert_eq!(
            console.summary(),
            "\
JOB  RESULT     DURATION
a    success       3h02m
b    cancelled     600ms
"
        );
        assert_eq!(
            text(console),
            "\
[a     ] ● Job started
[a     ] ▶ Test
[a     ] ✔ Test (2.5s)
[a     ]   summary:
[a     ]   | late
[a     ] ✔ Job succeeded (3h02m)
[b     ] ● Job started
[b     ] ▶ Test
[b     ] ✘ Test cancelled (500ms)
[b     ] ✘ Job cancelled (600ms)
"
        );
    }

    #[test]
    fn colours_only_when_asked() {
        let plain = Console::new(Vec::new(), false);
        run(&plain);
        assert!(!plain.summary().contains('\x1b'));
        assert!(!text(plain).contains('\x1b'));

        let coloured = Console::new(Vec::new(), true);
        run(&coloured);
        assert!(coloured.summary().contains("\x1b[31m"));
        let out = text(coloured);
        assert!(out.contains("\x1b[36m[build (linux)]\x1b[0m "), "{out}");
        assert!(out.contains("\x1b[31merror: Compile: undefined x"), "{out}");
        assert!(out.contains("\x1b[33mwarning: unused y"), "{out}");
        assert!(out.contains("\x1b[2mdebug: cache hit\x1b[0m"), "{out}");
        // Output lines themselves are never painted.
        assert!(out.contains("\x1b[0m   | cc -c main.c\n"), "{out}");
    }

    #[test]
    fn decides_colour_from_terminal_and_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert!(decide_color(true, env(&[])));
        assert!(!decide_color(false, env(&[])));
        assert!(!decide_color(true, env(&[("NO_COLOR", "1")])));
        assert!(decide_color(true, env(&[("NO_COLOR", "")])));
        assert!(decide_color(false, env(&[("CLICOLOR_FORCE", "1")])));
        assert!(!decide_color(false, env(&[("CLICOLOR_FORCE", "0")])));
        assert!(!decide_color(
            false,
            env(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")])
        ));
        assert!(!decide_color(true, env(&[("CLICOLOR", "0")])));
        assert!(!decide_color(true, env(&[("TERM", "dumb")])));
    }

    #[test]
    fn keeps_lines_of_parallel_jobs_whole() {
        const LINES: usize = 20_000;
        let console = Arc::new(Console::new(Vec::new(), false));
        let threads: Vec<_> = ["one", "two"]
            .into_iter()
            .map(|name| {
                let console = Arc::clone(&console);
                std::thread::spawn(move || {
                    let label = job(name, name);
                    let text = format!("{name} {}", "x".repeat(70));
                    for _ in 0..LINES {
                        console.event(&Event::Log {
                            job: &label,
                            step: None,
                            line: LogLine::Output(&text),
                        });
                        console.flush();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("writer thread");
        }
        let console = Arc::into_inner(console).expect("threads are done");
        let out = text(console);
        let x = "x".repeat(70);
        let one = format!("[one]   | one {x}");
        let two = format!("[two]   | two {x}");
        let mut counts = (0, 0);
        for line in out.lines() {
            match line {
                l if l == one => counts.0 += 1,
                l if l == two => counts.1 += 1,
                other => panic!("mixed line: {other:?}"),
            }
        }
        assert_eq!(counts, (LINES, LINES));
    }

    #[test]
    fn formats_durations_and_annotation_positions() {
        let human = |ms| Human(Duration::from_millis(ms)).to_string();
        assert_eq!(
            [0, 999, 1000, 59_960, 60_000, 3_599_999, 3_600_000].map(human),
            ["0ms", "999ms", "1.0s", "59.9s", "1m00s", "59m59s", "1h00m"]
        );
        let at = |line, column, end_line, end_column| {
            annotation_text(&AnnotationRef {
                file: Some("f"),
                line,
                column,
                end_line,
                end_column,
                ..annotation(Level::Notice, "m")
            })
        };
        assert_eq!(at(None, None, None, None), "notice: m (f)");
        assert_eq!(at(Some(3), None, Some(3), None), "notice: m (f:3)");
        assert_eq!(at(Some(3), Some(5), None, Some(9)), "notice: m (f:3:5-9)");
        assert_eq!(
            at(Some(3), Some(5), Some(4), Some(2)),
            "notice: m (f:3:5-4:2)"
        );
        let no_file = annotation_text(&AnnotationRef {
            line: Some(3),
            ..annotation(Level::Warning, "m")
        });
        assert_eq!(no_file, "warning: m");
    }

    /// A writer that fails after a while, as stdout does when the pipe closes.
    struct Closing(usize);

    impl Write for Closing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.0 -= 1;
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn remembers_a_failed_write_and_goes_on() {
        let console = Console::new(Closing(1), false);
        let label = job("a", "a");
        for _ in 0..3 {
            console.event(&Event::JobStarted { job: &label });
            console.flush();
        }
        let error = console.take_error().expect("the second flush failed");
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        // The table is still there for the end of the run.
        console.event(&Event::JobFinished {
            job: &label,
            result: Conclusion::Success,
            reason: None,
            outputs: &[],
            duration: ms(5),
        });
        assert!(console.summary().contains("a    success"));
    }
}
