//! Secret masking: the filter every line of job output passes through before any sink (console,
//! JSON log, forge log rows, step summary) sees it.
//!
//! Three pieces:
//!
//! - [`Masker`] holds the registered values and every form of them to hide, compiled into one
//!   automaton, and masks one line at a time. Values can be added at any time (`::add-mask::` in a
//!   later step); lines masked afterwards hide them.
//! - [`LineSplitter`] turns the raw byte chunks a process writes into lines, so that a secret split
//!   between two writes is still seen whole, and keeps memory bounded on a line that never ends.
//! - [`add_mask_value`] recognises an `add-mask` workflow command, so the engine can register the
//!   value before the next line is masked and never echo the command.
//!
//! What GitHub's runner does, and Hearth with it:
//!
//! - A secret is trimmed and registered whole, and, when it spans lines, each line is trimmed and
//!   registered too (output is masked line by line, so only the lines can ever match). Empty and
//!   whitespace-only lines are dropped; very short lines are not: a `{` line of a JSON secret masks
//!   every `{`, as on GitHub. `::add-mask::` registers its value as given; a whitespace-only value is
//!   refused. [`Masker::add`] does all of this for both callers (it also registers the trimmed value
//!   and the lines of an `add-mask` value, which only ever masks more).
//! - Each registered value is also registered in the encoded forms GitHub's runner adds by default:
//!   base64 of the value and of the value without its first one and two bytes (padded, as .NET
//!   writes it), JSON string escaping (Newtonsoft's), URL data escaping (`Uri.EscapeDataString`),
//!   XML escaping (`SecurityElement.Escape`), `"` escaped as `\"` (command-line arguments), `'`
//!   doubled (expression strings), the inside of a value wrapped in double quotes (when longer than
//!   eight characters), and the parts before and after an `&` that PowerShell may print apart (when
//!   six characters or more).
//! - Matching is ordinal (case-sensitive), finds every occurrence of every form, overlapping ones
//!   included, and replaces the union of them, adjacent ones merged, with one `***`.
//!
//! Where Hearth goes further: GitHub's shifted base64 forms only match when the secret ends the
//! encoded text (they keep the padding and the last, partial character). Hearth also registers the
//! base64 characters that depend on nothing but the value, for each of the three byte offsets the
//! value can start at within longer encoded text, without padding, in the standard and the URL-safe
//! alphabet. These match wherever the value sits (`base64(user:password)`, `base64(token + "\n")`,
//! a JWT), at the cost of leaving visible the at most two partly-secret characters at each end. So
//! that short values do not mask random text, these fragments are only registered from six
//! characters on.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use memchr::memmem;

/// What a masked value is replaced with, as on GitHub.
pub const REPLACEMENT: &[u8] = b"***";

/// The default longest piece of a line [`LineSplitter`] holds back while waiting for its end.
pub const DEFAULT_CAP: usize = 64 * 1024;

/// Base64 fragments shorter than this are not registered: a few base64 characters occur by chance
/// in ordinary text far too often (GitHub's runner once masked every `e` and `f` of a log after
/// registering trimmed base64 forms of the `{` and `}` lines of a JSON secret).
const MIN_BASE64_FRAGMENT: usize = 6;

/// Up to this many bytes of patterns (about 14 MB of DFA), matching uses a DFA.
const DFA_BUDGET: usize = 32 * 1024;

/// The registered values, every form of them to hide, and the automaton that finds them.
///
/// Cloning is cheap enough to rebuild-and-swap (the compiled automaton is shared), and a `Masker` is
/// `Send + Sync`, so one per job can sit behind an `Arc<RwLock<_>>`. `Debug` never shows values.
#[derive(Clone, Default)]
pub struct Masker {
    /// Values exactly as given to [`Masker::add`], so adding one again costs nothing.
    added: HashSet<Box<[u8]>>,
    /// Every byte string to hide: values, their lines, their encodings. Ordered so that the
    /// automaton is the same whatever the order of adds.
    patterns: BTreeSet<Box<[u8]>>,
    longest: usize,
    /// Built on first use after a change, so that adding fifty secrets builds it once.
    searcher: OnceLock<Searcher>,
}

