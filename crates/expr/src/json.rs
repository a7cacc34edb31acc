//! `toJSON`'s output: indented JSON as GitHub's runner (Newtonsoft.Json) writes it.

use std::fmt::Write;

use crate::number;
use crate::value::Value;

/// Writes `value` indented by two spaces. `None` when the text would exceed `max_len` bytes, so
/// that a huge context cannot blow past the evaluation memory limit while being written.
pub fn to_pretty_string(value: &Value, max_len: usize) -> Option<String> {
    let mut writer = Writer {
        out: String::new(),
        max_len,
    };
    writer.value(value, 0)?;
    Some(writer.out)
}

struct Writer {
    out: String,
    max_len: usize,
}

impl Writer {
    fn check(&self) -> Option<()> {
        (self.out.len() <= self.max_len).then_some(())
    }

    fn newline(&mut self, indent: usize) {
        self.out.push('\n');
        for _ in 0..indent {
            self.out.push_str("  ");
        }
    }

    fn value(&mut self, value: &Value, indent: usize) -> Option<()> {
        match value {
            Value::Null => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => self.out.push_str(&number::format_json(*n)),
            Value::String(s) => self.string(s),
            Value::Array(items) if items.is_empty() => self.out.push_str("[]"),
            Value::Object(o) if o.is_empty() => self.out.push_str("{}"),
            Value::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.newline(indent + 1);
                    self.value(item, indent + 1)?;
                }
                self.newline(indent);
                self.out.push(']');
            }
            Value::Object(o) => {
                self.out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.newline(indent + 1);
                    self.string(k);
                    self.out.push_str(": ");
                    self.value(v, indent + 1)?;
                }
                self.newline(indent);
                self.out.push('}');
            }
        }
        self.check()
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                '\u{08}' => self.out.push_str("\\b"),
                '\u{0C}' => self.out.push_str("\\f"),
                c if (c as u32) < 0x20 || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') => {
                    let _ = write!(self.out, "\\u{:04x}", c as u32);
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Object;

    #[test]
    fn indents_like_newtonsoft() {
        let mut inner = Object::new();
        inner.insert("a", Value::array(vec![Value::Number(1.0), Value::Null]));
        inner.insert("b", Value::object(Object::new()));
        inner.insert("c", "line\nbreak\u{1}\"");
        let text = to_pretty_string(&Value::object(inner), usize::MAX).unwrap();
        assert_eq!(
            text,
            "{\n  \"a\": [\n    1,\n    null\n  ],\n  \"b\": {},\n  \"c\": \"line\\nbreak\\u0001\\\"\"\n}"
        );
    }

    #[test]
    fn stops_at_the_size_limit() {
        let big = Value::array(vec![Value::string("x".repeat(100)); 100]);
        assert!(to_pretty_string(&big, 1000).is_none());
        assert!(to_pretty_string(&big, 100_000).is_some());
    }
}
