//! The masker as the engine uses it: raw chunks in, masked lines out.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hearth_engine::mask::{add_mask_value, Line, LineSplitter, Masker, DEFAULT_CAP};
use proptest::prelude::*;

/// One output line: the whole line masked, or its pieces joined.
type Out = Vec<Vec<u8>>;

/// Drains the splitter, masking as the engine does (without command handling); pieces of one line
/// are joined. Returns how many pieces came out.
fn drain(
    splitter: &mut LineSplitter,
    masker: &Masker,
    out: &mut Out,
    open: &mut Option<Vec<u8>>,
) -> usize {
    let mut pieces = 0;
    while let Some(line) = splitter.next_line(masker) {
        match line {
            Line::Whole(raw) => {
                assert!(open.is_none(), "a whole line inside a split one");
                out.push(masker.mask(raw).into_owned());
            }
            Line::Piece { masked, last } => {
                pieces += 1;
                open.get_or_insert_with(Vec::new).extend_from_slice(&masked);
                if last {
                    out.extend(open.take());
                }
            }
        }
    }
    pieces
}

fn run(masker: &Masker, cap: usize, chunks: &[&[u8]]) -> Out {
    let mut splitter = LineSplitter::with_cap(cap);
    let mut out = Vec::new();
    let mut open = None;
    for chunk in chunks {
        splitter.push(chunk);
        drain(&mut splitter, masker, &mut out, &mut open);
    }
    splitter.finish();
    drain(&mut splitter, masker, &mut out, &mut open);
    assert!(open.is_none(), "a split line never ended");
    out
}