#[derive(Clone)]
enum Searcher {
    Empty,
    Automaton(AhoCorasick),
    /// Only when the automaton cannot be built (patterns beyond its size limits): slow, but a
    /// masker must never stop masking.
    Naive,
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("values", &self.added.len())
            .field("patterns", &self.patterns.len())
            .field("longest", &self.longest)
            .finish()
    }
}

impl Masker {
    pub fn new() -> Masker {
        Masker::default()
    }

    /// Registers a value (a secret, or an `::add-mask::` value) with its lines and encoded forms;
    /// every line masked from now on hides them. Empty and whitespace-only values are ignored, as
    /// GitHub ignores them.
    pub fn add(&mut self, value: impl AsRef<[u8]>) {
        let value = value.as_ref();
        let trimmed = trim(value);
        if trimmed.is_empty() || self.added.contains(value) {
            return;
        }
        self.added.insert(value.into());

        let mut bases = vec![value, trimmed];
        if value.iter().any(|&b| b == b'\r' || b == b'\n') {
            bases.extend(
                value
                    .split(|&b| b == b'\r' || b == b'\n')
                    .map(trim)
                    .filter(|line| !line.is_empty()),
            );
        }
        let before = self.patterns.len();
        for base in bases {
            self.register(base.to_vec());
            for encoded in encodings(base) {
                self.register(encoded);
            }
        }
        if self.patterns.len() != before {
            self.searcher = OnceLock::new();
        }
    }

    fn register(&mut self, pattern: Vec<u8>) {
        if !pattern.is_empty() {
            self.longest = self.longest.max(pattern.len());
            self.patterns.insert(pattern.into_boxed_slice());
        }
    }

    /// Masks one line (no newline handling: see [`LineSplitter`]). Borrows the line back when
    /// nothing in it is secret, which is nearly always.
    pub fn mask<'a>(&self, line: &'a [u8]) -> Cow<'a, [u8]> {
        let mut spans = self.spans(line);
        if spans.is_empty() {
            return Cow::Borrowed(line);
        }
        merge(&mut spans);
        Cow::Owned(render(line, &spans))
    }

    /// Builds the automaton now, so that clones share it instead of each building their own
    /// (jobs of one run clone a masker holding the run's secrets).
    pub fn build(&self) {
        self.searcher();
    }

    /// Masks a text the runner writes itself (a message, a name), as a string.
    pub fn mask_text(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.mask(text.as_bytes())).into_owned()
    }

    /// The length in bytes of the longest form registered: a secret cannot start earlier than this
    /// many bytes, less one, before the end of the text seen so far and still run past it.
    pub fn longest(&self) -> usize {
        self.longest
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Every byte string masked: values, their lines and their encoded forms. For tests and
    /// diagnostics; never log these.
    pub fn patterns(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.patterns.iter().map(|p| &p[..])
    }

    fn searcher(&self) -> &Searcher {
        self.searcher.get_or_init(|| {
            if self.patterns.is_empty() {
                return Searcher::Empty;
            }
            // Standard semantics, searched overlapping: every occurrence of every form is found in
            // one pass, so `abc` and `bcd` in `abcd` hide all four bytes. Leftmost-longest would
            // skip `bcd` and leave the `d` showing.
            let mut builder = AhoCorasick::builder();
            builder.match_kind(MatchKind::Standard);
            // A DFA masks about three times faster than the contiguous NFA the crate picks past
            // 100 patterns (50 secrets make about 360), for a few hundred bytes of memory per
            // pattern byte; past the budget, the NFA keeps memory small.
            let pattern_bytes: usize = self.patterns.iter().map(|p| p.len()).sum();
            if pattern_bytes <= DFA_BUDGET {
                if let Ok(ac) = builder
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(self.patterns.iter())
                {
                    return Searcher::Automaton(ac);
                }
            }
            builder
                .kind(None)
                .build(self.patterns.iter())
                .map_or(Searcher::Naive, Searcher::Automaton)
        })
    }

    /// Every occurrence of every pattern in `hay`, unordered, as (start, end).
    fn spans(&self, hay: &[u8]) -> Vec<(usize, usize)> {
        match self.searcher() {
            Searcher::Empty => Vec::new(),
            Searcher::Automaton(ac) => match ac.try_find_overlapping_iter(hay) {
                Ok(found) => found.map(|m| (m.start(), m.end())).collect(),
                Err(_) => self.naive_spans(hay),
            },
            Searcher::Naive => self.naive_spans(hay),
        }
    }

    fn naive_spans(&self, hay: &[u8]) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        for pattern in &self.patterns {
            // memmem's iterator skips overlapping occurrences of one pattern; step by one instead.
            let finder = memmem::Finder::new(pattern);
            let mut at = 0;
            while let Some(i) = hay.get(at..).and_then(|rest| finder.find(rest)) {
                spans.push((at + i, at + i + pattern.len()));
                at += i + 1;
            }
        }
        spans
    }
}

