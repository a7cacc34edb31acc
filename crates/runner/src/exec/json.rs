//! `hearth exec --json`: every event as one JSON object on a line of its own, for programs.
//!
//! # Schema
//!
//! Field names and values are stable: fields may be added, none is renamed or removed. Every
//! object has `event` (what happened), `job` (the job's id in the workflow) and `name` (its
//! display name; the instances of a matrix job share an id and differ in name). Steps are
//! named by `step` (their index in the job, from 0, post steps after the main ones),
//! `step_id` (their `id:`, or `null`) and `step_name`. Results are `success`, `failure`,
//! `cancelled` or `skipped`; durations are whole milliseconds.
//!
//! ```text
//! {"event":"job_started","job":"build","name":"build (linux)"}
//! {"event":"step_started","job":"build","name":"build (linux)","step":0,"step_id":null,"step_name":"Run make"}
//! {"event":"log","job":"build","name":"build (linux)","step":0,"kind":"output","text":"cc -c main.c"}
//! {"event":"log","job":"build","name":"build (linux)","step":0,"kind":"error","text":"undefined x",
//!  "file":"src/a.c","line":3,"col":5,"end_line":null,"end_column":null,"title":null}
//! {"event":"step_summary","job":"build","name":"build (linux)","step":0,"step_id":null,"step_name":"Run make","markdown":"# Report\n"}
//! {"event":"step_finished","job":"build","name":"build (linux)","step":0,"step_id":null,"step_name":"Run make",
//!  "outcome":"failure","conclusion":"success","duration_ms":1234}
//! {"event":"job_finished","job":"build","name":"build (linux)","result":"success","reason":null,
//!  "outputs":{"version":"1.2"},"duration_ms":5000}
//! ```
//!
//! (The wrapped lines above are one line each in the output.)
//!
//! A `log` event's `step` is `null` for the job's own set-up and tear-down. Its `kind` is one of
//! `output` (what the step's processes printed), `echo` (a workflow command echoed back),
//! `group` (`text` is the group's title), `endgroup` (`text` is empty), `error`, `warning`,
//! `notice` (annotations: these alone also carry `file`, `line`, `col`, `end_line`,
//! `end_column` and `title`, `null` when the step did not give them), `debug`, `info` (the
//! runner's own remarks), `runner_warning` and `runner_error` (problems the runner found).
//! A skipped job has only its `job_finished` event, with `reason` saying why.
//!
//! Like the console, the sink writes into one buffer and writes it out when the engine calls
//! [`EventSink::flush`] or when it fills up, never a system call per line.

use std::io::{self, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hearth_events::Level;
use hearth_events::{AnnotationRef, Event, EventSink, JobLabel, LogLine, StepLabel};
use serde::{Serialize, Serializer};

use super::out::Out;

/// The JSON-lines sink. Shared by all jobs; each event is one whole line.
pub struct JsonLines<W: Write> {
    inner: Mutex<Out<W>>,
}

impl<W: Write + Send> JsonLines<W> {
    /// A sink writing JSON lines to `out`.
    pub fn new(out: W) -> Self {
        JsonLines {
            inner: Mutex::new(Out::new(out)),
        }
    }

    /// The first write error, if writing failed; nothing is written after one.
    pub fn take_error(&self) -> Option<io::Error> {
        self.lock().take_error()
    }

    #[cfg(test)]
    /// Flushes and returns the writer (tests read what was written this way).
    pub fn into_inner(self) -> io::Result<W> {
        self.inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .into_inner()
    }

    /// The writer, even after a panic elsewhere: a line is written whole or not at all anyway.
    fn lock(&self) -> MutexGuard<'_, Out<W>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<W: Write + Send> EventSink for JsonLines<W> {
    fn event(&self, event: &Event<'_>) {
        self.lock().with(|buf| {
            serde_json::to_writer(&mut *buf, &record(event))?;
            buf.write_all(b"\n")
        });
    }

    fn flush(&self) {
        self.lock().flush();
    }
}

/// One line of output: an [`Event`] in the shape of the schema above.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Record<'a> {
    JobStarted {
        job: &'a str,
        name: &'a str,
    },
    StepStarted {
        job: &'a str,
        name: &'a str,
        #[serde(flatten)]
        step: Step<'a>,
    },
    Log {
        job: &'a str,
        name: &'a str,
        step: Option<usize>,
        kind: &'static str,
        text: &'a str,
        #[serde(flatten)]
        annotation: Option<Annotation<'a>>,
    },
    StepSummary {
        job: &'a str,
        name: &'a str,
        #[serde(flatten)]
        step: Step<'a>,
        markdown: &'a str,
    },
    StepFinished {
        job: &'a str,
        name: &'a str,
        #[serde(flatten)]
        step: Step<'a>,
        outcome: &'static str,
        conclusion: &'static str,
        duration_ms: u64,
    },
    JobFinished {
        job: &'a str,
        name: &'a str,
        result: &'static str,
        reason: Option<&'a str>,
        outputs: Outputs<'a>,
        duration_ms: u64,
    },
}

