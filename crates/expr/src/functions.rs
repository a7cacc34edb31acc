//! The built-in functions: their names, arity, and what they compute.

use std::borrow::Cow;

use crate::ast::Node;
use crate::error::Error;
use crate::eval::{loose_eq, Evaluator, Status};
use crate::fold;
use crate::json;
use crate::value::Value;

/// A function GitHub defines. Names are matched ignoring case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Contains,
    StartsWith,
    EndsWith,
    Format,
    Join,
    ToJson,
    FromJson,
    Case,
    HashFiles,
    Success,
    Failure,
    Cancelled,
    Always,
}

const ALL: [Function; 13] = [
    Function::Contains,
    Function::StartsWith,
    Function::EndsWith,
    Function::Format,
    Function::Join,
    Function::ToJson,
    Function::FromJson,
    Function::Case,
    Function::HashFiles,
    Function::Success,
    Function::Failure,
    Function::Cancelled,
    Function::Always,
];

/// No more parameters than a byte can count, as in GitHub's `format`.
const MANY: usize = 255;

impl Function {
    pub fn lookup(name: &str) -> Option<Function> {
        ALL.into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            Function::Contains => "contains",
            Function::StartsWith => "startsWith",
            Function::EndsWith => "endsWith",
            Function::Format => "format",
            Function::Join => "join",
            Function::ToJson => "toJSON",
            Function::FromJson => "fromJSON",
            Function::Case => "case",
            Function::HashFiles => "hashFiles",
            Function::Success => "success",
            Function::Failure => "failure",
            Function::Cancelled => "cancelled",
            Function::Always => "always",
        }
    }

    fn arity(self) -> (usize, usize) {
        match self {
            Function::Contains | Function::StartsWith | Function::EndsWith => (2, 2),
            Function::Format => (1, MANY),
            Function::Join => (1, 2),
            Function::ToJson | Function::FromJson => (1, 1),
            Function::Case => (3, MANY),
            Function::HashFiles => (1, MANY),
            Function::Success | Function::Failure | Function::Cancelled | Function::Always => {
                (0, 0)
            }
        }
    }

    /// The status functions, which an `if:` condition may use to opt out of the implicit
    /// `success() &&`.
    pub fn is_status(self) -> bool {
        matches!(
            self,
            Function::Success | Function::Failure | Function::Cancelled | Function::Always
        )
    }

    /// Whether GitHub allows the function at every key; the others (status functions and
    /// `hashFiles`) only where a key's schema lists them.
    pub fn is_everywhere(self) -> bool {
        !self.is_status() && self != Function::HashFiles
    }

    pub(crate) fn check_arity(self, count: usize) -> Result<(), String> {
        let (min, max) = self.arity();
        let name = self.name();
        if count < min {
            Err(format!("Too few parameters supplied: '{name}'"))
        } else if count > max {
            Err(format!("Too many parameters supplied: '{name}'"))
        } else if self == Function::Case && count.is_multiple_of(2) {
            Err(format!(
                "Even number of parameters supplied, requires an odd number of parameters: '{name}'"
            ))
        } else {
            Ok(())
        }
    }
}