/// Sorts spans and merges those that overlap or touch, as GitHub's masker does: two secrets side by
/// side become one `***`.
fn merge(spans: &mut Vec<(usize, usize)>) {
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for &(start, end) in spans.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *spans = merged;
}

/// `text` with each of the sorted, disjoint `spans` replaced by `***`.
fn render(text: &[u8], spans: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for &(start, end) in spans {
        out.extend_from_slice(&text[at..start]);
        out.extend_from_slice(REPLACEMENT);
        at = end;
    }
    out.extend_from_slice(&text[at..]);
    out
}

/// Trims white space as .NET's `String.Trim` does, on bytes: Unicode white space when the value is
/// UTF-8, ASCII white space otherwise.
fn trim(value: &[u8]) -> &[u8] {
    match std::str::from_utf8(value) {
        Ok(s) => s.trim().as_bytes(),
        Err(_) => value.trim_ascii(),
    }
}

fn trim_start(value: &[u8]) -> &[u8] {
    match std::str::from_utf8(value) {
        Ok(s) => s.trim_start().as_bytes(),
        Err(_) => value.trim_ascii_start(),
    }
}

/// The encoded forms of one value (see the module documentation). May contain duplicates and empty
/// strings; registering drops them.
fn encodings(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();

    // GitHub's Base64StringEscape, ...Shift1 and ...Shift2 (a shift that leaves nothing gives the
    // unshifted form again, which GitHub then registers twice).
    out.push(STANDARD.encode(value).into_bytes());
    for shift in 1..=2 {
        if value.len() > shift {
            out.push(STANDARD.encode(&value[shift..]).into_bytes());
        }
    }
    // Hearth's stable fragments at each byte offset, in both alphabets.
    for offset in 0..3 {
        if let Some(fragment) = base64_fragment(value, offset) {
            if fragment.len() >= MIN_BASE64_FRAGMENT {
                let url_safe: Vec<u8> = fragment
                    .iter()
                    .map(|&b| match b {
                        b'+' => b'-',
                        b'/' => b'_',
                        b => b,
                    })
                    .collect();
                out.push(fragment);
                out.push(url_safe);
            }
        }
    }

    out.push(json_escape(value, true));
    out.push(json_escape(value, false));
    out.push(uri_escape(value));
    out.push(xml_escape(value));
    out.push(replace(value, b"\"", b"\\\""));
    out.push(replace(value, b"'", b"''"));
    if let Some(inner) = trim_double_quotes(value) {
        out.push(inner.to_vec());
    }
    out.extend(power_shell_sections(value).into_iter().map(<[u8]>::to_vec));
    out
}

/// The base64 characters that encode only bits of `value` when it starts `offset` bytes (mod 3)
/// into the encoded data: every character whose six bits lie wholly inside the value. These are the
/// same whatever comes before or after it.
fn base64_fragment(value: &[u8], offset: usize) -> Option<Vec<u8>> {
    let mut data = vec![0u8; offset];
    data.extend_from_slice(value);
    let encoded = STANDARD_NO_PAD.encode(&data).into_bytes();
    let first = (8 * offset).div_ceil(6);
    let end = 8 * (offset + value.len()) / 6;
    encoded.get(first..end).map(<[u8]>::to_vec)
}

