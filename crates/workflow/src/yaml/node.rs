//! The positioned value tree produced by the loader.

use super::position::Span;

/// How a scalar was written in the source.
///
/// Later layers need this because YAML gives different meanings to the same
/// characters: `true` is a boolean, but `'true'` is a string, and a `run:`
/// script written as a block scalar keeps its line breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarStyle {
    /// Unquoted, e.g. `foo` or `42`.
    Plain,
    /// `'single quoted'`.
    SingleQuoted,
    /// `"double quoted"`.
    DoubleQuoted,
    /// A literal block scalar, introduced by `|`.
    Literal,
    /// A folded block scalar, introduced by `>`.
    Folded,
}

impl ScalarStyle {
    /// `true` for single- and double-quoted scalars.
    pub fn is_quoted(self) -> bool {
        matches!(self, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted)
    }

    /// `true` for literal (`|`) and folded (`>`) block scalars.
    pub fn is_block(self) -> bool {
        matches!(self, ScalarStyle::Literal | ScalarStyle::Folded)
    }

    pub(crate) fn from_parser(style: saphyr_parser::ScalarStyle) -> Self {
        match style {
            saphyr_parser::ScalarStyle::Plain => ScalarStyle::Plain,
            saphyr_parser::ScalarStyle::SingleQuoted => ScalarStyle::SingleQuoted,
            saphyr_parser::ScalarStyle::DoubleQuoted => ScalarStyle::DoubleQuoted,
            saphyr_parser::ScalarStyle::Literal => ScalarStyle::Literal,
            saphyr_parser::ScalarStyle::Folded => ScalarStyle::Folded,
        }
    }
}

/// A YAML value, resolved with the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum YamlValue {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` or `false` (in lower, title or upper case).
    Bool(bool),
    /// An integer that fits in 64 bits (larger ones become [`YamlValue::Float`]).
    Int(i64),
    /// A floating-point number, including `.inf`, `-.inf` and `.nan`.
    Float(f64),
    /// Any other scalar. Quoted and block scalars are always strings.
    String(String),
    /// A sequence (list) of nodes.
    Sequence(Vec<Node>),
    /// A mapping, as key/value pairs in source order. Keys are unique, and
    /// `<<` merge keys have already been applied.
    Mapping(Vec<(Node, Node)>),
}

impl YamlValue {
    /// Short name of the kind of value, for messages such as
    /// "expected a mapping, found a sequence".
    pub fn kind_name(&self) -> &'static str {
        match self {
            YamlValue::Null => "null",
            YamlValue::Bool(_) => "boolean",
            YamlValue::Int(_) => "integer",
            YamlValue::Float(_) => "number",
            YamlValue::String(_) => "string",
            YamlValue::Sequence(_) => "sequence",
            YamlValue::Mapping(_) => "mapping",
        }
    }

    /// [`kind_name`](Self::kind_name) with an article: "a mapping",
    /// "an integer", or plain "null".
    pub fn kind_with_article(&self) -> &'static str {
        match self {
            YamlValue::Null => "null",
            YamlValue::Bool(_) => "a boolean",
            YamlValue::Int(_) => "an integer",
            YamlValue::Float(_) => "a number",
            YamlValue::String(_) => "a string",
            YamlValue::Sequence(_) => "a sequence",
            YamlValue::Mapping(_) => "a mapping",
        }
    }

    /// `true` for everything except sequences and mappings.
    pub fn is_scalar(&self) -> bool {
        !matches!(self, YamlValue::Sequence(_) | YamlValue::Mapping(_))
    }
}

/// A value together with where it was written.
///
/// Nodes produced by expanding an alias (`*name`) are copies of the anchored
/// node: the copy's own span is the alias, while the nodes inside it keep the
/// positions of the text they were copied from.
///
/// `==` compares positions and styles too; compare [`Node::to_json`] results
/// to compare values alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The resolved value.
    pub value: YamlValue,
    /// Where the value was written.
    pub span: Span,
    /// How a scalar was written; `None` for sequences and mappings.
    pub style: Option<ScalarStyle>,
}

impl Node {
    /// Creates a node.
    pub fn new(value: YamlValue, span: Span, style: Option<ScalarStyle>) -> Self {
        Node { value, span, style }
    }

    /// See [`YamlValue::kind_name`].
    pub fn kind_name(&self) -> &'static str {
        self.value.kind_name()
    }

    /// See [`YamlValue::kind_with_article`].
    pub fn kind_with_article(&self) -> &'static str {
        self.value.kind_with_article()
    }

    /// `true` if the value is null.
    pub fn is_null(&self) -> bool {
        matches!(self.value, YamlValue::Null)
    }

    /// `true` if this is a scalar written without quotes or block indicator.
    pub fn is_plain_scalar(&self) -> bool {
        self.style == Some(ScalarStyle::Plain)
    }

    /// The string, if the value is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            YamlValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if the value is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            YamlValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, if the value is an integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self.value {
            YamlValue::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The number, if the value is an integer or a float.
    pub fn as_f64(&self) -> Option<f64> {
        match self.value {
            // Precision loss above 2^53 is inherent to asking for an f64.
            #[allow(clippy::cast_precision_loss)]
            YamlValue::Int(i) => Some(i as f64),
            YamlValue::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The items, if the value is a sequence.
    pub fn as_sequence(&self) -> Option<&[Node]> {
        match &self.value {
            YamlValue::Sequence(items) => Some(items),
            _ => None,
        }
    }

    /// The key/value pairs in source order, if the value is a mapping.
    pub fn as_mapping(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            YamlValue::Mapping(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value stored under the string key `key`, if this is a mapping
    /// that has it. Only string keys match: `get("1")` does not find `1:`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, value)| value)
    }

    /// Like [`get`](Self::get), but also returns the key node, whose span is
    /// where the key was written.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_mapping()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }
}