fn lines(out: &Out) -> Vec<String> {
    out.iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

fn masker(values: &[&str]) -> Masker {
    let mut m = Masker::new();
    for v in values {
        m.add(v);
    }
    m
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn masker_is_shareable() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Masker>();
    shareable::<LineSplitter>();
}

#[test]
fn secret_split_between_two_writes_at_every_position() {
    let m = masker(&["s3cr3t-t0ken"]);
    let text = b"token=s3cr3t-t0ken; again s3cr3t-t0ken\n";
    for i in 0..=text.len() {
        for j in i..=text.len() {
            let out = run(&m, DEFAULT_CAP, &[&text[..i], &text[i..j], &text[j..]]);
            assert_eq!(lines(&out), ["token=***; again ***"], "split at {i}, {j}");
        }
    }
}

#[test]
fn multi_line_secret_is_masked_line_by_line() {
    let key = "-----BEGIN KEY-----\nMIIEpAIBAAKCAQEA\n   \nx\n-----END KEY-----\n";
    let m = masker(&[key]);
    let printed = format!("{key}  MIIEpAIBAAKCAQEA  \n");
    let out = run(&m, DEFAULT_CAP, &[printed.as_bytes()]);
    // Every line of the secret, even a one-character one (as on GitHub); the blank line was not
    // registered, so it prints as it is.
    assert_eq!(lines(&out), ["***", "***", "   ", "***", "***", "  ***  "]);
    // The whole value, escaped onto one line, is masked whole.
    let json = serde_json::to_string(&serde_json::json!({ "key": key })).unwrap();
    assert_eq!(
        lines(&run(&m, DEFAULT_CAP, &[json.as_bytes()])),
        ["{\"key\":\"***\"}"]
    );
}

#[test]
fn blank_values_are_ignored() {
    let mut m = Masker::new();
    m.add("");
    m.add("  \t ");
    m.add("\r\n \n");
    assert!(m.is_empty());
    assert_eq!(m.longest(), 0);
    assert_eq!(lines(&run(&m, DEFAULT_CAP, &[b"  \t \n"])), ["  \t "]);
}

#[test]
fn base64_at_every_offset_inside_longer_base64() {
    let secret = "hunter2-is-my-password";
    let m = masker(&[secret]);
    let n = secret.len();
    for prefix in ["", "u", "us", "use", "user:", "admin:"] {
        for suffix in ["", "\n", "@", ":x", "-and-more"] {
            let encoded = STANDARD.encode(format!("{prefix}{secret}{suffix}"));
            let out = m.mask(encoded.as_bytes()).into_owned();
            let out = String::from_utf8(out).unwrap();
            let (left, right) = out
                .split_once("***")
                .unwrap_or_else(|| panic!("not masked: {out}"));
            assert!(!right.contains("***"), "{out}");
            let p = prefix.len();
            // Visible on the left: only characters holding bits of the prefix.
            assert_eq!(
                left.len(),
                (8 * p).div_ceil(6),
                "{prefix:?} {suffix:?} -> {out}"
            );
            // On the right: at most the characters holding bits of the suffix (and padding).
            assert!(
                right.len() <= encoded.len() - 8 * (p + n) / 6,
                "{prefix:?} {suffix:?} -> {out}"
            );
            assert_eq!(&encoded[encoded.len() - right.len()..], right);
        }
    }
}

#[test]
fn url_encoded_secret() {
    let m = masker(&["p@ss w/rd+ü"]);
    let line = b"curl https://example.invalid/?token=p%40ss%20w%2Frd%2B%C3%BC&x=1";
    assert_eq!(
        lines(&run(&m, DEFAULT_CAP, &[line])),
        ["curl https://example.invalid/?token=***&x=1"]
    );
}

#[test]
fn json_escaped_secret() {
    let m = masker(&["pa\"ss\\wo\trd"]);
    let line = br#"{"token":"pa\"ss\\wo\trd","n":1}"#;
    assert_eq!(
        lines(&run(&m, DEFAULT_CAP, &[line])),
        [r#"{"token":"***","n":1}"#]
    );
}

#[test]
fn value_added_later_masks_from_then_on() {
    let mut m = Masker::new();
    let mut splitter = LineSplitter::new();
    let mut out: Vec<String> = Vec::new();
    // One write holding the value before, the command, and the value after: the command takes
    // effect for the very next line, as on GitHub.
    splitter.push(b"early v4lue-42\n::add-mask::v4lue-42\nlate v4lue-42\n");
    while let Some(line) = splitter.next_line(&m) {
        match line {
            Line::Whole(raw) => match add_mask_value(raw) {
                Some(value) => m.add(value),
                None => out.push(String::from_utf8_lossy(&m.mask(raw)).into_owned()),
            },
            Line::Piece { .. } => unreachable!("short lines"),
        }
    }
    splitter.push(b"later still v4lue-42 ");
    splitter.push(b"and djRsdWUtNDI= (base64)\n");
    while let Some(line) = splitter.next_line(&m) {
        out.push(String::from_utf8_lossy(&line.masked(&m)).into_owned());
    }
    assert_eq!(
        out,
        [
            "early v4lue-42",
            "late ***",
            "later still *** and *** (base64)"
        ]
    );
}

#[test]
fn overlapping_adjacent_and_nested_secrets() {
    let m = masker(&["abc", "bcd"]);
    assert_eq!(&m.mask(b"xabcdx")[..], b"x***x");
    assert_eq!(&m.mask(b"abcbcd")[..], b"***");
    assert_eq!(&m.mask(b"ab cd")[..], b"ab cd");
    let m = masker(&["secret", "secretlonger", "cretlo"]);
    assert_eq!(&m.mask(b"my secretlonger!")[..], b"my ***!");
    assert_eq!(&m.mask(b"secret secretlo")[..], b"*** ***");
    let m = masker(&["aa"]);
    assert_eq!(&m.mask(b"baaaab")[..], b"b***b");
}

#[test]
fn secret_at_line_start_and_end() {
    let m = masker(&["tok3n!"]);
    let out = run(&m, DEFAULT_CAP, &[b"tok3n! middle tok3n!\ntok3n!\ntok3n!"]);
    assert_eq!(lines(&out), ["*** middle ***", "***", "***"]);
}

#[test]
fn crlf_and_lone_cr_end_lines() {
    let m = masker(&["tok3n!"]);
    // `\r\n` split between writes is one terminator; a lone `\r` ends a line, as .NET's ReadLine.
    let out = run(
        &m,
        DEFAULT_CAP,
        &[b"a tok3n!\r\nb\r", b"\nc\rd tok3n!\r", b"\r\n\n", b"e"],
    );
    assert_eq!(lines(&out), ["a ***", "b", "c", "d ***", "", "", "e"]);
    let out = run(&m, DEFAULT_CAP, &[b"x\r"]);
    assert_eq!(lines(&out), ["x"]);
}

#[test]
fn invalid_utf8_around_a_secret() {
    let m = masker(&["tok3n!"]);
    let out = run(
        &m,
        DEFAULT_CAP,
        &[b"\xff\xfetok3n!\xc3", b"\x28tok3n!\x80\n"],
    );
    assert_eq!(out, [b"\xff\xfe***\xc3\x28***\x80".to_vec()]);
    // A secret that is not UTF-8 itself.
    let mut m = Masker::new();
    m.add(b"\xffsecret\xfe");
    assert_eq!(&m.mask(b"a\xffsecret\xfeb")[..], b"a***b");
}

#[test]
fn megabyte_line_with_secrets_near_cap_boundaries() {
    let secret = "0123456789-the-secret-value-9876543210";
    let m = masker(&[secret]);
    let cap = DEFAULT_CAP;
    let mut line = vec![b'.'; 1 << 20];
    let n = secret.len();
    // Just before, across and just after each of the first cuts, and near the end.
    let mut at = Vec::new();
    for k in 1..6 {
        for delta in [
            -(n as isize) - 1,
            -(n as isize),
            -(n as isize) + 1,
            -20,
            -1,
            0,
            1,
        ] {
            let pos = (k * cap) as isize + delta + (k as isize) * 100;
            at.push(pos as usize);
        }
    }
    at.push(line.len() - n);
    at.sort_unstable();
    at.dedup();
    let mut last_end = 0;
    let mut placed = Vec::new();
    for pos in at {
        if pos > last_end {
            line[pos..pos + n].copy_from_slice(secret.as_bytes());
            last_end = pos + n;
            placed.push(pos);
        }
    }
    let expected = m.mask(&line).into_owned();
    assert_eq!(
        expected.windows(3).filter(|w| w == b"***").count(),
        placed.len()
    );

    for chunk in [1000, 4096, 65_536, 1 << 20] {
        let mut splitter = LineSplitter::new();
        let mut out = Vec::new();
        let mut open = None;
        let mut pieces_before_end = 0;
        for part in line.chunks(chunk) {
            splitter.push(part);
            pieces_before_end += drain(&mut splitter, &m, &mut out, &mut open);
        }
        // Memory stays bounded: pieces come out while the line is still going.
        assert!(
            pieces_before_end >= (1 << 20) / cap - 1,
            "chunk {chunk}: {pieces_before_end}"
        );
        splitter.push(b"\n");
        drain(&mut splitter, &m, &mut out, &mut open);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0], expected, "chunk {chunk}");
    }
}

