//! Turns tokens into a tree, with GitHub's precedence, error messages and depth limit.
//!
//! Precedence, tightest first: `( )`, `[ ]` and `.`, `!`, `< <= > >=`, `== !=`, `&&`, `||`.

use crate::ast::{CompareOp, IndexKey, Node};
use crate::error::{Error, ErrorKind};
use crate::functions::Function;
use crate::lexer::{self, Token, TokenKind};
use crate::value::Value;

/// GitHub's limit on the depth of the expression tree.
pub const MAX_DEPTH: usize = 50;
/// GitHub's limit on the length of one expression.
pub const MAX_LENGTH: usize = 21_000;

/// Which names an expression may use. GitHub allows a different set of contexts and functions at
/// each workflow key (no `steps` in `runs-on`, no `hashFiles` outside steps): an unknown name is
/// a parse error.
#[derive(Clone, Copy, Debug, Default)]
pub struct ParseOptions<'a> {
    /// Allowed context names, compared ignoring case; `None` allows any name.
    pub named_values: Option<&'a [&'a str]>,
    /// Allowed functions beyond those available everywhere (`success`, `failure`, `cancelled`,
    /// `always`, `hashFiles`), compared ignoring case; `None` allows all of them.
    pub extra_functions: Option<&'a [&'a str]>,
    /// Whether `success()` and `failure()` may name jobs, as in a job's `if:` on GitHub:
    /// `success('build', 'test')` holds when those needs succeeded, `failure('build')` when one
    /// of them failed.
    pub status_function_args: bool,
}

impl<'a> ParseOptions<'a> {
    /// Any context name, every function, status functions with job names.
    pub fn permissive() -> Self {
        ParseOptions {
            status_function_args: true,
            ..Self::default()
        }
    }

    /// Only these context names; every function.
    pub fn with_named_values(names: &'a [&'a str]) -> Self {
        ParseOptions {
            named_values: Some(names),
            extra_functions: None,
            status_function_args: false,
        }
    }
}

/// Parses `source` into a tree. An empty (or blank) expression is `null`.
pub fn parse(source: &str, options: &ParseOptions) -> Result<Node, Error> {
    if source.len() > MAX_LENGTH {
        return Err(Error::within(
            ErrorKind::Parsing,
            format!("Exceeded max expression length {MAX_LENGTH}"),
            source,
        ));
    }
    let tokens = lexer::tokenize(source).map_err(|token| {
        Error::at(
            ErrorKind::Lexing,
            format!("Unexpected symbol: '{}'", token.text(source)),
            source,
            token.start,
        )
    })?;
    if tokens.is_empty() {
        return Ok(Node::Literal(Value::Null));
    }
    let mut parser = Parser {
        source,
        tokens,
        pos: 0,
        options,
    };
    let root = parser.or(0).map_err(|e| *e)?;
    if let Some(token) = parser.tokens.get(parser.pos) {
        return Err(*parser.unexpected(token));
    }
    Ok(root.node)
}

/// The contexts GitHub defines, to share their names instead of allocating copies.
const STANDARD_CONTEXTS: [&str; 12] = [
    "github", "env", "vars", "secrets", "inputs", "matrix", "strategy", "needs", "steps", "job",
    "jobs", "runner",
];

fn context_name(name: &str) -> std::borrow::Cow<'static, str> {
    match STANDARD_CONTEXTS
        .iter()
        .find(|c| c.eq_ignore_ascii_case(name))
    {
        Some(standard) => std::borrow::Cow::Borrowed(standard),
        None => std::borrow::Cow::Owned(name.to_string()),
    }
}

/// Parser results keep errors boxed: the success path, taken far more often, stays small.
type PResult<T> = Result<T, Box<Error>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Precedence {
    Or,
    And,
    Equality,
    Comparison,
    /// Above every binary operator: only a unary operand.
    Unary,
}

