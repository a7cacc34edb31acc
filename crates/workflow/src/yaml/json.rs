//! Conversion of a node tree to `serde_json::Value`.

use serde_json::{Map, Number, Value};

use super::node::{Node, YamlValue};

impl Node {
    /// Converts the tree to JSON, dropping positions and styles.
    ///
    /// JSON is narrower than YAML, so two things are adapted:
    /// - floats that JSON cannot hold become the strings `"Infinity"`,
    ///   `"-Infinity"` and `"NaN"` (the spellings of GitHub's expression
    ///   language);
    /// - non-string mapping keys become their text: `1` becomes `"1"`,
    ///   `true` becomes `"true"`, `null` becomes `""`, and collections used
    ///   as keys become their JSON text.
    pub fn to_json(&self) -> Value {
        match &self.value {
            YamlValue::Null => Value::Null,
            YamlValue::Bool(b) => Value::Bool(*b),
            YamlValue::Int(i) => Value::Number(Number::from(*i)),
            YamlValue::Float(f) => float_to_json(*f),
            YamlValue::String(s) => Value::String(s.clone()),
            YamlValue::Sequence(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            YamlValue::Mapping(entries) => {
                let mut object = Map::with_capacity(entries.len());
                for (key, value) in entries {
                    object.insert(key_to_json_string(key), value.to_json());
                }
                Value::Object(object)
            }
        }
    }
}

fn float_to_json(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String("NaN".to_owned()),
        None if f > 0.0 => Value::String("Infinity".to_owned()),
        None => Value::String("-Infinity".to_owned()),
    }
}

fn key_to_json_string(key: &Node) -> String {
    match &key.value {
        YamlValue::String(s) => s.clone(),
        YamlValue::Null => String::new(),
        YamlValue::Bool(b) => b.to_string(),
        YamlValue::Int(i) => i.to_string(),
        YamlValue::Float(_) | YamlValue::Sequence(_) | YamlValue::Mapping(_) => match key.to_json()
        {
            Value::String(s) => s,
            other => other.to_string(),
        },
    }
}