#[test]
fn pieces_are_at_most_the_cap_and_never_cut_a_secret() {
    let m = masker(&["SECRETVALUE"]);
    for cap in 1..30 {
        let text = b"xxSECRETVALUExxxxxxxxxSECRETVALUESECRETVALUEyyyyyyyyyyyyyyyyySECRETVALUE\n";
        let mut splitter = LineSplitter::with_cap(cap);
        splitter.push(text);
        let mut joined = Vec::new();
        while let Some(line) = splitter.next_line(&m) {
            match line {
                Line::Piece { masked, .. } => {
                    assert!(
                        !contains(&masked, b"SECRET") && !contains(&masked, b"VALUE"),
                        "cap {cap}"
                    );
                    joined.extend_from_slice(&masked)
                }
                Line::Whole(raw) => joined.extend_from_slice(&m.mask(raw)),
            }
        }
        let joined = String::from_utf8(joined).unwrap();
        assert!(
            !joined.contains("SECRET") && !joined.contains("VALUE"),
            "cap {cap}: {joined}"
        );
    }
}

/// Filler that contains no letters, so that it cannot complete a secret by chance.
fn filler() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(b" .,:;=#-_0123456789".to_vec()),
            2 => prop::sample::select(b"\n\r\t".to_vec()),
            1 => prop::sample::select(vec![0x80u8, 0xc3, 0xff, 0xe2]),
        ],
        0..40,
    )
}

fn secret() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9]{5,14}"
}

/// How a secret is written into the output.
#[derive(Clone, Debug)]
enum Form {
    Raw,
    Base64 { prefix: String, suffix: String },
    Url,
    Json,
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![
        3 => Just(Form::Raw),
        3 => ("[a-z:]{0,5}", "[a-z\n@]{0,4}").prop_map(|(prefix, suffix)| Form::Base64 { prefix, suffix }),
        1 => Just(Form::Url),
        1 => Just(Form::Json),
    ]
}

