//! The parsed form of an expression.

use crate::functions::Function;
use crate::value::Value;

/// A node of the expression tree. `a || b || c` and `a && b && c` are single n-ary nodes, as in
/// GitHub, which matters for the depth limit.
#[derive(Clone, Debug)]
pub enum Node {
    Literal(Value),
    /// A context, such as `github`; looked up ignoring case. The standard contexts' names are
    /// static, so parsing the usual conditions does not allocate for them.
    NamedValue(std::borrow::Cow<'static, str>),
    /// `target.name`, `target[expr]`, `target.*` and `target[*]`.
    Index {
        target: Box<Node>,
        key: IndexKey,
    },
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    /// Both operands in one allocation.
    Compare {
        op: CompareOp,
        operands: Box<[Node; 2]>,
    },
    Call {
        function: Function,
        args: Vec<Node>,
    },
}

#[derive(Clone, Debug)]
pub enum IndexKey {
    /// `.*` and `[*]`.
    Wildcard,
    /// `.name`.
    Property(std::sync::Arc<str>),
    /// `[expr]`.
    Expr(Box<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Node {
    /// Calls `visit` on this node and every node below it.
    pub fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a Node)) {
        visit(self);
        match self {
            Node::Literal(_) | Node::NamedValue(_) => {}
            Node::Index { target, key } => {
                target.walk(visit);
                if let IndexKey::Expr(key) = key {
                    key.walk(visit);
                }
            }
            Node::Not(inner) => inner.walk(visit),
            Node::And(items) | Node::Or(items) | Node::Call { args: items, .. } => {
                items.iter().for_each(|n| n.walk(visit))
            }
            Node::Compare { operands, .. } => operands.iter().for_each(|n| n.walk(visit)),
        }
    }

    /// Whether the expression calls `success()`, `failure()`, `cancelled()` or `always()`
    /// anywhere: an `if:` that does not is implicitly `success() && (...)`.
    pub fn uses_status_function(&self) -> bool {
        let mut found = false;
        self.walk(&mut |n| {
            if let Node::Call { function, .. } = n {
                found |= function.is_status();
            }
        });
        found
    }

    /// The context names the expression refers to, in order of first use.
    pub fn named_values(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        self.walk(&mut |n| {
            if let Node::NamedValue(name) = n {
                if !names.iter().any(|x| x.eq_ignore_ascii_case(name)) {
                    names.push(name);
                }
            }
        });
        names
    }
}
