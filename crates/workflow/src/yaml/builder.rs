//! Turns the parser's event stream into a [`Node`] tree.
//!
//! The build is iterative (an explicit stack of open collections), so deep
//! input cannot overflow the call stack here; the depth limit keeps the
//! resulting tree shallow enough for the recursive code that walks it later.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScanError, Tag};

use super::error::{YamlError, YamlErrorKind};
use super::mapping::MappingBuilder;
use super::node::{Node, ScalarStyle, YamlValue};
use super::position::{Pos, Span};
use super::schema::{resolve_scalar, KnownTag};
use super::LoadOptions;

/// A finished node plus the bookkeeping the limits need.
#[derive(Clone)]
struct Built {
    node: Node,
    /// Number of nodes in the subtree, itself included.
    size: usize,
    /// Number of nested collection levels in the subtree (0 for a scalar).
    height: usize,
}

enum Contents {
    Sequence(Vec<Node>),
    Mapping(MappingBuilder),
}

/// A collection whose end event has not arrived yet.
struct OpenCollection {
    contents: Contents,
    start: Pos,
    /// End of the last child, which is where a block collection ends.
    last_child_end: Pos,
    anchor_id: usize,
    size: usize,
    child_height: usize,
}

struct TreeBuilder<'a> {
    file: &'a str,
    options: &'a LoadOptions,
    open: Vec<OpenCollection>,
    /// Anchored nodes by the parser's anchor id.
    anchors: HashMap<usize, Built>,
    /// Nodes copied so far for anchors and aliases.
    copied_nodes: usize,
    root: Option<Node>,
    documents: usize,
}

/// What `saphyr-parser` says of a `#` that follows a token with no space between them.
const UNSPACED_COMMENT: &str = "comments must be separated from other tokens by whitespace";

/// Most comments with no space before them that one file may hold.
const MAX_UNSPACED_COMMENTS: usize = 100;

/// Loads a single-document YAML stream.
///
/// GitHub reads YAML with YamlDotNet, which takes a `#` straight after a flow
/// indicator or a quoted scalar (`[one]#, two`, `"a"#b`) as the start of a
/// comment. The YAML specification and `saphyr-parser` ask for a space first
/// and reject it. Where the parser reports exactly that, the comment is blanked
/// out (to the end of its line, characters replaced one for one, so every
/// position stays the same) and the text is read again. Only a `#` the parser
/// had already reached as a token boundary is touched: inside a plain scalar
/// (`a#b`) or a quoted one it is text, and the parser never complains of it.
pub(crate) fn build(source: &str, file: &str, options: &LoadOptions) -> Result<Node, YamlError> {
    let mut text = std::borrow::Cow::Borrowed(source);
    let mut retries = 0;
    loop {
        match build_once(&text, file, options) {
            Err(Retry::UnspacedComment(pos)) => match blank_comment(&text, pos) {
                // Each retry reads the text again; the cap keeps a file crafted with
                // thousands of such comments from costing quadratic time.
                Some(blanked) if retries < MAX_UNSPACED_COMMENTS => {
                    retries += 1;
                    text = std::borrow::Cow::Owned(blanked);
                }
                blanked => {
                    let message = if blanked.is_some() {
                        format!(
                            "more than {MAX_UNSPACED_COMMENTS} comments start right after a \
                             token; put a space before this '#'"
                        )
                    } else {
                        UNSPACED_COMMENT.to_owned()
                    };
                    let kind = YamlErrorKind::Syntax { message };
                    return Err(YamlError::new(file, pos, kind));
                }
            },
            Err(Retry::Fail(error)) => return Err(error),
            Ok(node) => return Ok(node),
        }
    }
}

/// Why one pass over the text stopped.
enum Retry {
    /// A `#` right after a token, at this position: a comment to GitHub.
    UnspacedComment(Pos),
    Fail(YamlError),
}

