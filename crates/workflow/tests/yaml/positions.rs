use hearth_workflow::yaml::{Node, Pos, ScalarStyle};

use super::{field, load_ok};

/// 1-based position of the first `needle` on 1-based `line` of `source`,
/// counted in characters.
fn pos_of(source: &str, line: usize, needle: &str) -> Pos {
    let text = source
        .lines()
        .nth(line - 1)
        .unwrap_or_else(|| panic!("no line {line}"));
    let byte = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not on line {line}: {text:?}"));
    Pos::new(line, text[..byte].chars().count() + 1)
}

fn entry<'a>(node: &'a Node, key: &str) -> (&'a Node, &'a Node) {
    node.entry(key)
        .unwrap_or_else(|| panic!("no key {key:?} in {node:?}"))
}

const WORKFLOW: &str = "\
on:
  push:
    branches: [main, 'release/*']
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo hi
          echo there
      - uses: actions/checkout@v4
        with: {fetch-depth: 0, ref: \"x\"}
";

#[test]
fn block_mapping_keys_and_values_have_their_positions() {
    let root = load_ok(WORKFLOW);
    assert_eq!(root.span.start, Pos::new(1, 1));

    let (on_key, on) = entry(&root, "on");
    assert_eq!(on_key.span.start, Pos::new(1, 1));
    assert_eq!(on_key.span.end, Pos::new(1, 3));
    let (push_key, push) = entry(on, "push");
    assert_eq!(push_key.span.start, pos_of(WORKFLOW, 2, "push"));
    assert_eq!(push.span.start, pos_of(WORKFLOW, 3, "branches"));

    let (jobs_key, jobs) = entry(&root, "jobs");
    assert_eq!(jobs_key.span.start, Pos::new(4, 1));
    let build = field(jobs, "build");
    let (runs_on_key, runs_on) = entry(build, "runs-on");
    assert_eq!(runs_on_key.span.start, pos_of(WORKFLOW, 6, "runs-on"));
    assert_eq!(runs_on.span.start, pos_of(WORKFLOW, 6, "ubuntu"));
    assert_eq!(runs_on.span.end, Pos::new(6, 27));
}

#[test]
fn flow_collection_items_have_their_positions() {
    let root = load_ok(WORKFLOW);
    let branches = field(field(field(&root, "on"), "push"), "branches");
    assert_eq!(branches.span.start, pos_of(WORKFLOW, 3, "["));
    // The flow sequence ends just past its closing bracket.
    let close = pos_of(WORKFLOW, 3, "]");
    assert_eq!(branches.span.end, Pos::new(3, close.col + 1));
    let items = branches.as_sequence().expect("sequence");
    assert_eq!(items[0].span.start, pos_of(WORKFLOW, 3, "main"));
    assert_eq!(items[1].span.start, pos_of(WORKFLOW, 3, "'release"));
    assert_eq!(items[1].style, Some(ScalarStyle::SingleQuoted));

    let steps = field(field(field(&root, "jobs"), "build"), "steps");
    let checkout = &steps.as_sequence().expect("steps")[1];
    let (with_key, with) = entry(checkout, "with");
    assert_eq!(with_key.span.start, pos_of(WORKFLOW, 12, "with"));
    assert_eq!(with.span.start, pos_of(WORKFLOW, 12, "{"));
    let (depth_key, depth) = entry(with, "fetch-depth");
    assert_eq!(depth_key.span.start, pos_of(WORKFLOW, 12, "fetch-depth"));
    assert_eq!(depth.span.start, pos_of(WORKFLOW, 12, "0"));
    let (ref_key, reference) = entry(with, "ref");
    assert_eq!(ref_key.span.start, pos_of(WORKFLOW, 12, "ref"));
    assert_eq!(reference.span.start, pos_of(WORKFLOW, 12, "\"x\""));
}

#[test]
fn block_scalars_start_at_their_first_content_line() {
    let root = load_ok(WORKFLOW);
    let steps = field(field(field(&root, "jobs"), "build"), "steps");
    let first = &steps.as_sequence().expect("steps")[0];
    assert_eq!(first.span.start, pos_of(WORKFLOW, 8, "run"));
    let (run_key, run) = entry(first, "run");
    assert_eq!(run_key.span.start, pos_of(WORKFLOW, 8, "run"));
    assert_eq!(run.as_str(), Some("echo hi\necho there\n"));
    assert_eq!(run.style, Some(ScalarStyle::Literal));
    // The span covers the content, so later layers can map offsets inside
    // a script back to the file.
    assert_eq!(run.span.start, pos_of(WORKFLOW, 9, "echo"));
    assert_eq!(run.span.end.line, 11);
}

#[test]
fn block_collections_end_at_their_last_value() {
    let root = load_ok(WORKFLOW);
    let on = field(&root, "on");
    let branches_end = field(field(on, "push"), "branches").span.end;
    assert_eq!(on.span.end, branches_end);
    let source = "a:\n  - x\n  - yz\n\nb: 1\n";
    let root = load_ok(source);
    assert_eq!(field(&root, "a").span.start, Pos::new(2, 3));
    assert_eq!(field(&root, "a").span.end, Pos::new(3, 7));
    assert_eq!(root.span.end, Pos::new(5, 5));
}

#[test]
fn columns_count_characters_not_bytes() {
    let source = "ü: 1\nkey: [ä, b]\n";
    let root = load_ok(source);
    let items = field(&root, "key").as_sequence().expect("sequence");
    assert_eq!(items[1].span.start, Pos::new(2, 10));
}

#[test]
fn crlf_line_endings_count_as_one_line_break() {
    let root = load_ok("a: 1\r\nb: 2\r\n");
    let (b_key, b) = entry(&root, "b");
    assert_eq!(b_key.span.start, Pos::new(2, 1));
    assert_eq!(b.span.start, Pos::new(2, 4));
}

#[test]
fn empty_values_are_null_at_the_key() {
    let root = load_ok("a:\nb: 1\n");
    let (key, value) = entry(&root, "a");
    assert!(value.is_null());
    assert_eq!(key.span.start, Pos::new(1, 1));
    assert_eq!(value.span.start.line, 1);
    assert_eq!(value.span.start, value.span.end);
}

#[test]
fn empty_and_comment_only_documents_are_null() {
    for source in ["", "# just a comment\n", "---\n", "---\n...\n", "\n\n"] {
        let root = load_ok(source);
        assert!(root.is_null(), "{source:?} gave {root:?}");
    }
    assert_eq!(load_ok("").span.start, Pos::new(1, 1));
}

#[test]
fn explicit_document_markers_are_allowed_around_one_document() {
    let root = load_ok("---\na: 1\n...\n");
    assert_eq!(entry(&root, "a").0.span.start, Pos::new(2, 1));
}
