//! The walker the model loaders share: it reads values of the expected
//! shape out of the YAML tree and records a diagnostic for each mismatch.
//!
//! Every read takes a [`Loc`], which carries the schema path (to look up
//! keys and contexts in [`Schema`]) and the concrete path (for messages).
//! Reads never stop the walk: a bad value is reported and skipped, so one
//! pass finds every problem in the file.

use super::diagnostic::{Diagnostic, Diagnostics};
use super::expression;
use super::schema::{ContextSet, Schema};
use super::suggest::did_you_mean;
use crate::model::common::{Env, OrExpr, Scalar, Spanned, StringMap, Text};
use crate::yaml::{Node, Pos, YamlValue};

/// Where a value is: its schema path and its concrete path.
#[derive(Debug, Clone)]
pub(crate) struct Loc {
    /// Schema path, e.g. `jobs.*.steps[].uses`.
    pub schema: String,
    /// Concrete path, e.g. `jobs.build.steps[2].uses`.
    pub path: String,
}

impl Loc {
    pub fn root() -> Loc {
        Loc {
            schema: String::new(),
            path: String::new(),
        }
    }

    fn join(base: &str, key: &str) -> String {
        if base.is_empty() {
            key.to_owned()
        } else {
            format!("{base}.{key}")
        }
    }

    /// A fixed key of a mapping.
    pub fn key(&self, key: &str) -> Loc {
        Loc {
            schema: Self::join(&self.schema, key),
            path: Self::join(&self.path, key),
        }
    }

    /// A free-form key of a mapping (a job id, an env name).
    pub fn any_key(&self, key: &str) -> Loc {
        Loc {
            schema: Self::join(&self.schema, "*"),
            path: Self::join(&self.path, key),
        }
    }

    /// An item of a sequence.
    pub fn item(&self, index: usize) -> Loc {
        Loc {
            schema: format!("{}[]", self.schema),
            path: format!("{}[{index}]", self.path),
        }
    }

    /// The same place under another schema path: parallel steps are read
    /// as the steps they are.
    pub fn with_schema(&self, schema: &str) -> Loc {
        Loc {
            schema: schema.to_owned(),
            path: self.path.clone(),
        }
    }

    /// How messages name the mapping at this place.
    pub fn describe(&self, root: &str) -> String {
        if self.path.is_empty() {
            return root.to_owned();
        }
        if let Some(job) = self.path.strip_prefix("jobs.") {
            if self.schema == "jobs.*" {
                return format!("job '{job}'");
            }
        }
        format!("'{}'", self.path)
    }
}

