//! Evaluates an expression tree against contexts.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use crate::ast::{CompareOp, IndexKey, Node};
use crate::error::Error;
use crate::fold;
use crate::hash_files::WorkspaceFiles;
use crate::number;
use crate::value::{Object, Value};

/// Where expressions find their named values (`github`, `env`, `matrix`, …).
///
/// Lookups return references: evaluation reads contexts in place and copies only what an
/// expression produces.
pub trait Contexts {
    /// The context called `name`, matched ignoring case.
    fn lookup(&self, name: &str) -> Option<&Value>;
}

impl Contexts for Object {
    fn lookup(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl Contexts for HashMap<String, Value> {
    fn lookup(&self, name: &str) -> Option<&Value> {
        self.iter()
            .find(|(k, _)| fold::eq_ignore_case(k, name))
            .map(|(_, v)| v)
    }
}

/// The status the status functions report: the job's (or, inside a composite action, the
/// action's) status so far; for a job's own `if:`, the combined result of its `needs`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    #[default]
    Success,
    Failure,
    Cancelled,
    /// A needed job was skipped and none failed: neither `success()` nor `failure()` holds, so
    /// only `always()` or `!cancelled()` runs the job, as on GitHub.
    Skipped,
}

/// GitHub's limit on memory held by intermediate results of one evaluation.
pub const MAX_MEMORY: usize = 1024 * 1024;

/// Everything an evaluation may consult besides the expression itself.
#[derive(Clone, Copy)]
pub struct EvalContext<'a> {
    pub contexts: &'a dyn Contexts,
    pub status: Status,
    /// The workspace, for `hashFiles`; without one `hashFiles` fails.
    pub files: Option<&'a dyn WorkspaceFiles>,
    pub max_memory: usize,
}

impl<'a> EvalContext<'a> {
    pub fn new(contexts: &'a dyn Contexts) -> Self {
        EvalContext {
            contexts,
            status: Status::Success,
            files: None,
            max_memory: MAX_MEMORY,
        }
    }

    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    pub fn with_files(mut self, files: &'a dyn WorkspaceFiles) -> Self {
        self.files = Some(files);
        self
    }
}

/// Evaluates `root` in `context`.
pub fn evaluate(root: &Node, context: &EvalContext) -> Result<Value, Error> {
    let mut evaluator = Evaluator {
        context,
        memory: Memory::new(context.max_memory),
    };
    Ok(evaluator.eval(root, 0)?.into_owned())
}

/// The memory a null, boolean or number counts for.
const SCALAR_SIZE: usize = 24;

/// Accounts for the results of functions that are still alive, level by level of the tree, as
/// GitHub does: a result stays counted until its parent has consumed it.
pub(crate) struct Memory {
    max: usize,
    total: usize,
    by_depth: Vec<usize>,
}

impl Memory {
    fn new(max: usize) -> Self {
        Memory {
            max,
            total: 0,
            by_depth: Vec::new(),
        }
    }

    pub(crate) fn exceeded() -> Error {
        Error::evaluation("The maximum allowed memory size was exceeded")
    }

    /// Records a result of `bytes` at `depth`, releasing the results below it. Results no
    /// bigger than a scalar are not recorded: they cannot add up to the limit, and skipping them
    /// keeps evaluation of plain conditions free of allocation.
    pub(crate) fn add(&mut self, depth: usize, bytes: usize) -> Result<(), Error> {
        while self.by_depth.len() > depth + 1 {
            self.total -= self.by_depth.pop().unwrap_or(0);
        }
        if bytes <= SCALAR_SIZE && self.by_depth.len() <= depth {
            return Ok(());
        }
        if self.by_depth.len() <= depth {
            self.by_depth.resize(depth + 1, 0);
        }
        self.by_depth[depth] += bytes;
        self.total += bytes;
        if self.total > self.max {
            return Err(Self::exceeded());
        }
        Ok(())
    }

    /// Fails if a result still being built, of `bytes` so far, would not fit.
    pub(crate) fn check_growth(&self, bytes: usize) -> Result<(), Error> {
        if self.total + bytes > self.max {
            return Err(Self::exceeded());
        }
        Ok(())
    }