impl Precedence {
    /// The next tighter level, so that operators of one level associate to the left.
    fn tighter(self) -> Precedence {
        match self {
            Precedence::Or => Precedence::And,
            Precedence::And => Precedence::Equality,
            Precedence::Equality => Precedence::Comparison,
            Precedence::Comparison | Precedence::Unary => Precedence::Unary,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BinaryOp {
    Or,
    And,
    Compare(CompareOp),
}

fn binary_operator(kind: TokenKind) -> Option<(BinaryOp, Precedence)> {
    Some(match kind {
        TokenKind::Or => (BinaryOp::Or, Precedence::Or),
        TokenKind::And => (BinaryOp::And, Precedence::And),
        TokenKind::Eq => (BinaryOp::Compare(CompareOp::Eq), Precedence::Equality),
        TokenKind::Ne => (BinaryOp::Compare(CompareOp::Ne), Precedence::Equality),
        TokenKind::Lt => (BinaryOp::Compare(CompareOp::Lt), Precedence::Comparison),
        TokenKind::Le => (BinaryOp::Compare(CompareOp::Le), Precedence::Comparison),
        TokenKind::Gt => (BinaryOp::Compare(CompareOp::Gt), Precedence::Comparison),
        TokenKind::Ge => (BinaryOp::Compare(CompareOp::Ge), Precedence::Comparison),
        _ => return None,
    })
}

/// A subtree and its height (a leaf is 1).
struct Parsed {
    node: Node,
    height: usize,
}

struct Parser<'s, 'o> {
    source: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    options: &'o ParseOptions<'o>,
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<TokenKind> {
        self.tokens.get(self.pos).map(|t| t.kind)
    }

    fn next(&mut self) -> PResult<Token> {
        match self.tokens.get(self.pos) {
            Some(&token) => {
                self.pos += 1;
                Ok(token)
            }
            None => Err(self.unexpected_end()),
        }
    }

    fn expect(&mut self, kind: TokenKind) -> PResult<()> {
        let token = self.next()?;
        if token.kind == kind {
            Ok(())
        } else {
            Err(self.unexpected(&token))
        }
    }

    fn unexpected(&self, token: &Token) -> Box<Error> {
        Box::new(Error::at(
            ErrorKind::Parsing,
            format!("Unexpected symbol: '{}'", token.text(self.source)),
            self.source,
            token.start,
        ))
    }

    fn unexpected_end(&self) -> Box<Error> {
        let last = self.tokens.last();
        Box::new(Error::at(
            ErrorKind::Parsing,
            format!(
                "Unexpected end of expression: '{}'",
                last.map_or("", |t| t.text(self.source))
            ),
            self.source,
            last.map_or(0, |t| t.start),
        ))
    }

    fn too_deep(&self) -> Box<Error> {
        Box::new(Error::within(
            ErrorKind::Parsing,
            format!("Exceeded max expression depth {MAX_DEPTH}"),
            self.source,
        ))
    }

    /// Builds a node over `children`, enforcing the depth limit.
    fn node(&self, node: Node, child_heights: impl IntoIterator<Item = usize>) -> PResult<Parsed> {
        let height = 1 + child_heights.into_iter().max().unwrap_or(0);
        self.node_with_height(node, height)
    }

    fn node_with_height(&self, node: Node, height: usize) -> PResult<Parsed> {
        if height > MAX_DEPTH {
            return Err(self.too_deep());
        }
        Ok(Parsed { node, height })
    }

    // `ancestors` counts the nodes certain to sit above whatever is parsed next. It stops deep
    // nesting (`!!!!…`, `f(f(f(…` ) at the depth limit before the stack grows with it.
    fn check_ancestors(&self, ancestors: usize) -> PResult<()> {
        if ancestors >= MAX_DEPTH {
            Err(self.too_deep())
        } else {
            Ok(())
        }
    }

    fn or(&mut self, ancestors: usize) -> PResult<Parsed> {
        self.binary(Precedence::Or, ancestors)
    }

    /// Precedence climbing over the binary operators, all left-associative. A run of `||` (or
    /// of `&&`) becomes one n-ary node, as in GitHub.
    fn binary(&mut self, min: Precedence, ancestors: usize) -> PResult<Parsed> {
        let mut left = self.unary(ancestors)?;
        // The n-ary node this loop is extending, if `left` is one.
        let mut open_chain: Option<Precedence> = None;
        while let Some((op, precedence)) = self.peek().and_then(binary_operator) {
            if precedence < min {
                break;
            }
            self.pos += 1;
            let right = self.binary(precedence.tighter(), ancestors)?;
            left = match op {
                BinaryOp::Or | BinaryOp::And if open_chain == Some(precedence) => {
                    if let Node::Or(items) | Node::And(items) = &mut left.node {
                        items.push(right.node);
                    }
                    let height = left.height.max(right.height + 1);
                    self.node_with_height(left.node, height)?
                }
                BinaryOp::Or | BinaryOp::And => {
                    let heights = [left.height, right.height];
                    let mut items = Vec::with_capacity(4);
                    items.push(left.node);
                    items.push(right.node);
                    let node = if op == BinaryOp::Or {
                        Node::Or(items)
                    } else {
                        Node::And(items)
                    };
                    self.node(node, heights)?
                }
                BinaryOp::Compare(op) => self.compare(op, left, right)?,
            };
            open_chain = match op {
                BinaryOp::Or | BinaryOp::And => Some(precedence),
                BinaryOp::Compare(_) => None,
            };
        }
        Ok(left)
    }

    fn compare(&self, op: CompareOp, left: Parsed, right: Parsed) -> PResult<Parsed> {
        let heights = [left.height, right.height];
        let node = Node::Compare {
            op,
            operands: Box::new([left.node, right.node]),
        };
        self.node(node, heights)
    }

    fn unary(&mut self, ancestors: usize) -> PResult<Parsed> {
        if self.peek() == Some(TokenKind::Not) {
            self.pos += 1;
            self.check_ancestors(ancestors + 1)?;
            let inner = self.unary(ancestors + 1)?;
            return self.node(Node::Not(Box::new(inner.node)), [inner.height]);
        }
        self.postfix(ancestors)
    }

    fn postfix(&mut self, ancestors: usize) -> PResult<Parsed> {
        let mut target = self.primary(ancestors)?;
        loop {
            match self.peek() {
                Some(TokenKind::Dereference) => {
                    self.pos += 1;
                    let token = self.next()?;
                    let key = match token.kind {
                        TokenKind::Wildcard => IndexKey::Wildcard,
                        TokenKind::PropertyName => {
                            IndexKey::Property(token.text(self.source).into())
                        }
                        _ => return Err(self.unexpected(&token)),
                    };
                    target = self.index(target, key, 1)?;
                }
                Some(TokenKind::OpenIndex) => {
                    self.pos += 1;
                    if self.peek() == Some(TokenKind::Wildcard) {
                        self.pos += 1;
                        self.expect(TokenKind::CloseIndex)?;
                        target = self.index(target, IndexKey::Wildcard, 1)?;
                    } else {
                        self.check_ancestors(ancestors + 1)?;
                        let key = self.or(ancestors + 1)?;
                        self.expect(TokenKind::CloseIndex)?;
                        target =
                            self.index(target, IndexKey::Expr(Box::new(key.node)), key.height)?;
                    }
                }
                _ => return Ok(target),
            }
        }
    }

    fn index(&self, target: Parsed, key: IndexKey, key_height: usize) -> PResult<Parsed> {
        let heights = [target.height, key_height];
        let node = Node::Index {
            target: Box::new(target.node),
            key,
        };
        self.node(node, heights)
    }

    fn primary(&mut self, ancestors: usize) -> PResult<Parsed> {
        let token = self.next()?;
        let leaf = |node| Ok(Parsed { node, height: 1 });
        match token.kind {
            TokenKind::Null => leaf(Node::Literal(Value::Null)),
            TokenKind::Bool(b) => leaf(Node::Literal(Value::Bool(b))),
            TokenKind::Number(n) => leaf(Node::Literal(Value::Number(n))),
            TokenKind::String => leaf(Node::Literal(Value::String(lexer::string_value(
                token.text(self.source),
            )))),
            TokenKind::NamedValue => {
                let name = token.text(self.source);
                if let Some(allowed) = self.options.named_values {
                    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                        return Err(Box::new(Error::at(
                            ErrorKind::Parsing,
                            format!("Unrecognized named-value: '{name}'"),
                            self.source,
                            token.start,
                        )));
                    }
                }
                leaf(Node::NamedValue(context_name(name)))
            }
            TokenKind::Function => self.call(&token, ancestors),
            // Groups add no node, so only the stack bounds their nesting: grow it on demand.
            TokenKind::Open => stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
                let inner = self.or(ancestors)?;
                self.expect(TokenKind::Close)?;
                Ok(inner)
            }),
            _ => Err(self.unexpected(&token)),
        }
    }