/// JSON string escaping without the quotes. `newtonsoft` also escapes U+0085, U+2028 and U+2029,
/// as Json.NET (GitHub's encoder) does; without it the result is what serde_json, `JSON.stringify`
/// and jq write. Control characters use lowercase hex, as all of them do.
fn json_escape(value: &[u8], newtonsoft: bool) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ if newtonsoft => {
                let escape: Option<&[u8]> = match value.get(i..i + 3) {
                    Some([0xe2, 0x80, 0xa8]) => Some(b"\\u2028"),
                    Some([0xe2, 0x80, 0xa9]) => Some(b"\\u2029"),
                    _ => match value.get(i..i + 2) {
                        Some([0xc2, 0x85]) => Some(b"\\u0085"),
                        _ => None,
                    },
                };
                match escape {
                    Some(escape) => {
                        out.extend_from_slice(escape);
                        i += if escape == b"\\u0085" { 2 } else { 3 };
                        continue;
                    }
                    None => out.push(b),
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

/// `Uri.EscapeDataString`: RFC 3986 unreserved characters kept, every other byte of the UTF-8 as
/// `%XX` in uppercase hex.
fn uri_escape(value: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(value.len());
    for &b in value {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
    out
}

/// `SecurityElement.Escape`.
fn xml_escape(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for &b in value {
        match b {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\'' => out.extend_from_slice(b"&apos;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b => out.push(b),
        }
    }
    out
}

fn replace(value: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut at = 0;
    for i in memmem::find_iter(value, from) {
        out.extend_from_slice(&value[at..i]);
        out.extend_from_slice(to);
        at = i + from.len();
    }
    out.extend_from_slice(&value[at..]);
    out
}

/// The length .NET gives a string: UTF-16 code units (bytes when the value is not UTF-8).
fn net_len(value: &[u8]) -> usize {
    match std::str::from_utf8(value) {
        Ok(s) => s.encode_utf16().count(),
        Err(_) => value.len(),
    }
}

/// GitHub's TrimDoubleQuotes: the inside of a value longer than eight characters that starts and
/// ends with `"`, for a secret stored with its quotes but printed without.
fn trim_double_quotes(value: &[u8]) -> Option<&[u8]> {
    if net_len(value) > 8 && value.first() == Some(&b'"') && value.last() == Some(&b'"') {
        value.get(1..value.len() - 1)
    } else {
        None
    }
}

/// GitHub's PowerShellPre/PostAmpersandEscape: PowerShell reporting an error in a command that
/// contains the secret may colour part of it, printing the pieces around an `&` apart. Before: up
/// to and including the first `&+`, else the last `&`. After: what follows the first `&+` and the
/// character after it (the coloured one), else the last `&`. Each only from six characters on.
fn power_shell_sections(value: &[u8]) -> Vec<&[u8]> {
    let Some(last_amp) = memchr::memrchr(b'&', value) else {
        return Vec::new();
    };
    let (before, after) = match memmem::find(value, b"&+") {
        Some(i) => {
            let skip = i + 2 + value.get(i + 2).map_or(0, |&b| utf8_len(b));
            (&value[..i + 2], value.get(skip..).unwrap_or_default())
        }
        None => (&value[..=last_amp], &value[last_amp + 1..]),
    };
    [before, after]
        .into_iter()
        .filter(|section| net_len(section) >= 6)
        .collect()
}

/// The length of the UTF-8 sequence a leading byte starts (1 for anything else).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

/// One line, or one piece of a line too long to hold, out of a [`LineSplitter`].
///
/// Deliberately not `Debug`: a whole line is not masked yet.
#[derive(Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// A whole line (at most the cap) without its terminator, not masked yet: look for workflow
    /// commands in it first (GitHub processes commands on the raw line, and an `::add-mask::` must take effect
    /// before the next line is masked), then pass it through [`Masker::mask`].
    Whole(&'a [u8]),
    /// A piece of a line longer than the splitter's cap, already masked; never a command. `last`
    /// is set on the piece that ends the line (it may be empty).
    Piece { masked: Cow<'a, [u8]>, last: bool },
}

impl<'a> Line<'a> {
    /// The line masked, for a caller that has no commands to look for.
    pub fn masked(self, masker: &Masker) -> Cow<'a, [u8]> {
        match self {
            Line::Whole(line) => masker.mask(line),
            Line::Piece { masked, .. } => masked,
        }
    }
}

/// Turns the byte chunks a process writes, of any size and cut anywhere, into lines.
///
/// Lines end at `\n`, `\r\n` or a lone `\r`, as .NET's `ReadLine` (which GitHub's runner reads
/// output with) ends them; the terminator is not part of the line. A line is held until its end
/// arrives, so a secret split between two writes is masked whole.
///
/// A line longer than the cap is given out in masked pieces of at most `cap` bytes, so that memory
/// stays bounded whatever a process prints. A piece ends before any secret that could still be
/// running on into data not seen yet: the splitter waits until `cap + longest - 1` bytes are
/// pending, cuts at `cap` (moved back to a UTF-8 character boundary, and to the start of any secret
/// that crosses the cut), and keeps the rest, which is re-searched with what follows. (With a cap
/// shorter than a secret, a piece can be longer than the cap: a secret is never cut.)
///
/// Use: [`push`](Self::push) each chunk, then take lines with [`next_line`](Self::next_line)
/// until it returns `None`; at the end of the stream call [`finish`](Self::finish) and drain
/// again. The masker is asked for each line separately, so a value added between two lines masks
/// the second.
#[derive(Clone)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// Where the current line starts in `buf`.
    start: usize,
    /// How many bytes from `start` are known to hold no terminator.
    scanned: usize,
    cap: usize,
    /// A piece of the current line has been given out, so the rest comes out as pieces too.
    continued: bool,
    /// The last line ended with a `\r` at the end of the data; a `\n` arriving next belongs to it.
    skip_lf: bool,
    eof: bool,
}

/// Shows sizes only: what the splitter holds is output not masked yet.
impl fmt::Debug for LineSplitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineSplitter")
            .field("pending", &(self.buf.len() - self.start))
            .field("cap", &self.cap)
            .field("continued", &self.continued)
            .field("eof", &self.eof)
            .finish()
    }
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::new()
    }
}