    pub(crate) fn remaining(&self) -> usize {
        self.max.saturating_sub(self.total)
    }
}

pub(crate) struct Evaluator<'a> {
    pub(crate) context: &'a EvalContext<'a>,
    pub(crate) memory: Memory,
}

/// The result of an index: `x.*` and anything indexed after it is a "filtered array", whose
/// further indexing applies to each element.
enum Indexed<'n> {
    Single(Cow<'n, Value>),
    Filtered(Vec<Value>),
}

static NULL: Value = Value::Null;

impl<'a> Evaluator<'a> {
    /// Evaluates `node`. Values read from contexts or literals come back borrowed.
    pub(crate) fn eval<'n>(&mut self, node: &'n Node, depth: usize) -> Result<Cow<'n, Value>, Error>
    where
        'a: 'n,
    {
        Ok(match node {
            Node::Literal(v) => Cow::Borrowed(v),
            Node::NamedValue(name) => {
                Cow::Borrowed(self.context.contexts.lookup(name).unwrap_or(&NULL))
            }
            Node::Index { .. } => match self.index(node, depth)? {
                Indexed::Single(v) => v,
                Indexed::Filtered(items) => Cow::Owned(Value::array(items)),
            },
            Node::Not(inner) => Cow::Owned(Value::Bool(!self.eval(inner, depth + 1)?.is_truthy())),
            Node::And(items) => {
                let mut last = Cow::Borrowed(&NULL);
                for item in items {
                    last = self.eval(item, depth + 1)?;
                    if !last.is_truthy() {
                        break;
                    }
                }
                last
            }
            Node::Or(items) => {
                let mut last = Cow::Borrowed(&NULL);
                for item in items {
                    last = self.eval(item, depth + 1)?;
                    if last.is_truthy() {
                        break;
                    }
                }
                last
            }
            Node::Compare { op, operands } => {
                let [left, right] = &**operands;
                let l = self.eval(left, depth + 1)?;
                let r = self.eval(right, depth + 1)?;
                let (l, r) = (&*l, &*r);
                Cow::Owned(Value::Bool(match op {
                    CompareOp::Eq => loose_eq(l, r),
                    CompareOp::Ne => !loose_eq(l, r),
                    CompareOp::Lt => loose_cmp(l, r) == Some(Ordering::Less),
                    CompareOp::Gt => loose_cmp(l, r) == Some(Ordering::Greater),
                    CompareOp::Le => loose_eq(l, r) || loose_cmp(l, r) == Some(Ordering::Less),
                    CompareOp::Ge => loose_eq(l, r) || loose_cmp(l, r) == Some(Ordering::Greater),
                }))
            }
            Node::Call { function, args } => self.call(*function, args, depth)?,
        })
    }

    fn index<'n>(&mut self, node: &'n Node, depth: usize) -> Result<Indexed<'n>, Error>
    where
        'a: 'n,
    {
        let Node::Index { target, key } = node else {
            return Ok(Indexed::Single(self.eval(node, depth)?));
        };
        let base = self.index(target, depth + 1)?;
        let key = match key {
            IndexKey::Wildcard => None,
            IndexKey::Property(name) => Some(Key::Property(name)),
            IndexKey::Expr(k) => Some(Key::Value(self.eval(k, depth + 1)?.into_owned())),
        };
        Ok(match (base, key) {
            (Indexed::Single(v), None) => Indexed::Filtered(children(&v).cloned().collect()),
            (Indexed::Single(Cow::Borrowed(v)), Some(k)) => {
                Indexed::Single(Cow::Borrowed(k.index(v).unwrap_or(&NULL)))
            }
            (Indexed::Single(Cow::Owned(v)), Some(k)) => {
                Indexed::Single(Cow::Owned(k.index(&v).cloned().unwrap_or_default()))
            }
            (Indexed::Filtered(items), None) => {
                Indexed::Filtered(items.iter().flat_map(children).cloned().collect())
            }
            (Indexed::Filtered(items), Some(k)) => {
                Indexed::Filtered(items.iter().filter_map(|v| k.index(v)).cloned().collect())
            }
        })
    }
}

/// What an index looks up: a property name as written, or a computed value.
enum Key<'a> {
    Property(&'a str),
    Value(Value),
}