    fn call(&mut self, name_token: &Token, ancestors: usize) -> PResult<Parsed> {
        let name = name_token.text(self.source);
        let error =
            |message: String| Error::at(ErrorKind::Parsing, message, self.source, name_token.start);
        let function = Function::lookup(name)
            .filter(|f| f.is_everywhere() || self.extra_function_allowed(f.name()))
            .ok_or_else(|| error(format!("Unrecognized function: '{name}'")))?;
        self.expect(TokenKind::Open)?;
        let mut args = Vec::new();
        let mut heights = Vec::new();
        if self.peek() == Some(TokenKind::Close) {
            self.pos += 1;
        } else {
            self.check_ancestors(ancestors + 1)?;
            loop {
                let arg = self.or(ancestors + 1)?;
                heights.push(arg.height);
                args.push(arg.node);
                let token = self.next()?;
                match token.kind {
                    TokenKind::Comma => continue,
                    TokenKind::Close => break,
                    _ => return Err(self.unexpected(&token)),
                }
            }
        }
        let names_jobs = self.options.status_function_args
            && matches!(function, Function::Success | Function::Failure);
        if !names_jobs {
            function.check_arity(args.len()).map_err(error)?;
        }
        self.node(Node::Call { function, args }, heights)
    }

    fn extra_function_allowed(&self, name: &str) -> bool {
        self.options
            .extra_functions
            .is_none_or(|allowed| allowed.iter().any(|a| a.eq_ignore_ascii_case(name)))
    }
}