/// Reads one file, collecting diagnostics.
pub(crate) struct Reader<'a> {
    file: &'a str,
    schema: &'static Schema,
    /// How the root mapping is named in messages: "the workflow".
    root_name: &'static str,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a str, schema: &'static Schema, root_name: &'static str) -> Self {
        Reader {
            file,
            schema,
            root_name,
            diagnostics: Vec::new(),
        }
    }

    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::new(self.file, pos, message.into()));
    }

    /// `value` if no problem was found, all problems in source order
    /// otherwise.
    pub fn finish<T>(mut self, value: T) -> Result<T, Diagnostics> {
        if self.diagnostics.is_empty() {
            return Ok(value);
        }
        // Stable: problems at one position keep the order they were found in.
        self.diagnostics.sort_by_key(|d| d.pos);
        self.diagnostics.dedup();
        Err(Diagnostics(self.diagnostics))
    }

    pub fn has_errors(&self) -> bool {
        !self.diagnostics.is_empty()
    }

    pub fn describe(&self, loc: &Loc) -> String {
        loc.describe(self.root_name)
    }

    /// Reports that `node` at `loc` is not of the `expected` kind.
    pub fn wrong_type(&mut self, node: &Node, loc: &Loc, expected: &str) {
        let place = self.describe(loc);
        self.error(
            node.span.start,
            format!(
                "{place}: expected {expected}, found {}",
                node.kind_with_article()
            ),
        );
    }

    /// The contexts expressions at `loc` may use, if any.
    pub fn contexts(&self, loc: &Loc) -> Option<&'static ContextSet> {
        self.schema.contexts(&loc.schema)
    }

    /// `true` if `node` is a string holding an expression and `loc` allows
    /// expressions: such a value stands for any type, computed later.
    pub fn is_expression_here(&self, node: &Node, loc: &Loc) -> bool {
        node.as_str().is_some_and(expression::has_expression) && self.contexts(loc).is_some()
    }

    /// Checks the expressions in the string `node` against what `loc`
    /// allows, reporting problems at their position in the file.
    pub fn check_expressions(&mut self, node: &Node, loc: &Loc, condition: bool) {
        let Some(raw) = node.as_str() else {
            return;
        };
        match self.contexts(loc) {
            Some(contexts) => {
                if !condition && !expression::has_expression(raw) {
                    return;
                }
                if let Err(problem) = expression::check(raw, contexts, condition) {
                    let pos = expression::position_in_scalar(node, problem.offset);
                    self.error(pos, problem.message);
                }
            }
            None => {
                if expression::has_expression(raw) {
                    let offset = expression::first_expression_offset(raw);
                    let pos = expression::position_in_scalar(node, offset);
                    self.error(
                        pos,
                        format!("a template expression is not allowed in '{}'", loc.path),
                    );
                }
            }
        }
    }

    /// Checks the expressions of a mapping key: `${{ insert }}` is a key wherever the mapping
    /// allows expressions, as on GitHub.
    fn check_key_expressions(&mut self, key: &Node, loc: &Loc) {
        let insert = key.as_str().is_some_and(crate::model::is_insert_directive);
        if insert && self.contexts(loc).is_some() {
            return;
        }
        self.check_expressions(key, loc, false);
    }

    /// Checks every string anywhere inside `node` (for free-form values such
    /// as a matrix) with the contexts of `loc`.
    pub fn check_expressions_deep(&mut self, node: &Node, loc: &Loc) {
        match &node.value {
            YamlValue::String(_) => self.check_expressions(node, loc, false),
            YamlValue::Sequence(items) => {
                for item in items {
                    self.check_expressions_deep(item, loc);
                }
            }
            YamlValue::Mapping(entries) => {
                for (key, value) in entries {
                    self.check_key_expressions(key, loc);
                    self.check_expressions_deep(value, loc);
                }
            }
            _ => {}
        }
    }

    /// The entries of the mapping `node`, or a diagnostic.
    pub fn mapping<'n>(&mut self, node: &'n Node, loc: &Loc) -> Option<&'n [(Node, Node)]> {
        match node.as_mapping() {
            Some(entries) => Some(entries),
            None => {
                self.wrong_type(node, loc, "a mapping");
                None
            }
        }
    }

    /// The items of the sequence `node`, or a diagnostic.
    pub fn sequence<'n>(&mut self, node: &'n Node, loc: &Loc) -> Option<&'n [Node]> {
        match node.as_sequence() {
            Some(items) => Some(items),
            None => {
                self.wrong_type(node, loc, "a sequence");
                None
            }
        }
    }

    /// The entries of a mapping with fixed keys, each with its key as a
    /// string; unknown and non-string keys are reported and left out.
    pub fn fixed_entries<'n>(
        &mut self,
        entries: &'n [(Node, Node)],
        loc: &Loc,
    ) -> Vec<(&'n str, &'n Node, &'n Node)> {
        let allowed = self.schema.keys(&loc.schema).unwrap_or(&[]);
        let mut known = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let Some(name) = key.as_str() else {
                let place = self.describe(loc);
                self.error(
                    key.span.start,
                    format!(
                        "{place}: keys must be strings, found {}",
                        key.kind_with_article()
                    ),
                );
                continue;
            };
            if allowed.contains(&name) {
                known.push((name, key, value));
            } else {
                self.unknown_key(key, name, loc, allowed);
            }
        }
        known
    }

    pub fn unknown_key(&mut self, key: &Node, name: &str, loc: &Loc, allowed: &[&str]) {
        let place = self.describe(loc);
        let hint = did_you_mean(name, allowed.iter().copied());
        self.error(
            key.span.start,
            format!("unknown key '{name}' in {place}{hint}"),
        );
    }

    /// The key of a free-form mapping (a job id, an env name): a non-empty
    /// string.
    pub fn loose_key(&mut self, key: &Node, loc: &Loc) -> Option<Text> {
        let place = self.describe(loc);
        match &key.value {
            YamlValue::String(s) if !s.is_empty() => {
                self.check_key_expressions(key, loc);
                Some(Spanned::new(s.clone(), key.span))
            }
            YamlValue::String(_) => {
                self.error(key.span.start, format!("{place}: keys must not be empty"));
                None
            }
            YamlValue::Int(_) | YamlValue::Float(_) | YamlValue::Bool(_) => {
                Some(Spanned::new(scalar_text(key).unwrap_or_default(), key.span))
            }
            _ => {
                self.error(
                    key.span.start,
                    format!(
                        "{place}: keys must be strings, found {}",
                        key.kind_with_article()
                    ),
                );
                None
            }
        }
    }

    /// A string. Other scalars become their text, as GitHub converts them;
    /// collections are reported.
    pub fn string(&mut self, node: &Node, loc: &Loc) -> Option<Text> {
        match scalar_text(node) {
            Some(text) => {
                self.check_expressions(node, loc, false);
                Some(Spanned::new(text, node.span))
            }
            None => {
                self.wrong_type(node, loc, "a string");
                None
            }
        }
    }

    /// A string that must not be empty.
    pub fn non_empty_string(&mut self, node: &Node, loc: &Loc) -> Option<Text> {
        let text = self.string(node, loc)?;
        if text.value.is_empty() {
            let place = self.describe(loc);
            self.error(node.span.start, format!("{place}: must not be empty"));
            return None;
        }
        Some(text)
    }

    /// A string that must be one of `allowed`.
    pub fn one_of(&mut self, node: &Node, loc: &Loc, allowed: &[&str]) -> Option<Text> {
        let text = self.string(node, loc)?;
        if allowed.contains(&text.value.as_str()) {
            return Some(text);
        }
        let place = self.describe(loc);
        let hint = did_you_mean(&text.value, allowed.iter().copied());
        let hint = if hint.is_empty() {
            format!(" (expected one of: {})", allowed.join(", "))
        } else {
            hint
        };
        self.error(
            node.span.start,
            format!("{place}: unexpected value '{}'{hint}", text.value),
        );
        None
    }

    /// A boolean, or an expression where `loc` allows one.
    pub fn boolean(&mut self, node: &Node, loc: &Loc) -> Option<OrExpr<bool>> {
        if let Some(b) = node.as_bool() {
            return Some(OrExpr::Value(b));
        }
        if self.is_expression_here(node, loc) {
            return self.string(node, loc).map(OrExpr::Expr);
        }
        self.wrong_type(node, loc, "a boolean");
        None
    }

    /// A boolean that may not be an expression.
    pub fn plain_boolean(&mut self, node: &Node, loc: &Loc) -> Option<Spanned<bool>> {
        match node.as_bool() {
            Some(b) => Some(Spanned::new(b, node.span)),
            None => {
                self.check_expressions(node, loc, false);
                self.wrong_type(node, loc, "a boolean");
                None
            }
        }
    }

    /// A number, or an expression where `loc` allows one.
    pub fn number(&mut self, node: &Node, loc: &Loc) -> Option<OrExpr<f64>> {
        if let Some(n) = node.as_f64() {
            return Some(OrExpr::Value(n));
        }
        if self.is_expression_here(node, loc) {
            return self.string(node, loc).map(OrExpr::Expr);
        }
        self.wrong_type(node, loc, "a number");
        None
    }

    /// A scalar of any type, kept as written.
    pub fn scalar(&mut self, node: &Node, loc: &Loc) -> Option<Spanned<Scalar>> {
        let scalar = match &node.value {
            YamlValue::Null => Scalar::Null,
            YamlValue::Bool(b) => Scalar::Bool(*b),
            YamlValue::Int(_) | YamlValue::Float(_) => Scalar::Number(node.as_f64().unwrap_or(0.0)),
            YamlValue::String(s) => {
                self.check_expressions(node, loc, false);
                Scalar::String(s.clone())
            }
            YamlValue::Sequence(_) | YamlValue::Mapping(_) => {
                self.wrong_type(node, loc, "a string, a number or a boolean");
                return None;
            }
        };
        Some(Spanned::new(scalar, node.span))
    }

    /// A non-empty string or a sequence of them (`branches`, `needs`,
    /// `runs-on`). A single expression where a list is expected is kept as
    /// the one item; it is expected to produce the list.
    pub fn string_list(&mut self, node: &Node, loc: &Loc) -> Vec<Text> {
        match &node.value {
            YamlValue::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.non_empty_string(item, &loc.item(i)))
                .collect(),
            YamlValue::Mapping(_) => {
                self.wrong_type(node, loc, "a string or a sequence of strings");
                Vec::new()
            }
            _ => self.non_empty_string(node, loc).into_iter().collect(),
        }
    }

    /// A sequence of non-empty strings (`ports`, `volumes`), or one
    /// expression producing it.
    pub fn sequence_of_strings(&mut self, node: &Node, loc: &Loc) -> Vec<Text> {
        if self.is_expression_here(node, loc) {
            return self.string(node, loc).into_iter().collect();
        }
        let Some(items) = self.sequence(node, loc) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.non_empty_string(item, &loc.item(i)))
            .collect()
    }

    /// A mapping of names to strings (`env`, a step's `with`), or one
    /// expression producing it.
    pub fn string_map(&mut self, node: &Node, loc: &Loc) -> Option<Env> {
        if self.is_expression_here(node, loc) {
            return self.string(node, loc).map(OrExpr::Expr);
        }
        if node.is_null() {
            // `env:` with nothing under it is an empty mapping.
            return Some(OrExpr::Value(StringMap {
                entries: Vec::new(),
                span: node.span,
            }));
        }
        let entries = self.mapping(node, loc)?;
        let mut map = StringMap {
            entries: Vec::with_capacity(entries.len()),
            span: node.span,
        };
        for (key, value) in entries {
            let Some(name) = self.loose_key(key, loc) else {
                continue;
            };
            let value_loc = loc.any_key(&name.value);
            if let Some(text) = self.string(value, &value_loc) {
                map.entries.push((name, text));
            }
        }
        Some(OrExpr::Value(map))
    }

    /// An `if:` condition: a string (with or without `${{ }}`), a boolean or
    /// a number, checked as a condition.
    pub fn condition(&mut self, node: &Node, loc: &Loc) -> Option<Text> {
        let Some(text) = scalar_text(node) else {
            self.wrong_type(node, loc, "a string");
            return None;
        };
        if node.as_str().is_some() {
            self.check_expressions(node, loc, true);
        }
        Some(Spanned::new(text, node.span))
    }
}

/// The text of a scalar as GitHub converts it to a string; `None` for
/// collections.
pub(crate) fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        YamlValue::Null => Some(String::new()),
        YamlValue::Bool(b) => Some(b.to_string()),
        YamlValue::Int(i) => Some(i.to_string()),
        YamlValue::Float(f) => Some(hearth_expr::format_number(*f)),
        YamlValue::String(s) => Some(s.clone()),
        YamlValue::Sequence(_) | YamlValue::Mapping(_) => None,
    }
}