/// `text` with the comment that starts at `pos` replaced by spaces, or `None`
/// if no `#` is there (then the error is reported as it is).
fn blank_comment(text: &str, pos: Pos) -> Option<String> {
    let line_start = if pos.line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(pos.line - 2)?.0 + 1
    };
    let line = &text[line_start..];
    let (hash, _) = line.char_indices().nth(pos.col.checked_sub(1)?)?;
    if !line[hash..].starts_with('#') {
        return None;
    }
    let start = line_start + hash;
    let end = text[start..]
        .find(['\n', '\r'])
        .map_or(text.len(), |n| start + n);
    let mut blanked = String::with_capacity(text.len());
    blanked.push_str(&text[..start]);
    blanked.extend(text[start..end].chars().map(|_| ' '));
    blanked.push_str(&text[end..]);
    Some(blanked)
}

fn build_once(source: &str, file: &str, options: &LoadOptions) -> Result<Node, Retry> {
    let mut builder = TreeBuilder {
        file,
        options,
        open: Vec::new(),
        anchors: HashMap::new(),
        copied_nodes: 0,
        root: None,
        documents: 0,
    };
    let mut parser = Parser::new_from_str(source);
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(next) => next,
            Err(e) if e.info() == UNSPACED_COMMENT => {
                return Err(Retry::UnspacedComment(Pos::from_marker(e.marker())))
            }
            Err(e) => return Err(Retry::Fail(builder.syntax_error(&e))),
        };
        builder
            .on_event(event, Span::from_parser(&span), span.is_empty())
            .map_err(Retry::Fail)?;
    }
    Ok(builder.root.unwrap_or_else(|| {
        Node::new(
            YamlValue::Null,
            Span::at(Pos::START),
            Some(ScalarStyle::Plain),
        )
    }))
}

