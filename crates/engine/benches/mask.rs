//! Masking throughput: 200,000 lines of about 80 characters with 50 secrets registered (each with
//! its encoded forms), one line in twenty holding a secret in some form.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hearth_engine::mask::{LineSplitter, Masker};

const LINES: usize = 200_000;
const SECRETS: usize = 50;
const CHUNK: usize = 64 * 1024;

/// xorshift64: the same data on every run without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick(&mut self, alphabet: &[u8]) -> u8 {
        alphabet[self.below(alphabet.len())]
    }
}

fn data() -> (Masker, Vec<u8>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let secrets: Vec<String> = (0..SECRETS)
        .map(|i| {
            let len = 16 + rng.below(25);
            let mut s: String = (0..len).map(|_| rng.pick(alnum) as char).collect();
            if i % 5 == 0 {
                s.push_str("/+=\"&");
            }
            s
        })
        .collect();
    let mut masker = Masker::new();
    for s in &secrets {
        masker.add(s);
    }

    let words = b"abcdefghijklmnopqrstuvwxyz      ....,,::==--0123456789ABCDEFGHIJ[]()/";
    let mut text = Vec::with_capacity(LINES * 82);
    for i in 0..LINES {
        let start = text.len();
        if i % 20 == 0 {
            let secret = &secrets[rng.below(SECRETS)];
            text.extend_from_slice(b"token: ");
            match rng.below(3) {
                0 => text.extend_from_slice(secret.as_bytes()),
                1 => text.extend_from_slice(STANDARD.encode(format!("user:{secret}")).as_bytes()),
                _ => text.extend_from_slice(format!("\"{secret}\"").as_bytes()),
            }
            text.push(b' ');
        }
        let len = 70 + rng.below(20);
        while text.len() - start < len {
            text.push(rng.pick(words));
        }
        text.push(b'\n');
    }
    (masker, text)
}

fn mask(c: &mut Criterion) {
    let (masker, text) = data();
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    // Build the automaton outside the measurement.
    assert_eq!(&masker.mask(b"x")[..], b"x");
    eprintln!(
        "{} bytes, {} lines, {} patterns of {} bytes, longest {}",
        text.len(),
        lines.len(),
        masker.patterns().count(),
        masker.patterns().map(<[u8]>::len).sum::<usize>(),
        masker.longest()
    );

    let mut group = c.benchmark_group("mask");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("lines", |b| {
        b.iter(|| {
            let mut masked = 0;
            for line in &lines {
                masked += masker.mask(black_box(line)).len();
            }
            masked
        })
    });
    group.bench_function("stream", |b| {
        b.iter(|| {
            let mut splitter = LineSplitter::new();
            let mut masked = 0;
            for chunk in text.chunks(CHUNK) {
                splitter.push(black_box(chunk));
                while let Some(line) = splitter.next_line(&masker) {
                    masked += line.masked(&masker).len();
                }
            }
            splitter.finish();
            while let Some(line) = splitter.next_line(&masker) {
                masked += line.masked(&masker).len();
            }
            masked
        })
    });
    group.finish();
}

criterion_group!(benches, mask);
criterion_main!(benches);