impl Key<'_> {
    fn index<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        match (self, v) {
            (Key::Property(name), Value::Object(o)) => o.get(name),
            (Key::Property(_), _) => None,
            (Key::Value(key), _) => index_value(v, key),
        }
    }
}

/// The elements of an array or the values of an object; nothing for other values.
fn children(v: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match v {
        Value::Array(items) => Box::new(items.iter()),
        Value::Object(o) => Box::new(o.values()),
        _ => Box::new(std::iter::empty()),
    }
}

/// `v[key]`: arrays take a number (coerced, floored), objects a string (numbers, booleans and
/// null coerced to their string form). `None` when there is no such element.
fn index_value<'v>(v: &'v Value, key: &Value) -> Option<&'v Value> {
    match v {
        Value::Array(items) => {
            let n = key.to_number();
            if n >= 0.0 && n < items.len() as f64 {
                items.get(n.floor() as usize)
            } else {
                None
            }
        }
        Value::Object(o) => match key {
            Value::Array(_) | Value::Object(_) => None,
            Value::String(s) => o.get(s),
            other => o.get(&other.display_str()),
        },
        _ => None,
    }
}

/// A value reduced for comparison: GitHub converts operands of different kinds to numbers
/// before comparing, except that arrays and objects never convert.
enum Operand<'a> {
    Null,
    Bool(bool),
    Number(f64),
    String(&'a str),
    Container(&'a Value),
}

impl<'a> Operand<'a> {
    fn of(v: &'a Value) -> Self {
        match v {
            Value::Null => Operand::Null,
            Value::Bool(b) => Operand::Bool(*b),
            Value::Number(n) => Operand::Number(*n),
            Value::String(s) => Operand::String(s),
            Value::Array(_) | Value::Object(_) => Operand::Container(v),
        }
    }

    fn to_number(&self) -> Option<f64> {
        match self {
            Operand::Null => Some(0.0),
            Operand::Bool(b) => Some(f64::from(u8::from(*b))),
            Operand::Number(n) => Some(*n),
            Operand::String(s) => Some(number::parse(s)),
            Operand::Container(_) => None,
        }
    }
}

/// Brings two operands to one kind, as GitHub's `CoerceTypes` does. `None` when the kinds stay
/// different (an array or object against anything else).
fn coerce<'a>(l: Operand<'a>, r: Operand<'a>) -> Option<(Operand<'a>, Operand<'a>)> {
    use Operand as O;
    match (&l, &r) {
        (O::Null, O::Null)
        | (O::Bool(_), O::Bool(_))
        | (O::Number(_), O::Number(_))
        | (O::String(_), O::String(_)) => Some((l, r)),
        (O::Container(a), O::Container(b)) if a.kind() == b.kind() => Some((l, r)),
        (O::Container(_), _) | (_, O::Container(_)) => None,
        _ => Some((O::Number(l.to_number()?), O::Number(r.to_number()?))),
    }
}

/// GitHub's `==`: loose, case-insensitive for strings, identity for arrays and objects.
pub(crate) fn loose_eq(l: &Value, r: &Value) -> bool {
    match coerce(Operand::of(l), Operand::of(r)) {
        Some((Operand::Null, Operand::Null)) => true,
        Some((Operand::Bool(a), Operand::Bool(b))) => a == b,
        Some((Operand::Number(a), Operand::Number(b))) => a == b,
        Some((Operand::String(a), Operand::String(b))) => fold::eq_ignore_case(a, b),
        Some((Operand::Container(a), Operand::Container(b))) => a.same_container(b),
        _ => false,
    }
}

/// GitHub's ordering for `<` and `>`; `None` where they are both false.
pub(crate) fn loose_cmp(l: &Value, r: &Value) -> Option<Ordering> {
    match coerce(Operand::of(l), Operand::of(r))? {
        (Operand::Bool(a), Operand::Bool(b)) => Some(a.cmp(&b)),
        (Operand::Number(a), Operand::Number(b)) => a.partial_cmp(&b),
        (Operand::String(a), Operand::String(b)) => Some(fold::cmp_ignore_case(a, b)),
        _ => None,
    }
}
