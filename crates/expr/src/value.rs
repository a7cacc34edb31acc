//! Values of the expression language and GitHub's conversions between them.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use indexmap::{Equivalent, IndexMap};

use crate::fold;
use crate::number;

/// A value: what a context holds and what an expression evaluates to.
///
/// Arrays, objects and strings are reference-counted so that looking up `github.event` or
/// passing a large context around never copies it. Equality of arrays and objects is
/// identity, as in GitHub (`a == a` is true, `fromJSON('[]') == fromJSON('[]')` is false).
#[derive(Clone, Debug, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(Arc<str>),
    Array(Arc<Vec<Value>>),
    Object(Arc<Object>),
}

/// The kind of a value, named as GitHub names it in errors and in `hearth expr` output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Null,
    Boolean,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "Null",
            Kind::Boolean => "Boolean",
            Kind::Number => "Number",
            Kind::String => "String",
            Kind::Array => "Array",
            Kind::Object => "Object",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Value {
    pub fn string(s: impl Into<Arc<str>>) -> Value {
        Value::String(s.into())
    }

    pub fn array(items: Vec<Value>) -> Value {
        Value::Array(Arc::new(items))
    }

    pub fn object(object: Object) -> Value {
        Value::Object(Arc::new(object))
    }

    pub fn kind(&self) -> Kind {
        match self {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Boolean,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// GitHub's truthiness: `null`, `false`, `0`, `-0`, `NaN` and `''` are false.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => *n != 0.0 && !n.is_nan(),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }

    /// GitHub's conversion to a number: `null` → 0, booleans → 1/0, strings parsed leniently
    /// (blank → 0, unparsable → NaN), arrays and objects → NaN.
    pub fn to_number(&self) -> f64 {
        match self {
            Value::Null => 0.0,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Number(n) => *n,
            Value::String(s) => number::parse(s),
            Value::Array(_) | Value::Object(_) => f64::NAN,
        }
    }

    /// GitHub's conversion to a string, as `format()` and templates use it.
    pub fn to_display_string(&self) -> String {
        match self {
            Value::String(s) => s.to_string(),
            other => other.display_str().into_owned(),
        }
    }

    /// Like [`Value::to_display_string`], but borrows where it can.
    pub fn display_str(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            Value::Null => Cow::Borrowed(""),
            Value::Bool(true) => Cow::Borrowed("true"),
            Value::Bool(false) => Cow::Borrowed("false"),
            Value::Number(n) => Cow::Owned(number::format(*n)),
            Value::String(s) => Cow::Borrowed(s),
            Value::Array(_) => Cow::Borrowed("Array"),
            Value::Object(_) => Cow::Borrowed("Object"),
        }
    }

    /// Identity of arrays and objects, for GitHub's reference equality.
    pub(crate) fn same_container(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Array(a), Value::Array(b)) => Arc::ptr_eq(a, b),
            (Value::Object(a), Value::Object(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// An estimate of the memory a value holds, for GitHub's evaluation memory limit. Strings
    /// count two bytes a character as in .NET, whose limits these are.
    pub(crate) fn memory_size(&self) -> usize {
        const OVERHEAD: usize = 24;
        match self {
            Value::Null | Value::Bool(_) | Value::Number(_) => OVERHEAD,
            Value::String(s) => OVERHEAD + 2 * s.len(),
            Value::Array(a) => OVERHEAD + a.iter().map(Value::memory_size).sum::<usize>(),
            Value::Object(o) => {
                OVERHEAD
                    + o.iter()
                        .map(|(k, v)| OVERHEAD + 2 * k.len() + v.memory_size())
                        .sum::<usize>()
            }
        }
    }

    /// Converts from JSON; numbers become doubles.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::string(s.as_str()),
            serde_json::Value::Array(a) => Value::array(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => {
                let mut object = Object::with_capacity(o.len());
                for (k, v) in o {
                    object.insert(k.as_str(), Value::from_json(v));
                }
                Value::object(object)
            }
        }
    }

    /// Converts to JSON. Whole numbers become JSON integers; `NaN` and the infinities, which
    /// JSON cannot hold, become the strings GitHub's `toJSON` writes for them.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number::to_json(*n),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Value::to_json).collect()),
            Value::Object(o) => serde_json::Value::Object(
                o.iter()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::string(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::string(s)
    }
}

impl From<Object> for Value {
    fn from(o: Object) -> Self {
        Value::object(o)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::array(a)
    }
}

/// An object key: compared and hashed ignoring case, displayed as first written.
#[derive(Clone, Debug)]
struct Key(Arc<str>);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        fold::eq_ignore_case(&self.0, &other.0)
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        fold::hash_ignore_case(&self.0, state);
    }
}

/// A borrowed lookup key, so lookups need not allocate.
struct KeyRef<'a>(&'a str);

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        fold::hash_ignore_case(self.0, state);
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        fold::eq_ignore_case(self.0, &key.0)
    }
}

#[derive(Clone, Default, Debug)]
struct FoldHasherBuilder;

impl BuildHasher for FoldHasherBuilder {
    type Hasher = foldhash::fast::FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        foldhash::fast::FixedState::with_seed(0x5eed_4ea7_b0a4_d1e5).build_hasher()
    }
}

/// An object: keys are case-insensitive (as every context lookup in GitHub is) and keep the
/// order in which they were inserted.
#[derive(Clone, Debug, Default)]
pub struct Object {
    entries: IndexMap<Key, Value, FoldHasherBuilder>,
}

impl Object {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Object {
            entries: IndexMap::with_capacity_and_hasher(n, FoldHasherBuilder),
        }
    }

    /// Sets `key`. A key that differs only in case replaces the value but keeps the first
    /// spelling and position.
    pub fn insert(&mut self, key: impl Into<Arc<str>>, value: impl Into<Value>) {
        let key = Key(key.into());
        let value = value.into();
        if let Some(slot) = self.entries.get_mut(&key) {
            *slot = value;
        } else {
            self.entries.insert(key, value);
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(&KeyRef(key))
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries.get_mut(&KeyRef(key))
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.entries.shift_remove(&KeyRef(key))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(&KeyRef(key))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (&*k.0, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|k| &*k.0)
    }

    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.values()
    }
}

impl<K: Into<Arc<str>>, V: Into<Value>> FromIterator<(K, V)> for Object {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut object = Object::new();
        for (k, v) in iter {
            object.insert(k, v);
        }
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_ignore_case_and_keep_first_spelling() {
        let mut o = Object::new();
        o.insert("Event_Name", "push");
        o.insert("ref", "refs/heads/main");
        o.insert("EVENT_NAME", "pull_request");
        assert_eq!(o.len(), 2);
        assert_eq!(
            o.get("event_name").and_then(Value::as_str),
            Some("pull_request")
        );
        assert_eq!(o.keys().collect::<Vec<_>>(), ["Event_Name", "ref"]);
        assert!(o.contains_key("ΣΣ") == o.contains_key("σς"));
    }

    #[test]
    fn truthiness_and_numbers() {
        assert!(!Value::Number(f64::NAN).is_truthy());
        assert!(!Value::Number(-0.0).is_truthy());
        assert!(Value::string("false").is_truthy());
        assert_eq!(Value::string(" 0x10 ").to_number(), 16.0);
        assert!(Value::array(vec![]).to_number().is_nan());
    }
}
