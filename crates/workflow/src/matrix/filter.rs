//! `include` and `exclude` filters: GitHub turns every leaf of an entry into the expression
//! `matrix[<path>] == <literal>` and requires all of them to be true.

use std::sync::OnceLock;

use hearth_expr::{EvalContext, Expression, Object, ParseOptions, Value as ExprValue};
use serde_json::Value;

/// One step of a leaf's path.
enum Step {
    Key(String),
    Index(usize),
}

struct Leaf {
    path: Vec<Step>,
    literal: ExprValue,
}

/// The leaves of one `include` (its vector keys) or `exclude` entry.
pub(crate) struct Filter {
    leaves: Vec<Leaf>,
}

/// A combination of the cross product as the expression language sees it.
pub(crate) struct MatrixView {
    root: ExprValue,
}

impl MatrixView {
    pub(crate) fn new<'k>(entries: impl Iterator<Item = (&'k str, ExprValue)>) -> Self {
        let mut object = Object::new();
        for (key, value) in entries {
            object.insert(key, value);
        }
        MatrixView {
            root: ExprValue::object(object),
        }
    }
}

impl Filter {
    pub(crate) fn new<'a>(entries: impl Iterator<Item = (&'a String, &'a Value)>) -> Self {
        let mut leaves = Vec::new();
        for (key, value) in entries {
            collect(vec![Step::Key(key.clone())], value, &mut leaves);
        }
        Filter { leaves }
    }

    /// Whether every leaf equals the combination's value at its path. A filter without leaves
    /// (only empty mappings and sequences, or no vector keys at all) matches everything.
    pub(crate) fn matches(&self, matrix: &MatrixView) -> bool {
        self.leaves.iter().all(|leaf| {
            let actual = lookup(&matrix.root, &leaf.path);
            loose_eq(actual.unwrap_or(&ExprValue::Null), &leaf.literal)
        })
    }
}

/// Depth first, as GitHub walks the entry: mappings by key, sequences by index.
fn collect(path: Vec<Step>, value: &Value, leaves: &mut Vec<Leaf>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let mut path = clone_path(&path);
                path.push(Step::Key(key.clone()));
                collect(path, item, leaves);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let mut path = clone_path(&path);
                path.push(Step::Index(index));
                collect(path, item, leaves);
            }
        }
        scalar => leaves.push(Leaf {
            path,
            literal: ExprValue::from_json(scalar),
        }),
    }
}

fn clone_path(path: &[Step]) -> Vec<Step> {
    path.iter()
        .map(|step| match step {
            Step::Key(k) => Step::Key(k.clone()),
            Step::Index(i) => Step::Index(*i),
        })
        .collect()
}

/// `matrix['a'][0]…`: keys ignore case; a missing value is `null`.
fn lookup<'v>(root: &'v ExprValue, path: &[Step]) -> Option<&'v ExprValue> {
    let mut current = root;
    for step in path {
        current = match step {
            Step::Key(key) => current.as_object()?.get(key)?,
            Step::Index(index) => current.as_array()?.get(*index)?,
        };
    }
    Some(current)
}

/// The expression language's `==` (loose, case-insensitive strings), evaluated by
/// `hearth-expr` so that the rules stay in one place.
fn loose_eq(left: &ExprValue, right: &ExprValue) -> bool {
    static EQ: OnceLock<Option<Expression>> = OnceLock::new();
    let Some(expression) =
        EQ.get_or_init(|| Expression::parse("l == r", &ParseOptions::permissive()).ok())
    else {
        return false;
    };
    let mut contexts = Object::with_capacity(2);
    contexts.insert("l", left.clone());
    contexts.insert("r", right.clone());
    expression
        .evaluate(&EvalContext::new(&contexts))
        .map(|v| v.is_truthy())
        .unwrap_or(false)
}
