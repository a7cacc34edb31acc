//! A step's output on its way to the sinks: split into lines, workflow commands picked out,
//! everything else masked, then sent as events.
//!
//! Order matters and follows GitHub's runner: a line is first checked for a command on its raw
//! text (so `::add-mask::` takes effect before the next line is masked), then, when it is not
//! one, logged and matched against the problem matchers; only what reaches the log is masked —
//! the echo of a command, annotation texts, output lines.
//!
//! `::add-matcher::FILE` (and `::remove-matcher::FILE`) need the job's file, which only the
//! runtime reads, asynchronously, while output arrives in synchronous calls. So such a command
//! pauses the output: what comes after it is held ([`StepOutput::pending`]) until
//! [`exec_with_output`], which runs the process, has read the file and handed it back
//! ([`StepOutput::resume`]). The lines after the command are then matched with the new
//! matchers, as on GitHub, where the command takes effect before the next line is read.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use hearth_backend::{
    BackendError, CancellationToken, ContainerRun, ExecEnd, ExecSpec, JobPath, JobRuntime,
    OutputSink, Stream,
};
use tokio::sync::Notify;

use crate::commands::{Annotation, Command, CommandParser, Line as CommandLine, MatcherRef};
use crate::mask::{Line, LineSplitter, Masker};
use crate::matchers::{config, Matcher, MatcherSet, StepMatchers};
use hearth_events::{AnnotationRef, Event, EventSink, JobLabel, LogLine, StepLabel};

/// The most a problem-matcher file may hold; real ones are a few hundred bytes.
const MATCHER_FILE_LIMIT: u64 = 1024 * 1024;

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

/// A command that needs one of the job's files before the output can go on.
#[derive(Clone, Debug)]
pub(crate) struct FileRequest {
    pub path: JobPath,
    /// Adding the file's matchers (else removing its owners).
    add: bool,
    /// The command line, for GitHub's "Unable to process command" message.
    line: String,
}

/// The problem matchers a step's output goes through.
pub(crate) struct StepMatching<'a> {
    /// The job's matchers, which the step's commands change for later steps.
    pub job: &'a mut MatcherSet,
    /// The workspace as the job sees it, which matched files are made relative to.
    pub workspace: &'a str,
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
    job_matchers: &'a mut MatcherSet,
    matchers: StepMatchers,
    workspace: &'a str,
    /// A file command waiting for its file; output is held meanwhile.
    waiting: Option<FileRequest>,
    /// The stream whose splitter still holds lines after the waiting command.
    paused: Option<Stream>,
    /// Output that arrived while paused, in order.
    held: VecDeque<(Stream, Vec<u8>)>,
    /// The process has ended: the last partial lines are to be flushed, stdout then stderr.
    finishing: bool,
    finished: [bool; 2],
}