/// The fields that name a step.
#[derive(Serialize)]
struct Step<'a> {
    step: usize,
    step_id: Option<&'a str>,
    step_name: &'a str,
}

impl<'a> From<&'a StepLabel> for Step<'a> {
    fn from(step: &'a StepLabel) -> Self {
        Step {
            step: step.index,
            step_id: step.id.as_deref(),
            step_name: &step.name,
        }
    }
}

/// Where an annotation points, with GitHub's names for the fields (`col`, `end_column`).
#[derive(Serialize)]
struct Annotation<'a> {
    file: Option<&'a str>,
    line: Option<i32>,
    col: Option<i32>,
    end_line: Option<i32>,
    end_column: Option<i32>,
    title: Option<&'a str>,
}

/// A job's outputs as one JSON object, in the order the job set them.
struct Outputs<'a>(&'a [(String, String)]);

impl Serialize for Outputs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

fn record<'a>(event: &Event<'a>) -> Record<'a> {
    match *event {
        Event::JobStarted { job } => Record::JobStarted {
            job: &job.id,
            name: &job.name,
        },
        Event::StepStarted { job, step } => Record::StepStarted {
            job: &job.id,
            name: &job.name,
            step: step.into(),
        },
        Event::Log { job, step, line } => log_record(job, step, line),
        Event::StepSummary {
            job,
            step,
            markdown,
        } => Record::StepSummary {
            job: &job.id,
            name: &job.name,
            step: step.into(),
            markdown,
        },
        Event::StepFinished {
            job,
            step,
            outcome,
            conclusion,
            duration,
        } => Record::StepFinished {
            job: &job.id,
            name: &job.name,
            step: step.into(),
            outcome: outcome.as_str(),
            conclusion: conclusion.as_str(),
            duration_ms: millis(duration),
        },
        Event::JobFinished {
            job,
            result,
            reason,
            outputs,
            duration,
        } => Record::JobFinished {
            job: &job.id,
            name: &job.name,
            result: result.as_str(),
            reason,
            outputs: Outputs(outputs),
            duration_ms: millis(duration),
        },
    }
}

fn log_record<'a>(job: &'a JobLabel, step: Option<&StepLabel>, line: LogLine<'a>) -> Record<'a> {
    let (kind, text, annotation) = match line {
        LogLine::Output(text) => ("output", text, None),
        LogLine::Echo(text) => ("echo", text, None),
        LogLine::Group(title) => ("group", title, None),
        LogLine::EndGroup => ("endgroup", "", None),
        LogLine::Annotation(a) => (level_kind(a.level), a.message, Some(location(&a))),
        LogLine::Debug(text) => ("debug", text, None),
        LogLine::Info(text) => ("info", text, None),
        LogLine::Warning(text) => ("runner_warning", text, None),
        LogLine::Error(text) => ("runner_error", text, None),
    };
    Record::Log {
        job: &job.id,
        name: &job.name,
        step: step.map(|s| s.index),
        kind,
        text,
        annotation,
    }
}

fn level_kind(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
    }
}

fn location<'a>(a: &AnnotationRef<'a>) -> Annotation<'a> {
    Annotation {
        file: a.file,
        line: a.line,
        col: a.column,
        end_line: a.end_line,
        end_column: a.end_column,
        title: a.title,
    }
}