impl LineSplitter {
    /// A splitter with the default cap of 64 KiB.
    pub fn new() -> LineSplitter {
        LineSplitter::with_cap(DEFAULT_CAP)
    }

    /// A splitter that gives out lines longer than `cap` bytes (at least 1) in pieces.
    pub fn with_cap(cap: usize) -> LineSplitter {
        LineSplitter {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            cap: cap.max(1),
            continued: false,
            skip_lf: false,
            eof: false,
        }
    }

    /// Adds a chunk of output. Drain [`next_line`](Self::next_line) after each push: what is not
    /// taken stays in memory.
    pub fn push(&mut self, chunk: &[u8]) {
        self.eof = false;
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// Marks the end of the stream: the last line, even without a terminator, comes out of
    /// [`next_line`](Self::next_line). Pushing again starts a new stream.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// The next line, or piece of a long line, or `None` until more data arrives.
    pub fn next_line(&mut self, masker: &Masker) -> Option<Line<'_>> {
        if self.skip_lf && self.start < self.buf.len() {
            if self.buf[self.start] == b'\n' {
                self.start += 1;
            }
            self.skip_lf = false;
        }
        let pending = self.buf.len() - self.start;
        let found = memchr::memchr2(b'\n', b'\r', &self.buf[self.start + self.scanned..])
            .map(|i| self.scanned + i);
        let (end, terminator) = match found {
            Some(end) => {
                let at = self.start + end;
                let crlf = self.buf[at] == b'\r' && self.buf.get(at + 1) == Some(&b'\n');
                (end, if crlf { 2 } else { 1 })
            }
            None => {
                self.scanned = pending;
                // Only once a secret starting before the cut must have ended within the data.
                if pending > self.cap + masker.longest().saturating_sub(1) {
                    if let Some((cut, spans)) = self.plan_piece(masker, pending) {
                        return Some(self.take_piece(cut, spans, pending));
                    }
                }
                if !self.eof || (pending == 0 && !self.continued) {
                    return None;
                }
                (pending, 0)
            }
        };
        if end > self.cap {
            if let Some((cut, spans)) = self.plan_piece(masker, end) {
                return Some(self.take_piece(cut, spans, end));
            }
        }

        let line_start = self.start;
        self.start += end + terminator;
        self.scanned = 0;
        // A `\r` ending the data may be the first half of a `\r\n` split between two writes.
        if terminator == 1 && self.buf[self.start - 1] == b'\r' && self.start == self.buf.len() {
            self.skip_lf = !self.eof;
        }
        let line = &self.buf[line_start..line_start + end];
        if std::mem::take(&mut self.continued) {
            Some(Line::Piece {
                masked: masker.mask(line),
                last: true,
            })
        } else {
            Some(Line::Whole(line))
        }
    }

