//! What a running job reports, and the sinks that receive it.
//!
//! The engine emits these events; the console and JSON sinks of `hearth exec` and the forge's
//! task reporter consume them. The types live in their own small crate so that the forge
//! client depends on what a job reports, not on the engine that runs it.
//!
//! Every text in an event has been through the job's masker already: a sink can write what it
//! gets anywhere. Events borrow their data, so a log line costs no allocation on its way to a
//! sink; a sink that keeps something copies it.

use std::fmt;
use std::time::Duration;

/// Which job (one matrix combination of one workflow job) an event belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobLabel {
    /// The job's id in the workflow (`build`).
    pub id: String,
    /// Its display name, after expressions and matrix values (`build (linux, 20)`).
    pub name: String,
}

/// Which step an event belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepLabel {
    /// The step's place in the job's `steps:`, from 0 (the forge's step id); pre steps and
    /// then post steps are numbered after the main ones, in the order they run.
    pub index: usize,
    /// The step's `id`, when it has one.
    pub id: Option<String>,
    /// Its display name (`Run make test`, `Post Run ./my-action`).
    pub name: String,
}

/// How a step or a job ended, as GitHub names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Conclusion {
    Success,
    Failure,
    Cancelled,
    Skipped,
}

impl Conclusion {
    /// `success`, `failure`, `cancelled` or `skipped`: the value of `steps.<id>.outcome`,
    /// `needs.<id>.result` and `job.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Failure => "failure",
            Conclusion::Cancelled => "cancelled",
            Conclusion::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Conclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An annotation's severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

/// An annotation (`::error file=a.rs,line=3::msg`), masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnotationRef<'a> {
    pub level: Level,
    pub message: &'a str,
    pub title: Option<&'a str>,
    pub file: Option<&'a str>,
    pub line: Option<i32>,
    pub end_line: Option<i32>,
    pub column: Option<i32>,
    pub end_column: Option<i32>,
}

/// One line of a job's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLine<'a> {
    /// A line the step's processes printed (stdout or stderr).
    Output(&'a str),
    /// A workflow command line echoed back (`::echo::on`, `::stop-commands::`).
    Echo(&'a str),
    /// `::group::TITLE`: the lines up to the matching [`LogLine::EndGroup`] fold under it.
    Group(&'a str),
    /// `::endgroup::`.
    EndGroup,
    /// An error, warning or notice from the step.
    Annotation(AnnotationRef<'a>),
    /// `::debug::`, only sent when step debug logging is on.
    Debug(&'a str),
    /// What the runner itself says about the step (the script it runs, a skipped output).
    Info(&'a str),
    /// A problem the runner found that does not come from an annotation.
    Warning(&'a str),
    /// An error the runner reports (a step that could not start, a timeout).
    Error(&'a str),
}

/// Something that happened in a job.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// The job is about to prepare its workspace and run its steps.
    JobStarted { job: &'a JobLabel },
    /// A step starts (its `if:` held).
    StepStarted {
        job: &'a JobLabel,
        step: &'a StepLabel,
    },
    /// A log line, of a step or (with `step: None`) of the job's set-up and tear-down.
    Log {
        job: &'a JobLabel,
        step: Option<&'a StepLabel>,
        line: LogLine<'a>,
    },
    /// The markdown a step wrote to `GITHUB_STEP_SUMMARY`.
    StepSummary {
        job: &'a JobLabel,
        step: &'a StepLabel,
        markdown: &'a str,
    },
    /// A step ended, or was skipped (`outcome` and `conclusion` differ under
    /// `continue-on-error`).
    StepFinished {
        job: &'a JobLabel,
        step: &'a StepLabel,
        outcome: Conclusion,
        conclusion: Conclusion,
        duration: Duration,
    },
    /// The job ended; `result` is `needs.<id>.result`. A skipped job has only this event.
    JobFinished {
        job: &'a JobLabel,
        result: Conclusion,
        /// Why the job did not run, when it was skipped.
        reason: Option<&'a str>,
        outputs: &'a [(String, String)],
        duration: Duration,
    },
}

/// Receives events. Jobs run in parallel, so a sink is shared and takes `&self`.
pub trait EventSink: Send + Sync {
    /// One event. Keep it cheap: it is called for every log line.
    fn event(&self, event: &Event<'_>);

    /// The events of one batch of output have been sent: buffered output may be written out
    /// now. The engine calls it after each chunk a process writes and after every other event.
    fn flush(&self) {}
}

/// Sends every event to each of several sinks, in order.
pub struct Tee(pub Vec<Box<dyn EventSink>>);

impl EventSink for Tee {
    fn event(&self, event: &Event<'_>) {
        for sink in &self.0 {
            sink.event(event);
        }
    }

    fn flush(&self) {
        for sink in &self.0 {
            sink.flush();
        }
    }
}