impl TreeBuilder<'_> {
    fn on_event(
        &mut self,
        event: Event<'_>,
        span: Span,
        empty_span: bool,
    ) -> Result<(), YamlError> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(self.error(span.start, YamlErrorKind::MultipleDocuments));
                }
            }
            Event::Scalar(text, style, anchor_id, tag) => {
                let tag = self.known_tag(tag.as_deref(), span.start)?;
                let style = ScalarStyle::from_parser(style);
                let value = resolve_scalar(text.into_owned(), style, tag)
                    .map_err(|kind| self.error(span.start, kind))?;
                let node = Node::new(value, span, Some(style));
                self.complete(
                    Built {
                        node,
                        size: 1,
                        height: 0,
                    },
                    anchor_id,
                )?;
            }
            Event::SequenceStart(anchor_id, tag) => {
                self.open_collection(
                    Contents::Sequence(Vec::new()),
                    anchor_id,
                    tag.as_deref(),
                    span,
                )?;
            }
            Event::MappingStart(anchor_id, tag) => {
                self.open_collection(
                    Contents::Mapping(MappingBuilder::default()),
                    anchor_id,
                    tag.as_deref(),
                    span,
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => self.close_collection(span, empty_span)?,
            Event::Alias(anchor_id) => self.expand_alias(anchor_id, span)?,
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn known_tag(&self, tag: Option<&Tag>, pos: Pos) -> Result<Option<KnownTag>, YamlError> {
        let Some(tag) = tag else { return Ok(None) };
        let expanded = format!("{}{}", tag.handle, tag.suffix);
        KnownTag::from_expanded(&expanded)
            .map(Some)
            .map_err(|kind| self.error(pos, kind))
    }

    fn open_collection(
        &mut self,
        contents: Contents,
        anchor_id: usize,
        tag: Option<&Tag>,
        span: Span,
    ) -> Result<(), YamlError> {
        if self.open.len() >= self.options.max_depth {
            return Err(self.too_deep(span.start));
        }
        if let Some(tag) = self.known_tag(tag, span.start)? {
            let is_mapping = matches!(contents, Contents::Mapping(_));
            tag.check_collection(is_mapping)
                .map_err(|kind| self.error(span.start, kind))?;
        }
        self.open.push(OpenCollection {
            contents,
            start: span.start,
            last_child_end: span.end,
            anchor_id,
            size: 1,
            child_height: 0,
        });
        Ok(())
    }

    fn close_collection(&mut self, span: Span, empty_span: bool) -> Result<(), YamlError> {
        let Some(collection) = self.open.pop() else {
            return Ok(());
        };
        // Flow collections end at their closing bracket; block collections
        // get an empty end event at the next token, so use their last child.
        let end = if empty_span {
            collection.last_child_end
        } else {
            span.end
        };
        let value = match collection.contents {
            Contents::Sequence(items) => YamlValue::Sequence(items),
            Contents::Mapping(mapping) => YamlValue::Mapping(mapping.finish(end)),
        };
        let built = Built {
            node: Node::new(value, Span::new(collection.start, end), None),
            size: collection.size,
            height: collection.child_height.saturating_add(1),
        };
        self.complete(built, collection.anchor_id)
    }

    fn expand_alias(&mut self, anchor_id: usize, span: Span) -> Result<(), YamlError> {
        // The parser rejects unknown anchors, so a miss means the anchor
        // belongs to a collection that is still open around this alias.
        let Some((size, height)) = self.anchors.get(&anchor_id).map(|a| (a.size, a.height)) else {
            return Err(self.error(span.start, YamlErrorKind::RecursiveAlias));
        };
        if self.open.len().saturating_add(height) > self.options.max_depth {
            return Err(self.too_deep(span.start));
        }
        // Charge before cloning, so a bomb is stopped before it allocates.
        self.charge_copy(size, span.start)?;
        let Some(mut copy) = self.anchors.get(&anchor_id).cloned() else {
            return Err(self.error(span.start, YamlErrorKind::RecursiveAlias));
        };
        copy.node.span = span;
        self.complete(copy, 0)
    }

    /// Counts `size` more copied nodes against the alias expansion limit.
    fn charge_copy(&mut self, size: usize, pos: Pos) -> Result<(), YamlError> {
        self.copied_nodes = self.copied_nodes.saturating_add(size);
        if self.copied_nodes > self.options.max_alias_nodes {
            return Err(self.error(
                pos,
                YamlErrorKind::AliasExpansionLimit {
                    limit: self.options.max_alias_nodes,
                },
            ));
        }
        Ok(())
    }

    /// Hands a finished node to its parent (or makes it the root).
    fn complete(&mut self, built: Built, anchor_id: usize) -> Result<(), YamlError> {
        if anchor_id != 0 {
            // The anchor table keeps its own copy; charging it to the same
            // budget stops nested anchors from multiplying memory use.
            self.charge_copy(built.size, built.node.span.start)?;
            self.anchors.insert(anchor_id, built.clone());
        }
        let Some(parent) = self.open.last_mut() else {
            self.root = Some(built.node);
            return Ok(());
        };
        parent.size = parent.size.saturating_add(built.size);
        parent.child_height = parent.child_height.max(built.height);
        parent.last_child_end = built.node.span.end;
        let result = match &mut parent.contents {
            Contents::Sequence(items) => {
                items.push(built.node);
                Ok(())
            }
            Contents::Mapping(mapping) => mapping.push(built.node),
        };
        result.map_err(|(pos, kind)| self.error(pos, kind))
    }

    fn too_deep(&self, pos: Pos) -> YamlError {
        self.error(
            pos,
            YamlErrorKind::TooDeep {
                limit: self.options.max_depth,
            },
        )
    }

    fn syntax_error(&self, error: &ScanError) -> YamlError {
        self.error(
            Pos::from_marker(error.marker()),
            YamlErrorKind::Syntax {
                message: error.info().to_owned(),
            },
        )
    }

    fn error(&self, pos: Pos, kind: YamlErrorKind) -> YamlError {
        YamlError::new(self.file, pos, kind)
    }
}
