//! A step's output on its way to the sinks: split into lines, workflow commands picked out,
//! everything else masked, then sent as events.
//!
//! Order matters and follows GitHub's runner: a line is first checked for a command on its raw
//! text (so `::add-mask::` takes effect before the next line is masked), and only what reaches
//! the log is masked — the echo of a command, annotation texts, output lines.

use std::borrow::Cow;

use hearth_backend::{OutputSink, Stream};

use crate::commands::{Annotation, Command, CommandParser, Line as CommandLine};
use crate::mask::{Line, LineSplitter, Masker};
use hearth_events::{AnnotationRef, Event, EventSink, JobLabel, LogLine, StepLabel};

/// What a step's workflow commands asked for, applied by the job when the step ends.
#[derive(Debug, Default)]
pub(crate) struct CommandEffects {
    /// `::set-output` (legacy), in order.
    pub outputs: Vec<(String, String)>,
    /// `::save-state` (legacy), in order.
    pub state: Vec<(String, String)>,
    /// `::set-env` (only with unsecure commands allowed).
    pub env: Vec<(String, String)>,
    /// `::add-path` (only with unsecure commands allowed).
    pub paths: Vec<String>,
    /// A command was refused: GitHub fails the step when it ends.
    pub failed: bool,
}

/// Receives a step's output from the backend.
pub(crate) struct StepOutput<'a> {
    pub sink: &'a dyn EventSink,
    pub job: &'a JobLabel,
    pub step: &'a StepLabel,
    pub masker: &'a mut Masker,
    pub parser: CommandParser,
    /// `::debug::` lines are shown (`ACTIONS_STEP_DEBUG`).
    pub debug: bool,
    pub effects: CommandEffects,
    stdout: LineSplitter,
    stderr: LineSplitter,
}

impl<'a> StepOutput<'a> {
    pub fn new(
        sink: &'a dyn EventSink,
        job: &'a JobLabel,
        step: &'a StepLabel,
        masker: &'a mut Masker,
        parser: CommandParser,
        debug: bool,
    ) -> Self {
        StepOutput {
            sink,
            job,
            step,
            masker,
            parser,
            debug,
            effects: CommandEffects::default(),
            stdout: LineSplitter::new(),
            stderr: LineSplitter::new(),
        }
    }

    /// Sends what is left of both streams: a last line without a newline.
    pub fn finish(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.splitter(stream).finish();
            self.drain(stream);
        }
        self.sink.flush();
    }

    fn splitter(&mut self, stream: Stream) -> &mut LineSplitter {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    fn drain(&mut self, stream: Stream) {
        // The splitter is taken out while its lines are handled, so that a command can change
        // the masker between one line and the next.
        let mut splitter = std::mem::take(self.splitter(stream));
        while let Some(line) = splitter.next_line(self.masker) {
            match line {
                Line::Whole(raw) => self.whole_line(raw),
                Line::Piece { masked, .. } => self.log(LogLine::Output(&lossy(&masked))),
            }
        }
        *self.splitter(stream) = splitter;
    }

    fn log(&self, line: LogLine<'_>) {
        self.sink.event(&Event::Log {
            job: self.job,
            step: Some(self.step),
            line,
        });
    }

    /// Masks `text` for the log.
    fn masked<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match self.masker.mask(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }

    fn whole_line(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let processed = match self.parser.feed(&text) {
            CommandLine::Output => {
                let masked = self.masker.mask(raw);
                self.log(LogLine::Output(&lossy(&masked)));
                return;
            }
            CommandLine::Command(processed) => processed,
        };
        // A mask is registered before its line is echoed, so the echo cannot show the value.
        if let Ok(Command::AddMask(value)) = &processed.outcome {
            self.masker.add(value);
        }
        if let Ok(Command::StopCommands { token, mask: true }) = &processed.outcome {
            self.masker.add(token);
        }
        if let Some(echo) = &processed.echo {
            self.log(LogLine::Echo(&self.masked(echo)));
        }
        if let Some(warning) = &processed.deprecation {
            self.log(LogLine::Warning(&self.masked(warning)));
        }
        match processed.outcome {
            Ok(command) => self.apply(command),
            Err(error) => {
                if let Some(first) = error.unable_to_process(&text) {
                    self.log(LogLine::Error(&self.masked(&first)));
                }
                self.log(LogLine::Error(&self.masked(&error.to_string())));
                self.effects.failed = true;
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::AddMask(_)
            | Command::Echo(_)
            | Command::StopCommands { .. }
            | Command::ResumeCommands { .. } => {}
            Command::Group(title) => self.log(LogLine::Group(&self.masked(&title))),
            Command::EndGroup => self.log(LogLine::EndGroup),
            Command::Annotation(annotation) => self.annotation(&annotation),
            Command::Debug(message) => {
                if self.debug {
                    self.log(LogLine::Debug(&self.masked(&message)));
                }
            }
            Command::SetOutput { name, value } => self.effects.outputs.push((name, value)),
            Command::SaveState { name, value } => self.effects.state.push((name, value)),
            Command::SetEnv { name, value } => self.effects.env.push((name, value)),
            Command::AddPath(path) => self.effects.paths.push(path),
            Command::AddMatcher(_) | Command::RemoveMatcher(_) => {
                if self.debug {
                    self.log(LogLine::Debug(
                        "problem matchers are not supported; ignored",
                    ));
                }
            }
            Command::Ignored(issue) => self.annotation(&Annotation {
                level: issue.level,
                message: issue.message,
                title: None,
                file: None,
                line: None,
                end_line: None,
                column: None,
                end_column: None,
            }),
        }
    }

    fn annotation(&self, annotation: &Annotation) {
        let message = self.masked(&annotation.message);
        let title = annotation.title.as_deref().map(|t| self.masked(t));
        let file = annotation.file.as_deref().map(|f| self.masked(f));
        self.log(LogLine::Annotation(AnnotationRef {
            level: annotation.level,
            message: &message,
            title: title.as_deref(),
            file: file.as_deref(),
            line: annotation.line,
            end_line: annotation.end_line,
            column: annotation.column,
            end_column: annotation.end_column,
        }));
    }
}

impl OutputSink for StepOutput<'_> {
    fn output(&mut self, stream: Stream, chunk: &[u8]) {
        self.splitter(stream).push(chunk);
        self.drain(stream);
        self.sink.flush();
    }
}

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}
