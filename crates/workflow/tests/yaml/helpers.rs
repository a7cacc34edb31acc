use hearth_workflow::yaml::YamlValue;
use serde_json::json;

use super::{field, load_ok};

#[test]
fn accessors_return_values_of_the_right_kind_only() {
    let root = load_ok("s: text\nb: true\ni: 7\nf: 2.5\nl: [1]\nm: {k: v}\nn: ~\n");
    assert_eq!(field(&root, "s").as_str(), Some("text"));
    assert_eq!(field(&root, "b").as_bool(), Some(true));
    assert_eq!(field(&root, "i").as_i64(), Some(7));
    assert_eq!(field(&root, "i").as_f64(), Some(7.0));
    assert_eq!(field(&root, "f").as_f64(), Some(2.5));
    assert_eq!(field(&root, "l").as_sequence().map(<[_]>::len), Some(1));
    assert_eq!(field(&root, "m").as_mapping().map(<[_]>::len), Some(1));
    assert!(field(&root, "n").is_null());

    assert_eq!(field(&root, "i").as_str(), None);
    assert_eq!(field(&root, "s").as_i64(), None);
    assert_eq!(field(&root, "s").as_mapping(), None);
    assert_eq!(field(&root, "m").as_sequence(), None);
    assert!(field(&root, "s").get("x").is_none());
    assert!(root.get("missing").is_none());
}

#[test]
fn get_matches_string_keys_only() {
    let root = load_ok("1: int\n'2': string\n");
    assert!(root.get("1").is_none());
    assert_eq!(root.get("2").and_then(|n| n.as_str()), Some("string"));
}

#[test]
fn kind_names_describe_values_for_messages() {
    let root = load_ok("[~, true, 1, 1.5, s, [], {}]");
    let names: Vec<_> = root
        .as_sequence()
        .expect("sequence")
        .iter()
        .map(|n| (n.kind_name(), n.kind_with_article()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("null", "null"),
            ("boolean", "a boolean"),
            ("integer", "an integer"),
            ("number", "a number"),
            ("string", "a string"),
            ("sequence", "a sequence"),
            ("mapping", "a mapping"),
        ]
    );
    assert!(YamlValue::Int(1).is_scalar());
    assert!(!YamlValue::Sequence(Vec::new()).is_scalar());
}

#[test]
fn to_json_keeps_order_and_number_kinds() {
    let root = load_ok("z: 1\na: 1.5\nm: [true, ~, 'x']\nk: {b: 2, a: 1}\n");
    let value = root.to_json();
    assert_eq!(
        value,
        json!({"z": 1, "a": 1.5, "m": [true, null, "x"], "k": {"b": 2, "a": 1}})
    );
    assert_eq!(
        serde_json::to_string(&value).expect("serialise"),
        r#"{"z":1,"a":1.5,"m":[true,null,"x"],"k":{"b":2,"a":1}}"#
    );
    assert!(value["z"].is_i64());
}

#[test]
fn to_json_adapts_what_json_cannot_hold() {
    let root = load_ok("a: .inf\nb: -.inf\nc: .nan\n");
    assert_eq!(
        root.to_json(),
        json!({"a": "Infinity", "b": "-Infinity", "c": "NaN"})
    );
    let root = load_ok("1: a\ntrue: b\n~: c\n1.5: d\n[x, 2]: e\n");
    assert_eq!(
        root.to_json(),
        json!({"1": "a", "true": "b", "": "c", "1.5": "d", "[\"x\",2]": "e"})
    );
}
