//! Fuzzing the whole load path: whatever bytes a workflow file holds, loading it (and, when it
//! loads, planning it) returns a value or diagnostics and never panics.
//!
//! Inputs are arbitrary bytes and, more usefully, every file of the test corpus mutated at
//! random: YAML's significant characters inserted, ranges deleted or repeated, lines
//! re-indented. Mutating real workflows reaches deep into the model and the planner, which
//! random bytes alone rarely do. `HEARTH_FUZZ_CASES` sets the number of cases per property
//! (default 1,500, which keeps the suite fast; raise it for a long fuzzing run).

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use hearth_workflow::model::{Action, Workflow};
use hearth_workflow::plan::{self, RunContext};
use proptest::prelude::*;

fn corpus() -> &'static Vec<Vec<u8>> {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let mut files = Vec::new();
        for folder in [
            "workflows",
            "invalid",
            "plans",
            "actions",
            "invalid-actions",
        ] {
            let Ok(entries) = fs::read_dir(data.join(folder)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                    files.push(fs::read(&path).expect("read corpus file"));
                }
            }
        }
        assert!(files.len() > 100, "corpus too small: {}", files.len());
        files
    })
}

fn cases() -> u32 {
    std::env::var("HEARTH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500)
}

/// Loads `bytes` as the CLI does (text must be UTF-8) and plans what loads.
fn load_everything(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(workflow) = Workflow::parse(text, "fuzz.yml") {
        let _ = plan::plan(&workflow, "fuzz.yml", &RunContext::default());
        let _ = workflow.on.filters();
    }
    let _ = Action::parse(text, "action.yml");
}

/// Pieces that change YAML's structure or the expression language's.
const TOKENS: &[&str] = &[
    ":",
    ": ",
    "-",
    "- ",
    "\n",
    "\n  ",
    "  ",
    "\t",
    "{",
    "}",
    "[",
    "]",
    ",",
    "'",
    "\"",
    "|",
    ">",
    "&a ",
    "*a",
    "<<: *a",
    "!!str ",
    "? ",
    "#",
    "${{",
    "}}",
    "${{ matrix.x }}",
    "${{ needs.a.outputs.m }}",
    "${{ fromJSON('[1,2]') }}",
    "needs: ",
    "strategy:\n  matrix:\n    x: [1, 2]\n",
    "null",
    "~",
    "true",
    "1e309",
    "0x",
    "\u{feff}",
    "\u{2028}",
    "%YAML 1.2\n",
    "---\n",
    "...\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert { at: usize, token: usize },
    Delete { at: usize, len: usize },
    Repeat { at: usize, len: usize },
    Byte { at: usize, byte: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        2 => (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (any::<usize>(), 1usize..200).prop_map(|(at, len)| Mutation::Repeat { at, len }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Byte { at, byte }),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let pos = |at: usize| if len == 0 { 0 } else { at % (len + 1) };
        match *m {
            Mutation::Insert { at, token } => {
                let at = pos(at);
                bytes.splice(at..at, TOKENS[token].bytes());
            }
            Mutation::Delete { at, len: n } => {
                let at = pos(at);
                let end = (at + n).min(len);
                bytes.drain(at..end);
            }
            Mutation::Repeat { at, len: n } => {
                let at = pos(at);
                let end = (at + n).min(len);
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            Mutation::Byte { at, byte } => {
                if len > 0 {
                    bytes[at % len] = byte;
                }
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        load_everything(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        load_everything(text.as_bytes());
    }

    #[test]
    fn mutated_corpus_files_never_panic(
        file in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let corpus = corpus();
        let original = corpus[file.index(corpus.len())].clone();
        load_everything(&apply(original, &mutations));
    }
}

/// Every corpus file whole, and each with every single line removed: structural damage at
/// each place once, deterministically.
#[test]
fn corpus_files_with_any_one_line_removed_never_panic() {
    for file in corpus() {
        load_everything(file);
        let lines: Vec<&[u8]> = file.split(|&b| b == b'\n').collect();
        for skip in 0..lines.len() {
            let damaged: Vec<u8> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .flat_map(|(_, line)| line.iter().copied().chain([b'\n']))
                .collect();
            load_everything(&damaged);
        }
    }
}