fn is_primitive(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

impl<'a> Evaluator<'a> {
    pub(crate) fn call<'n>(
        &mut self,
        f: Function,
        args: &'n [Node],
        depth: usize,
    ) -> Result<Cow<'n, Value>, Error>
    where
        'a: 'n,
    {
        let arg = |i: usize| {
            args.get(i)
                .ok_or_else(|| Error::evaluation("missing parameter"))
        };
        let result = match f {
            Function::Contains => {
                let haystack = self.eval(arg(0)?, depth + 1)?;
                let needle = self.eval(arg(1)?, depth + 1)?;
                Value::Bool(match &*haystack {
                    Value::Array(items) => items.iter().any(|item| loose_eq(&needle, item)),
                    h if is_primitive(h) && is_primitive(&needle) => {
                        fold::contains_ignore_case(&h.display_str(), &needle.display_str())
                    }
                    _ => false,
                })
            }
            Function::StartsWith | Function::EndsWith => {
                let haystack = self.eval(arg(0)?, depth + 1)?;
                let affix = self.eval(arg(1)?, depth + 1)?;
                let matches = if f == Function::StartsWith {
                    fold::starts_with_ignore_case
                } else {
                    fold::ends_with_ignore_case
                };
                Value::Bool(
                    is_primitive(&haystack)
                        && is_primitive(&affix)
                        && matches(&haystack.display_str(), &affix.display_str()),
                )
            }
            Function::Format => return self.format(args, depth).map(Cow::Owned),
            Function::Join => {
                let items = self.eval(arg(0)?, depth + 1)?;
                let separator = match args.get(1) {
                    Some(node) => match &*self.eval(node, depth + 1)? {
                        v if is_primitive(v) => v.to_display_string(),
                        _ => ",".to_string(),
                    },
                    None => ",".to_string(),
                };
                match &*items {
                    Value::Array(items) => {
                        let mut out = String::new();
                        for (i, item) in items.iter().enumerate() {
                            if i > 0 {
                                out.push_str(&separator);
                            }
                            out.push_str(&item.display_str());
                            self.memory.check_growth(2 * out.len())?;
                        }
                        Value::string(out)
                    }
                    Value::Object(_) => Value::string(""),
                    primitive => Value::string(primitive.display_str()),
                }
            }
            Function::ToJson => {
                let value = self.eval(arg(0)?, depth + 1)?;
                let budget = self.memory.remaining() / 2;
                let text = json::to_pretty_string(&value, budget)
                    .ok_or_else(crate::eval::Memory::exceeded)?;
                Value::string(text)
            }
            Function::FromJson => {
                let text = self.eval(arg(0)?, depth + 1)?.to_display_string();
                let parsed: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| Error::evaluation(format!("Error parsing fromJson: {e}")))?;
                Value::from_json(&parsed)
            }
            Function::Case => {
                let mut pairs = args.chunks_exact(2);
                for pair in pairs.by_ref() {
                    let [predicate, value] = pair else { break };
                    match &*self.eval(predicate, depth + 1)? {
                        Value::Bool(true) => return self.eval(value, depth + 1),
                        Value::Bool(false) => {}
                        _ => {
                            return Err(Error::evaluation(
                                "case predicate must evaluate to a boolean value",
                            ))
                        }
                    }
                }
                let default = pairs
                    .remainder()
                    .first()
                    .ok_or_else(|| Error::evaluation("case requires a default value"))?;
                return self.eval(default, depth + 1);
            }
            Function::HashFiles => {
                let mut patterns = Vec::with_capacity(args.len());
                for node in args {
                    patterns.push(self.eval(node, depth + 1)?.to_display_string());
                }
                let files = self.context.files.ok_or_else(|| {
                    Error::evaluation("hashFiles is not available: no workspace is set")
                })?;
                Value::string(crate::hash_files::hash_files(files, &patterns)?)
            }
            Function::Success if !args.is_empty() => {
                let results = self.needs_results(args, depth)?;
                Value::Bool(results.iter().all(|r| r == "success"))
            }
            Function::Failure if !args.is_empty() => {
                let results = self.needs_results(args, depth)?;
                Value::Bool(results.iter().any(|r| r == "failure"))
            }
            Function::Success => Value::Bool(self.context.status == Status::Success),
            Function::Failure => Value::Bool(self.context.status == Status::Failure),
            Function::Cancelled => Value::Bool(self.context.status == Status::Cancelled),
            Function::Always => Value::Bool(true),
        };
        self.memory.add(depth, result.memory_size())?;
        Ok(Cow::Owned(result))
    }

    /// The results (`needs.<id>.result`) of the jobs named by `args`, for `success('a', 'b')`
    /// and `failure('a')` in a job's `if:`.
    fn needs_results(&mut self, args: &[Node], depth: usize) -> Result<Vec<String>, Error> {
        let mut results = Vec::with_capacity(args.len());
        for node in args {
            let id = self.eval(node, depth + 1)?.to_display_string();
            let result = self
                .context
                .contexts
                .lookup("needs")
                .and_then(Value::as_object)
                .and_then(|needs| needs.get(&id))
                .and_then(Value::as_object)
                .and_then(|need| need.get("result"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    Error::evaluation(format!(
                        "'{id}' is not a job this job needs, so its status is unknown"
                    ))
                })?;
            results.push(result.to_owned());
        }
        Ok(results)
    }

    /// `format('{0} and {1}', a, b)`, with `{{`/`}}` escapes, as GitHub implements it.
    fn format(&mut self, args: &[Node], depth: usize) -> Result<Value, Error> {
        let Some((format_node, arg_nodes)) = args.split_first() else {
            return Err(Error::evaluation("missing parameter"));
        };
        let format = self.eval(format_node, depth + 1)?.to_display_string();
        let invalid =
            || Error::evaluation(format!("The following format string is invalid: {format}"));
        // Arguments are evaluated once, on first use.
        let mut arg_strings: Vec<Option<String>> = vec![None; arg_nodes.len()];
        let mut out = String::with_capacity(format.len());
        let mut rest = format.as_str();
        while !rest.is_empty() {
            let left = rest.find('{');
            let right = rest.find('}');
            match (left, right) {
                (Some(l), r) if r.is_none_or(|r| r > l) => {
                    out.push_str(&rest[..l]);
                    let after = &rest[l + 1..];
                    if let Some(tail) = after.strip_prefix('{') {
                        out.push('{');
                        rest = tail;
                        continue;
                    }
                    let (index, tail) = parse_placeholder(after).ok_or_else(invalid)?;
                    let node = arg_nodes.get(index).ok_or_else(|| {
                        Error::evaluation(format!(
                            "The following format string references more arguments than were supplied: {format}"
                        ))
                    })?;
                    let slot = &mut arg_strings[index];
                    if slot.is_none() {
                        *slot = Some(self.eval(node, depth + 1)?.to_display_string());
                    }
                    out.push_str(slot.as_deref().unwrap_or_default());
                    rest = tail;
                }
                (_, Some(r)) => {
                    out.push_str(&rest[..r]);
                    let tail = rest[r + 1..].strip_prefix('}').ok_or_else(invalid)?;
                    out.push('}');
                    rest = tail;
                }
                (_, None) => {
                    out.push_str(rest);
                    rest = "";
                }
            }
            self.memory.check_growth(2 * out.len())?;
        }
        let result = Value::string(out);
        self.memory.add(depth, result.memory_size())?;
        Ok(result)
    }
}

/// Reads `N}` or `N:specifiers}` after a `{`; returns the argument index and the text after `}`.
/// Specifiers (meaningful to .NET for dates only) are read, with `{{`/`}}` escapes, and ignored.
fn parse_placeholder(s: &str) -> Option<(usize, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let index: u8 = s[..digits].parse().ok()?;
    let mut rest = &s[digits..];
    if let Some(tail) = rest.strip_prefix('}') {
        return Some((usize::from(index), tail));
    }
    rest = rest.strip_prefix(':')?;
    loop {
        let c = rest.chars().next()?;
        let after = &rest[c.len_utf8()..];
        match c {
            '}' if after.starts_with('}') => rest = &after[1..],
            '}' => return Some((usize::from(index), after)),
            '{' if after.starts_with('{') => rest = &after[1..],
            '{' => return None,
            _ => rest = after,
        }
    }
}