    /// Where to cut the next piece off the current line, whose first `limit` bytes (more than the
    /// cap) hold no terminator and no secret that runs past them, and the masked spans of the
    /// piece. `None` when no cut is possible yet: a secret crosses the cut and starts the line.
    fn plan_piece(&self, masker: &Masker, limit: usize) -> Option<(usize, Vec<(usize, usize)>)> {
        // Any secret that starts before the cut ends within cap + longest - 1 bytes.
        let window =
            &self.buf[self.start..self.start + limit.min(self.cap + masker.longest().max(1))];
        // A cut inside a UTF-8 sequence would leave both pieces invalid for sinks that want text.
        let mut cut = self.cap;
        for _ in 0..3 {
            if cut > 0 && window.get(cut).is_some_and(|&b| b & 0xc0 == 0x80) {
                cut -= 1;
            }
        }
        let mut spans = masker.spans(window);
        // Never cut through a secret: its tail alone would not match again. Moving the cut back to
        // its start keeps it whole in the rest; what other secrets lose past the new cut lies
        // inside it.
        if let Some(crossing) = spans
            .iter()
            .filter(|&&(start, end)| start < cut && end > cut)
            .map(|&(start, _)| start)
            .min()
        {
            cut = crossing;
        }
        if cut == 0 {
            return None;
        }
        spans.retain(|&(start, _)| start < cut);
        for span in &mut spans {
            span.1 = span.1.min(cut);
        }
        merge(&mut spans);
        Some((cut, spans))
    }

    fn take_piece(&mut self, cut: usize, spans: Vec<(usize, usize)>, limit: usize) -> Line<'_> {
        let piece_start = self.start;
        self.start += cut;
        self.scanned = limit - cut;
        self.continued = true;
        let text = &self.buf[piece_start..piece_start + cut];
        let masked = if spans.is_empty() {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(render(text, &spans))
        };
        Line::Piece {
            masked,
            last: false,
        }
    }
}

/// If `line` is an `add-mask` workflow command, the value it registers (unescaped; possibly empty
/// or white space, which GitHub answers with the warning "Can't add secret mask for empty string
/// in ##[add-mask] command." and [`Masker::add`] ignores).
///
/// Recognises both forms GitHub's runner accepts: `::add-mask::VALUE` (after leading white space;
/// the command name in any case, properties ignored; `%0D`, `%0A` and `%25` unescaped, in that
/// order) and the older `##[add-mask]VALUE` anywhere in the line (also `%3B` and `%5D`). A
/// trailing line terminator is ignored. Whether commands are currently stopped
/// (`::stop-commands::`) is for the caller to know.
pub fn add_mask_value(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    add_mask_v2(line).or_else(|| add_mask_legacy(line))
}

const ADD_MASK: &[u8] = b"add-mask";

