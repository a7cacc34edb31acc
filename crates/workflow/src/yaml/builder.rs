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

/// Loads a single-document YAML stream.
pub(crate) fn build(source: &str, file: &str, options: &LoadOptions) -> Result<Node, YamlError> {
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
        let (event, span) = next.map_err(|e| builder.syntax_error(&e))?;
        builder.on_event(event, Span::from_parser(&span), span.is_empty())?;
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