/// Whole milliseconds; a duration past `u64` (half a billion years) is clamped.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_events::Conclusion;
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn job(id: &str, name: &str) -> JobLabel {
        JobLabel {
            id: id.into(),
            name: name.into(),
        }
    }

    fn lines(sink: JsonLines<Vec<u8>>) -> Vec<Value> {
        let bytes = sink.into_inner().expect("a Vec never fails");
        let text = String::from_utf8(bytes).expect("UTF-8");
        assert!(text.ends_with('\n'));
        text.lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect()
    }

    #[test]
    fn writes_each_event_as_a_line_with_its_fields() {
        let build = job("build", "build (linux)");
        let make = StepLabel {
            index: 0,
            id: Some("make".into()),
            name: "Run make".into(),
        };
        let error = AnnotationRef {
            level: Level::Error,
            message: "undefined x",
            title: Some("Compile"),
            file: Some("src/a.c"),
            line: Some(3),
            end_line: None,
            column: Some(5),
            end_column: None,
        };
        let outputs = [
            ("version".to_owned(), "1.2".to_owned()),
            ("a".to_owned(), "\"quoted\"\n".to_owned()),
        ];
        let log = |step, line| Event::Log {
            job: &build,
            step,
            line,
        };
        let events = [
            Event::JobStarted { job: &build },
            Event::StepStarted {
                job: &build,
                step: &make,
            },
            log(Some(&make), LogLine::Output("cc -c \"main.c\"")),
            log(Some(&make), LogLine::Echo("::echo::on")),
            log(Some(&make), LogLine::Group("Tests")),
            log(Some(&make), LogLine::EndGroup),
            log(Some(&make), LogLine::Annotation(error)),
            log(Some(&make), LogLine::Debug("d")),
            log(None, LogLine::Info("i")),
            log(None, LogLine::Warning("w")),
            log(None, LogLine::Error("e")),
            Event::StepSummary {
                job: &build,
                step: &make,
                markdown: "# Report\n",
            },
            Event::StepFinished {
                job: &build,
                step: &make,
                outcome: Conclusion::Failure,
                conclusion: Conclusion::Success,
                duration: Duration::from_micros(1_234_567),
            },
            Event::JobFinished {
                job: &build,
                result: Conclusion::Success,
                reason: None,
                outputs: &outputs,
                duration: Duration::from_secs(5),
            },
        ];
        let sink = JsonLines::new(Vec::new());
        for event in &events {
            sink.event(event);
        }
        let step = |extra: Value| {
            let mut value = json!({"job": "build", "name": "build (linux)", "step": 0,
                "step_id": "make", "step_name": "Run make"});
            value
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            value
        };
        let log = |step: Value, kind: &str, text: &str| {
            json!({"event": "log", "job": "build", "name": "build (linux)", "step": step,
                "kind": kind, "text": text})
        };
        assert_eq!(
            lines(sink),
            [
                json!({"event": "job_started", "job": "build", "name": "build (linux)"}),
                step(json!({"event": "step_started"})),
                log(json!(0), "output", "cc -c \"main.c\""),
                log(json!(0), "echo", "::echo::on"),
                log(json!(0), "group", "Tests"),
                log(json!(0), "endgroup", ""),
                json!({"event": "log", "job": "build", "name": "build (linux)", "step": 0,
                    "kind": "error", "text": "undefined x", "file": "src/a.c", "line": 3,
                    "col": 5, "end_line": null, "end_column": null, "title": "Compile"}),
                log(json!(0), "debug", "d"),
                log(Value::Null, "info", "i"),
                log(Value::Null, "runner_warning", "w"),
                log(Value::Null, "runner_error", "e"),
                step(json!({"event": "step_summary", "markdown": "# Report\n"})),
                step(json!({"event": "step_finished", "outcome": "failure",
                    "conclusion": "success", "duration_ms": 1234})),
                json!({"event": "job_finished", "job": "build", "name": "build (linux)",
                    "result": "success", "reason": null,
                    "outputs": {"version": "1.2", "a": "\"quoted\"\n"}, "duration_ms": 5000}),
            ]
        );
    }

    #[test]
    fn keeps_field_order_and_writes_a_skipped_job() {
        let sink = JsonLines::new(Vec::new());
        sink.event(&Event::JobFinished {
            job: &job("deploy", "Deploy"),
            result: Conclusion::Skipped,
            reason: Some("needs build failed"),
            outputs: &[],
            duration: Duration::ZERO,
        });
        let text = String::from_utf8(sink.into_inner().unwrap()).unwrap();
        assert_eq!(
            text,
            "{\"event\":\"job_finished\",\"job\":\"deploy\",\"name\":\"Deploy\",\
             \"result\":\"skipped\",\"reason\":\"needs build failed\",\"outputs\":{},\
             \"duration_ms\":0}\n"
        );
    }

    #[test]
    fn keeps_lines_of_parallel_jobs_whole() {
        const LINES: usize = 20_000;
        let sink = Arc::new(JsonLines::new(Vec::new()));
        let threads: Vec<_> = ["one", "two"]
            .into_iter()
            .map(|name| {
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || {
                    let label = job(name, name);
                    for i in 0..LINES {
                        let text = format!("{name} {i}");
                        sink.event(&Event::Log {
                            job: &label,
                            step: None,
                            line: LogLine::Output(&text),
                        });
                        sink.flush();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("writer thread");
        }
        let sink = Arc::into_inner(sink).expect("threads are done");
        let mut next = [0, 0];
        for line in lines(sink) {
            let job = line["job"].as_str().unwrap();
            let n = usize::from(job == "two");
            assert_eq!(line["text"], format!("{job} {}", next[n]));
            next[n] += 1;
        }
        assert_eq!(next, [LINES, LINES]);
    }
}