impl<'a> StepOutput<'a> {
    pub fn new(
        sink: &'a dyn EventSink,
        job: &'a JobLabel,
        step: &'a StepLabel,
        masker: &'a mut Masker,
        parser: CommandParser,
        debug: bool,
        matching: StepMatching<'a>,
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
            matchers: StepMatchers::new(matching.job),
            job_matchers: matching.job,
            workspace: matching.workspace,
            waiting: None,
            paused: None,
            held: VecDeque::new(),
            finishing: false,
            finished: [false; 2],
        }
    }

    /// The process has ended: sends what is left of both streams (a last line without a
    /// newline), unless a file command waits, in which case [`StepOutput::resume`] goes on.
    pub fn finish(&mut self) {
        self.finishing = true;
        self.pump();
    }

    /// The file command the output waits for, if any.
    pub fn pending(&self) -> Option<&FileRequest> {
        self.waiting.as_ref()
    }

    /// Applies the waiting command with what reading its file gave, then handles the output
    /// held meanwhile (which may pause again at the next file command).
    pub fn resume(&mut self, read: Result<Option<Vec<u8>>, BackendError>) {
        let Some(request) = self.waiting.take() else {
            return;
        };
        let applied = match read {
            Ok(Some(bytes)) if request.add => self.add_matchers(&bytes),
            Ok(Some(bytes)) => match config::owners(&bytes) {
                Ok(owners) => {
                    for owner in owners {
                        self.remove_matchers(&owner);
                    }
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            },
            Ok(None) => Err(format!("Could not find file '{}'.", request.path)),
            Err(e) => Err(format!("Could not read file '{}': {e}", request.path)),
        };
        if let Err(message) = applied {
            let first = format!("Unable to process command '{}' successfully.", request.line);
            self.log(LogLine::Error(&self.masked(&first)));
            self.log(LogLine::Error(&self.masked(&message)));
            self.effects.failed = true;
        }
        self.pump();
    }

    /// A file's matchers go first in the job's list, and first in this step's.
    fn add_matchers(&mut self, bytes: &[u8]) -> Result<(), String> {
        let loaded = config::load(bytes).map_err(|e| e.to_string())?;
        for unsupported in &loaded.unsupported {
            self.warning(&unsupported.to_string());
        }
        let added: Vec<Arc<Matcher>> = loaded.matchers.into_iter().map(Arc::new).collect();
        self.job_matchers.add(&added);
        for matcher in &added {
            self.matchers.add(matcher);
        }
        Ok(())
    }

    fn remove_matchers(&mut self, owner: &str) {
        self.job_matchers.remove(owner);
        self.matchers.remove(owner);
    }

    /// Handles output in order until it is all done or a file command waits.
    fn pump(&mut self) {
        while self.waiting.is_none() {
            if let Some(stream) = self.paused.take() {
                self.drain(stream);
            } else if let Some((stream, chunk)) = self.held.pop_front() {
                self.splitter(stream).push(&chunk);
                self.drain(stream);
            } else if self.finishing && !self.finished.iter().all(|f| *f) {
                let (place, stream) = if self.finished[0] {
                    (1, Stream::Stderr)
                } else {
                    (0, Stream::Stdout)
                };
                self.finished[place] = true;
                self.splitter(stream).finish();
                self.drain(stream);
            } else {
                break;
            }
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
            if self.waiting.is_some() {
                // The lines after a file command wait for its file.
                self.paused = Some(stream);
                break;
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
                self.match_line(&text);
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
        if let Some(request) = &mut self.waiting {
            request.line = text.into_owned();
        }
    }

    /// The problem matchers' annotation for an output line, after the line itself.
    fn match_line(&mut self, text: &str) {
        match self.matchers.feed(text, self.workspace) {
            Some(Ok(annotation)) => self.annotation(&annotation),
            Some(Err(why)) if self.debug => self.log(LogLine::Debug(&self.masked(&why))),
            Some(Err(_)) | None => {}
        }
    }

    /// A file command waits for its file, relative to the workspace unless absolute.
    fn wait_for(&mut self, file: &str, add: bool) {
        self.waiting = Some(FileRequest {
            path: JobPath::new(self.workspace).join(file),
            add,
            line: String::new(),
        });
    }

    fn warning(&self, message: &str) {
        self.annotation(&Annotation {
            level: hearth_events::Level::Warning,
            message: message.to_owned(),
            title: None,
            file: None,
            line: None,
            end_line: None,
            column: None,
            end_column: None,
        });
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
            Command::AddMatcher(file) => self.wait_for(&file, true),
            Command::RemoveMatcher(MatcherRef::File(file)) => self.wait_for(&file, false),
            Command::RemoveMatcher(MatcherRef::Owner(owner)) => self.remove_matchers(&owner),
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
        if self.waiting.is_some() || !self.held.is_empty() {
            self.held.push_back((stream, chunk.to_vec()));
            return;
        }
        self.splitter(stream).push(chunk);
        self.drain(stream);
        self.sink.flush();
    }
}

/// The step's output as the process sees it while file commands may be waiting: shared with
/// [`exec_with_output`], which is woken to read their files.
struct SharedOutput<'o, 'a> {
    output: &'o Mutex<StepOutput<'a>>,
    wake: &'o Notify,
}

impl OutputSink for SharedOutput<'_, '_> {
    fn output(&mut self, stream: Stream, chunk: &[u8]) {
        let mut output = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        output.output(stream, chunk);
        if output.pending().is_some() {
            self.wake.notify_one();
        }
    }
}

/// What a step runs: a process in the job, or a container of its own.
pub(crate) enum StepRun {
    Exec(ExecSpec),
    Container(ContainerRun),
}

/// Runs a step's process (or container) with its output going to `output`, reading the files
/// its problem matcher commands name through `runtime` as they come. Returns how the process
/// ended and the output, finished.
pub(crate) async fn exec_with_output<'a>(
    runtime: &dyn JobRuntime,
    run: StepRun,
    output: StepOutput<'a>,
    cancel: &CancellationToken,
) -> (Result<ExecEnd, BackendError>, StepOutput<'a>) {
    let shared = Mutex::new(output);
    let wake = Notify::new();
    let mut sink = SharedOutput {
        output: &shared,
        wake: &wake,
    };
    let ended = {
        let exec = match run {
            StepRun::Exec(spec) => runtime.exec(spec, &mut sink, cancel),
            StepRun::Container(run) => runtime.run_container(run, &mut sink, cancel),
        };
        tokio::pin!(exec);
        loop {
            tokio::select! {
                ended = &mut exec => break ended,
                () = wake.notified() => {
                    let request = lock(&shared).pending().cloned();
                    if let Some(request) = request {
                        let read = runtime.read_file(&request.path, MATCHER_FILE_LIMIT).await;
                        lock(&shared).resume(read);
                    }
                }
            }
        }
    };
    let mut output = shared.into_inner().unwrap_or_else(PoisonError::into_inner);
    output.finish();
    while let Some(request) = output.pending().cloned() {
        let read = runtime.read_file(&request.path, MATCHER_FILE_LIMIT).await;
        output.resume(read);
    }
    (ended, output)
}

fn lock<'m, 'a>(output: &'m Mutex<StepOutput<'a>>) -> std::sync::MutexGuard<'m, StepOutput<'a>> {
    output.lock().unwrap_or_else(PoisonError::into_inner)
}

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::ParserOptions;

    /// Keeps each log line as text: `output: LINE`, `error: MESSAGE @FILE:LINE`, ...
    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);

    impl EventSink for Lines {
        fn event(&self, event: &Event<'_>) {
            let Event::Log { line, .. } = event else {
                return;
            };
            let text = match line {
                LogLine::Output(text) => format!("output: {text}"),
                LogLine::Annotation(a) => format!(
                    "{:?}: {} @{}:{}",
                    a.level,
                    a.message,
                    a.file.unwrap_or("-"),
                    a.line.map_or("-".to_owned(), |l| l.to_string())
                ),
                LogLine::Error(text) => format!("runner error: {text}"),
                other => format!("{other:?}"),
            };
            self.0.lock().unwrap().push(text);
        }
    }

    impl Lines {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    const MATCHER: &[u8] = br#"{"problemMatcher": [{"owner": "m", "pattern": [
        {"regexp": "^(\\S+):(\\d+): (.*)$", "file": 1, "line": 2, "message": 3}]}]}"#;

    struct Fixture {
        sink: Lines,
        job: JobLabel,
        step: StepLabel,
        masker: Masker,
        matchers: MatcherSet,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                sink: Lines::default(),
                job: JobLabel {
                    id: "j".into(),
                    name: "j".into(),
                },
                step: StepLabel {
                    index: 0,
                    id: None,
                    name: "s".into(),
                },
                masker: Masker::new(),
                matchers: MatcherSet::default(),
            }
        }

        fn output(&mut self) -> StepOutput<'_> {
            StepOutput::new(
                &self.sink,
                &self.job,
                &self.step,
                &mut self.masker,
                CommandParser::new(ParserOptions::default()),
                false,
                StepMatching {
                    job: &mut self.matchers,
                    workspace: "/ws",
                },
            )
        }
    }

    #[test]
    fn output_after_add_matcher_waits_for_the_file_then_is_matched_in_order() {
        let mut fixture = Fixture::new();
        let mut output = fixture.output();
        output.output(
            Stream::Stdout,
            b"before.c:1: not yet\n::add-matcher::m.json\na.c:2: same chunk\nb.c:",
        );
        assert_eq!(
            output.pending().map(|r| r.path.as_str()),
            Some("/ws/m.json")
        );
        output.output(Stream::Stderr, b"err.c:3: from stderr\n");
        output.output(Stream::Stdout, b"4: rest of a line\n");
        output.resume(Ok(Some(MATCHER.to_vec())));
        assert!(output.pending().is_none());
        output.finish();
        assert!(!output.effects.failed);
        drop(output);
        assert_eq!(
            fixture.sink.take(),
            [
                "output: before.c:1: not yet",
                "output: a.c:2: same chunk",
                "Error: same chunk @a.c:2",
                "output: err.c:3: from stderr",
                "Error: from stderr @err.c:3",
                "output: b.c:4: rest of a line",
                "Error: rest of a line @b.c:4",
            ]
        );
        // The job keeps the matcher for its next steps.
        assert_eq!(fixture.matchers.owners().collect::<Vec<_>>(), ["m"]);
    }

    #[test]
    fn a_command_on_the_last_line_is_applied_before_the_output_ends() {
        let mut fixture = Fixture::new();
        let mut output = fixture.output();
        output.output(Stream::Stdout, b"::add-matcher::/abs/m.json");
        output.output(Stream::Stderr, b"x.c:5: unterminated");
        output.finish();
        assert_eq!(
            output.pending().map(|r| r.path.as_str()),
            Some("/abs/m.json")
        );
        output.resume(Ok(Some(MATCHER.to_vec())));
        assert!(output.pending().is_none());
        drop(output);
        assert_eq!(
            fixture.sink.take(),
            ["output: x.c:5: unterminated", "Error: unterminated @x.c:5"]
        );
    }

    #[test]
    fn a_missing_or_invalid_file_fails_the_step_as_on_github() {
        let mut fixture = Fixture::new();
        let mut output = fixture.output();
        output.output(Stream::Stdout, b"::add-matcher::gone.json\n");
        output.resume(Ok(None));
        output.output(Stream::Stdout, b"::add-matcher::bad.json\n");
        output.resume(Ok(Some(b"{\"problemMatcher\": [{}]}".to_vec())));
        output.finish();
        assert!(output.effects.failed);
        drop(output);
        assert_eq!(
            fixture.sink.take(),
            [
                "runner error: Unable to process command '::add-matcher::gone.json' successfully.",
                "runner error: Could not find file '/ws/gone.json'.",
                "runner error: Unable to process command '::add-matcher::bad.json' successfully.",
                "runner error: Owner must not be empty",
            ]
        );
        assert!(fixture.matchers.is_empty());
    }

    #[test]
    fn an_unsupported_pattern_is_a_warning_and_the_step_goes_on() {
        let mut fixture = Fixture::new();
        let mut output = fixture.output();
        output.output(Stream::Stdout, b"::add-matcher::m.json\nback(ref): x\n");
        output.resume(Ok(Some(
            br#"{"problemMatcher": [{"owner": "b", "pattern": [
                {"regexp": "^(\\w+)\\(\\1\\): (.*)$", "message": 2}]}]}"#
                .to_vec(),
        )));
        output.finish();
        assert!(!output.effects.failed);
        drop(output);
        let lines = fixture.sink.take();
        assert!(
            lines[0].starts_with("Warning: Problem matcher 'b' is ignored"),
            "{lines:?}"
        );
        assert_eq!(lines[1..], ["output: back(ref): x"]);
        assert!(fixture.matchers.is_empty());
    }

    #[test]
    fn remove_matcher_by_file_drops_its_owners() {
        let mut fixture = Fixture::new();
        let mut output = fixture.output();
        output.output(Stream::Stdout, b"::add-matcher::m.json\n");
        output.resume(Ok(Some(MATCHER.to_vec())));
        output.output(
            Stream::Stdout,
            b"::remove-matcher::m.json\na.c:1: unmatched\n",
        );
        output.resume(Ok(Some(MATCHER.to_vec())));
        output.finish();
        drop(output);
        assert_eq!(fixture.sink.take(), ["output: a.c:1: unmatched"]);
        assert!(fixture.matchers.is_empty());
    }
}