fn write(secret: &str, form: &Form) -> Vec<u8> {
    match form {
        Form::Raw => secret.as_bytes().to_vec(),
        Form::Base64 { prefix, suffix } => STANDARD
            .encode(format!("{prefix}{secret}{suffix}"))
            .into_bytes(),
        Form::Url => secret
            .bytes()
            .flat_map(|b| format!("%{b:02X}").into_bytes())
            .collect(),
        Form::Json => serde_json::to_string(secret).unwrap().into_bytes(),
    }
}

/// Lines as .NET's ReadLine reads them: a plain reference for the splitter.
fn reference_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if text.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Masks side by side make one `***` when a line is masked whole, two when a cut falls between
/// them; nothing else may differ. (The text around holds no `*`.)
fn collapse(line: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(line.len());
    for &b in line {
        if b != b'*' || !out.ends_with(b"***") {
            out.push(b);
        }
    }
    out
}

fn chunks(text: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    for cut in &mut cuts {
        *cut %= text.len() + 1;
    }
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0;
    for cut in cuts {
        out.push(&text[at..cut]);
        at = cut;
    }
    out.push(&text[at..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_registered_form_survives(
        secrets in prop::collection::vec(secret(), 1..4),
        parts in prop::collection::vec((filler(), any::<prop::sample::Index>(), form()), 0..12),
        tail in filler(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        cap in 4usize..120,
        late in any::<bool>(),
    ) {
        let mut m = Masker::new();
        // Half the time the last secret is registered only after the output was written (and
        // before it was read), as an `::add-mask::` from an earlier line.
        let registered_now = if late { secrets.len() - 1 } else { secrets.len() };
        for s in &secrets[..registered_now] {
            m.add(s);
        }
        let mut text = Vec::new();
        for (fill, which, form) in &parts {
            text.extend_from_slice(fill);
            text.extend_from_slice(&write(which.get(&secrets).as_str(), form));
        }
        text.extend_from_slice(&tail);
        for s in &secrets[registered_now..] {
            m.add(s);
        }
        let out = run(&m, cap, &chunks(&text, cuts));
        // Streamed in chunks and pieces, the lines come out as each line masked whole.
        let whole: Vec<Vec<u8>> = reference_lines(&text).into_iter().map(|l| collapse(&m.mask(l))).collect();
        prop_assert_eq!(out.iter().map(|l| collapse(l)).collect::<Vec<_>>(), whole);
        for line in &out {
            for pattern in m.patterns() {
                prop_assert!(!contains(line, pattern), "{:?} in {:?}", String::from_utf8_lossy(pattern), String::from_utf8_lossy(line));
            }
            for s in &secrets {
                prop_assert!(!contains(line, s.as_bytes()));
            }
        }
    }

    #[test]
    fn text_without_secrets_passes_unchanged(
        secrets in prop::collection::vec(secret(), 0..4),
        body in prop::collection::vec(
            (prop::collection::vec(any::<u8>().prop_map(|b| if b == b'\n' || b == b'\r' { b'|' } else { b }), 0..150),
             prop::sample::select(vec!["\n", "\r\n", "\r"])),
            0..20),
        unterminated in prop::collection::vec(b'a'..=b'z', 0..50),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        cap in 4usize..120,
    ) {
        let m = masker(&secrets.iter().map(String::as_str).collect::<Vec<_>>());
        let mut text = Vec::new();
        let mut expected = Vec::new();
        for (line, terminator) in &body {
            // A `\n` right after a lone `\r` (an empty line after one ended by `\r`) would read
            // as one `\r\n`: such an empty line ends with a lone `\r` as well.
            let merges = line.is_empty() && text.last() == Some(&b'\r') && terminator.starts_with('\n');
            let terminator = if merges { "\r" } else { terminator };
            text.extend_from_slice(line);
            text.extend_from_slice(terminator.as_bytes());
            expected.push(line.clone());
        }
        if !unterminated.is_empty() {
            text.extend_from_slice(&unterminated);
            expected.push(unterminated.clone());
        }
        prop_assume!(m.patterns().all(|p| !contains(&text, p)));
        let out = run(&m, cap, &chunks(&text, cuts));
        prop_assert_eq!(out, expected);
    }
}