fn add_mask_v2(line: &[u8]) -> Option<Vec<u8>> {
    let rest = trim_start(line).strip_prefix(b"::")?;
    let end = memmem::find(rest, b"::")?;
    let name = rest[..end].split(|&b| b == b' ').next()?;
    if !name.eq_ignore_ascii_case(ADD_MASK) {
        return None;
    }
    Some(unescape(
        &rest[end + 2..],
        &[(b"%0D", b"\r"), (b"%0A", b"\n"), (b"%25", b"%")],
    ))
}

fn add_mask_legacy(line: &[u8]) -> Option<Vec<u8>> {
    let at = memmem::find(line, b"##[")?;
    let rest = &line[at + 3..];
    let end = memchr::memchr(b']', rest)?;
    let name = rest[..end].split(|&b| b == b' ').next()?;
    if !name.eq_ignore_ascii_case(ADD_MASK) {
        return None;
    }
    Some(unescape(
        &rest[end + 1..],
        &[
            (b"%3B", b";"),
            (b"%0D", b"\r"),
            (b"%0A", b"\n"),
            (b"%5D", b"]"),
            (b"%25", b"%"),
        ],
    ))
}

/// Replaces each escape in turn over the whole value, as GitHub's chain of `String.Replace` does
/// (so `%250A` becomes `%0A`, not a newline).
fn unescape(value: &[u8], escapes: &[(&[u8; 3], &[u8; 1])]) -> Vec<u8> {
    let mut out = value.to_vec();
    for (from, to) in escapes {
        out = replace(&out, &from[..], &to[..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(masker: &Masker, line: &str) -> String {
        String::from_utf8(masker.mask(line.as_bytes()).into_owned()).unwrap()
    }

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn githubs_default_encoders() {
        // The expectations of GitHub's own test of its default maskers.
        let mut m = Masker::new();
        for v in [
            "Password123!",
            "Pass\"word\"123!",
            "Pass word 123!",
            "Pass<word>123!",
            "Pass'word'123!",
            "\"Password123!!\"",
            "\"short\"",
        ] {
            m.add(v);
        }
        assert_eq!(masked(&m, "123Password123!123"), "123***123");
        assert_eq!(masked(&m, "password123"), "password123");
        assert_eq!(masked(&m, "123Pass\\\"word\\\"123!123"), "123***123");
        assert_eq!(masked(&m, "123Pass%20word%20123%21123"), "123***123");
        assert_eq!(masked(&m, "123Pass&lt;word&gt;123!123"), "123***123");
        assert_eq!(masked(&m, "123Pass''word''123!123"), "123***123");
        assert_eq!(masked(&m, "123Password123!!123"), "123***123");
        assert_eq!(masked(&m, "123short123"), "123short123");
        assert_eq!(masked(&m, "123\"short\"123"), "123***123");
        // Aligned: all of it, as GitHub.
        assert_eq!(masked(&m, &b64("abcde:Password123!")), "YWJjZGU6***");
        assert_eq!(masked(&m, &b64("Password123!")), "***");
        // Unaligned: GitHub leaves visible the characters that carry the first bits of the secret
        // ("OlBh***", "YTpQ***", "YWJjOlBh***"); the stable fragments hide them.
        assert_eq!(masked(&m, &b64(":Password123!")), "Ol***");
        assert_eq!(masked(&m, &b64("a:Password123!")), "YTp***");
        assert_eq!(masked(&m, &b64("abc:Password123!")), "YWJjOl***");
    }

    #[test]
    fn power_shell_sections_as_github() {
        let sections = |v: &str| -> Vec<String> {
            power_shell_sections(v.as_bytes())
                .into_iter()
                .map(|s| String::from_utf8(s.to_vec()).unwrap())
                .collect()
        };
        assert_eq!(sections("abcdef&"), ["abcdef&"]);
        assert_eq!(sections("abcdef&+ghijklm"), ["abcdef&+", "hijklm"]);
        assert_eq!(sections("abc&def&"), ["abc&def&"]);
        assert!(sections("ab&").is_empty());
        assert!(sections("secret&+").len() == 1);
        let mut m = Masker::new();
        m.add("secret&secret&+secretsecret");
        assert_eq!(
            masked(&m, "secret&secret&+\x1b[96ms\x1b[0mecretsecret"),
            "***\x1b[96ms\x1b[0m***"
        );
    }

    #[test]
    fn json_escapes() {
        assert_eq!(
            json_escape(b"a\"b\\c\n\r\t\x08\x0c\x01", true),
            b"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001"
        );
        assert_eq!(
            json_escape("x\u{2028}y\u{85}".as_bytes(), true),
            b"x\\u2028y\\u0085"
        );
        assert_eq!(
            json_escape("x\u{2028}y".as_bytes(), false),
            "x\u{2028}y".as_bytes()
        );
    }

    #[test]
    fn uri_escapes() {
        assert_eq!(
            uri_escape("a b/ü~-._!".as_bytes()),
            b"a%20b%2F%C3%BC~-._%21"
        );
    }

    #[test]
    fn base64_fragments_depend_only_on_the_value() {
        let value = b"correct horse";
        for offset in 0..3 {
            let fragment = base64_fragment(value, offset).unwrap();
            for prefix in [&b""[..], b"x", b"xy", b"xyz", b"wxyz"] {
                if prefix.len() % 3 != offset {
                    continue;
                }
                for suffix in [&b""[..], b"\n", b"!!", b"tail"] {
                    let data = [prefix, value, suffix].concat();
                    let encoded = STANDARD.encode(&data);
                    assert!(
                        memmem::find(encoded.as_bytes(), &fragment).is_some(),
                        "offset {offset}, prefix {prefix:?}, suffix {suffix:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn short_values_register_no_base64_fragments() {
        let mut m = Masker::new();
        m.add("{");
        // `{` itself (as GitHub) and its padded base64, but no two-character fragment.
        assert_eq!(masked(&m, "{ ew== e"), "*** *** e");
    }

    #[test]
    fn add_mask_commands() {
        let v = |l: &str| add_mask_value(l.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(v("::add-mask::s3cret"), Some("s3cret".into()));
        assert_eq!(v("  ::ADD-MASK::s3cret\r\n"), Some("s3cret".into()));
        assert_eq!(
            v("::add-mask name=x::a%0Db%0Ac%25d"),
            Some("a\rb\nc%d".into())
        );
        assert_eq!(v("::add-mask::%250A"), Some("%0A".into()));
        assert_eq!(v("::add-mask::"), Some("".into()));
        assert_eq!(v("::add-mask::a::b"), Some("a::b".into()));
        assert_eq!(v("x ##[add-mask]a%3Bb%5D"), Some("a;b]".into()));
        assert_eq!(v("::add-masks::x"), None);
        assert_eq!(v("::warning::add-mask"), None);
        assert_eq!(v("echo ::add-mask::x"), None);
        assert_eq!(v("::add-mask x"), None);
    }

    #[test]
    fn every_searcher_finds_the_same_spans() {
        let mut small = Masker::new();
        let mut large = Masker::new();
        for i in 0..2000 {
            let value = format!("value-{i:04}-{}", "x".repeat(i % 7));
            if i < 5 {
                small.add(&value);
            }
            large.add(&value);
        }
        assert!(
            matches!(small.searcher(), Searcher::Automaton(ac) if ac.kind() == AhoCorasickKind::DFA)
        );
        assert!(
            matches!(large.searcher(), Searcher::Automaton(ac) if ac.kind() != AhoCorasickKind::DFA)
        );
        let hay = b"a value-0003-xxx value-0004-xxxxvalue-1999-xxxx! dmFsdWUtMDAwMy14eHg= value-00";
        for m in [&small, &large] {
            let mut fast = m.spans(hay);
            let mut naive = m.naive_spans(hay);
            fast.sort_unstable();
            naive.sort_unstable();
            assert!(!fast.is_empty());
            assert_eq!(fast, naive);
        }
        assert_eq!(
            masked(&large, std::str::from_utf8(hay).unwrap()),
            "a *** ***! *** value-00"
        );
    }

    #[test]
    fn debug_shows_no_values() {
        let mut m = Masker::new();
        m.add("hunter2-secret");
        assert!(!format!("{m:?}").contains("hunter2"));
    }
}
