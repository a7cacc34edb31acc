//! Sink throughput: 200,000 output lines of 80 characters (16 MB) into `io::sink()`, flushed
//! every 64 KiB of input as the engine flushes after each chunk a process writes.
//!
//! - `console`: the console sink alone (target for the whole path: ≥ 100 MB/s).
//! - `mask+console`: the same text streamed through the engine's `LineSplitter` and `Masker`
//!   (20 secrets, one line in twenty holding one) and then the console: the end-to-end path
//!   of a step's output.
//! - `json`: the `--json` sink alone.

use std::hint::black_box;
use std::io;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hearth_engine::mask::{LineSplitter, Masker};
use hearth_events::{Event, EventSink, JobLabel, LogLine, StepLabel};
use hearth_runner::exec::{console, json};

const LINES: usize = 200_000;
const LINE_LEN: usize = 80;
const SECRETS: usize = 20;
const CHUNK: usize = 64 * 1024;

/// 200,000 lines of 80 printable characters, every twentieth holding a secret; the same on
/// every run (xorshift64).
fn data() -> (Vec<String>, String) {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"abcdefghijklmnopqrstuvwxyz    ..,,::==--0123456789ABCDEFGHIJ[]()/";
    let mut pick = || alphabet[(next() % alphabet.len() as u64) as usize] as char;
    let secrets: Vec<String> = (0..SECRETS)
        .map(|i| {
            format!(
                "s3cr3t-{i:02}-{}",
                (0..12).map(|_| pick()).collect::<String>()
            )
        })
        .collect();
    let mut text = String::with_capacity(LINES * (LINE_LEN + 1));
    for i in 0..LINES {
        let start = text.len();
        if i % 20 == 0 {
            text.push_str("token: ");
            text.push_str(&secrets[i / 20 % SECRETS]);
            text.push(' ');
        }
        while text.len() - start < LINE_LEN {
            text.push(pick());
        }
        text.push('\n');
    }
    (secrets, text)
}

fn labels() -> (JobLabel, StepLabel) {
    let job = JobLabel {
        id: "build".into(),
        name: "build (ubuntu-latest, 20)".into(),
    };
    let step = StepLabel {
        index: 2,
        id: Some("test".into()),
        name: "Run make test".into(),
    };
    (job, step)
}

/// Sends the lines of `text` as output events, flushing after each 64 KiB of input.
fn send_lines(sink: &dyn EventSink, job: &JobLabel, step: &StepLabel, text: &str) {
    let mut since_flush = 0;
    for line in text.lines() {
        sink.event(&Event::Log {
            job,
            step: Some(step),
            line: LogLine::Output(black_box(line)),
        });
        since_flush += line.len() + 1;
        if since_flush >= CHUNK {
            sink.flush();
            since_flush = 0;
        }
    }
    sink.flush();
}

/// What a step's output goes through: 64 KiB chunks split into lines, masked, sent.
fn mask_and_send(
    sink: &dyn EventSink,
    masker: &Masker,
    job: &JobLabel,
    step: &StepLabel,
    text: &str,
) {
    let mut splitter = LineSplitter::new();
    let send = |splitter: &mut LineSplitter| {
        while let Some(line) = splitter.next_line(masker) {
            let masked = line.masked(masker);
            let text = String::from_utf8_lossy(&masked);
            sink.event(&Event::Log {
                job,
                step: Some(step),
                line: LogLine::Output(&text),
            });
        }
        sink.flush();
    };
    for chunk in text.as_bytes().chunks(CHUNK) {
        splitter.push(black_box(chunk));
        send(&mut splitter);
    }
    splitter.finish();
    send(&mut splitter);
}

fn sinks(c: &mut Criterion) {
    let (secrets, text) = data();
    let (job, step) = labels();
    let mut masker = Masker::new();
    for secret in &secrets {
        masker.add(secret);
    }

    let mut group = c.benchmark_group("sink");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("console", |b| {
        b.iter(|| {
            let sink = console::Console::new(io::sink(), false);
            send_lines(&sink, &job, &step, &text);
        })
    });
    group.bench_function("console, coloured", |b| {
        b.iter(|| {
            let sink = console::Console::new(io::sink(), true);
            send_lines(&sink, &job, &step, &text);
        })
    });
    group.bench_function("mask+console", |b| {
        b.iter(|| {
            let sink = console::Console::new(io::sink(), false);
            mask_and_send(&sink, &masker, &job, &step, &text);
        })
    });
    group.bench_function("json", |b| {
        b.iter(|| {
            let sink = json::JsonLines::new(io::sink());
            send_lines(&sink, &job, &step, &text);
        })
    });
    group.finish();
}

criterion_group!(benches, sinks);
criterion_main!(benches);
