use hearth_workflow::yaml::{ScalarStyle, YamlErrorKind, YamlValue};

use super::{field, load_err, load_ok};

fn resolve(scalar: &str) -> YamlValue {
    let root = load_ok(&format!("v: {scalar}\n"));
    field(&root, "v").value.clone()
}

fn s(text: &str) -> YamlValue {
    YamlValue::String(text.to_owned())
}

#[test]
fn plain_scalars_resolve_with_the_core_schema() {
    let table: Vec<(&str, YamlValue)> = vec![
        ("", YamlValue::Null),
        ("~", YamlValue::Null),
        ("null", YamlValue::Null),
        ("Null", YamlValue::Null),
        ("NULL", YamlValue::Null),
        ("nUll", s("nUll")),
        ("true", YamlValue::Bool(true)),
        ("True", YamlValue::Bool(true)),
        ("TRUE", YamlValue::Bool(true)),
        ("false", YamlValue::Bool(false)),
        ("False", YamlValue::Bool(false)),
        ("FALSE", YamlValue::Bool(false)),
        ("tRUE", s("tRUE")),
        // YAML 1.1 booleans are plain strings in 1.2.
        ("on", s("on")),
        ("On", s("On")),
        ("ON", s("ON")),
        ("off", s("off")),
        ("yes", s("yes")),
        ("Yes", s("Yes")),
        ("no", s("no")),
        ("NO", s("NO")),
        ("y", s("y")),
        ("n", s("n")),
        ("0", YamlValue::Int(0)),
        ("42", YamlValue::Int(42)),
        ("-42", YamlValue::Int(-42)),
        ("+42", YamlValue::Int(42)),
        ("017", YamlValue::Int(17)),
        ("0o17", YamlValue::Int(15)),
        ("0x1F", YamlValue::Int(31)),
        ("0x1f", YamlValue::Int(31)),
        ("0b101", s("0b101")),
        ("1_000", s("1_000")),
        ("0o", s("0o")),
        ("1.5", YamlValue::Float(1.5)),
        ("-1.5", YamlValue::Float(-1.5)),
        ("3.10", YamlValue::Float(3.1)),
        (".5", YamlValue::Float(0.5)),
        ("5.", YamlValue::Float(5.0)),
        ("1e3", YamlValue::Float(1000.0)),
        ("1.5E-1", YamlValue::Float(0.15)),
        (".inf", YamlValue::Float(f64::INFINITY)),
        (".Inf", YamlValue::Float(f64::INFINITY)),
        ("+.INF", YamlValue::Float(f64::INFINITY)),
        ("-.inf", YamlValue::Float(f64::NEG_INFINITY)),
        ("-.Inf", YamlValue::Float(f64::NEG_INFINITY)),
        ("inf", s("inf")),
        ("infinity", s("infinity")),
        ("NaN", s("NaN")),
        ("1.2.3", s("1.2.3")),
        ("12:30", s("12:30")),
        ("2024-01-01", s("2024-01-01")),
        ("ubuntu-latest", s("ubuntu-latest")),
        ("${{ matrix.os }}", s("${{ matrix.os }}")),
    ];
    for (text, expected) in table {
        assert_eq!(resolve(text), expected, "resolving {text:?}");
    }
}

#[test]
fn nan_resolves_to_a_float() {
    for text in [".nan", ".NaN", ".NAN"] {
        match resolve(text) {
            YamlValue::Float(f) => assert!(f.is_nan(), "{text}"),
            other => panic!("{text} resolved to {other:?}"),
        }
    }
}

#[test]
fn the_on_key_is_the_string_on() {
    let root = load_ok("on:\n  push:\nyes: 1\nno: 2\n");
    let keys: Vec<_> = root
        .as_mapping()
        .expect("mapping")
        .iter()
        .map(|(k, _)| k.value.clone())
        .collect();
    assert_eq!(keys, vec![s("on"), s("yes"), s("no")]);
    assert!(root.get("on").is_some());
}

#[test]
fn quoted_and_block_scalars_are_strings_with_their_style() {
    let root = load_ok("a: 'true'\nb: \"1\"\nc: |\n  null\nd: >-\n  42\ne: ''\nf: plain\n");
    let expect = [
        ("a", s("true"), ScalarStyle::SingleQuoted),
        ("b", s("1"), ScalarStyle::DoubleQuoted),
        ("c", s("null\n"), ScalarStyle::Literal),
        ("d", s("42"), ScalarStyle::Folded),
        ("e", s(""), ScalarStyle::SingleQuoted),
        ("f", s("plain"), ScalarStyle::Plain),
    ];
    for (key, value, style) in expect {
        let node = field(&root, key);
        assert_eq!(node.value, value, "{key}");
        assert_eq!(node.style, Some(style), "{key}");
    }
    assert!(ScalarStyle::SingleQuoted.is_quoted());
    assert!(ScalarStyle::Folded.is_block());
    assert!(!ScalarStyle::Plain.is_quoted());
}

#[test]
fn collections_have_no_scalar_style() {
    let root = load_ok("a: [1]\nb: {c: d}\n");
    assert_eq!(root.style, None);
    assert_eq!(field(&root, "a").style, None);
    assert_eq!(field(&root, "b").style, None);
}

#[test]
fn standard_tags_are_honoured() {
    let root = load_ok(concat!(
        "a: !!str 1\n",
        "b: !!str true\n",
        "c: !!int \"42\"\n",
        "d: !!float 1\n",
        "e: !!bool 'false'\n",
        "f: !!null ''\n",
        "g: ! 12\n",
        "h: !<tag:yaml.org,2002:str> 5\n",
        "i: !!seq [1]\n",
        "j: !!map {k: v}\n",
        "k: !!float 0x10\n",
        "l: !!str\n",
    ));
    assert_eq!(field(&root, "a").value, s("1"));
    assert_eq!(field(&root, "b").value, s("true"));
    assert_eq!(field(&root, "c").value, YamlValue::Int(42));
    assert_eq!(field(&root, "d").value, YamlValue::Float(1.0));
    assert_eq!(field(&root, "e").value, YamlValue::Bool(false));
    assert_eq!(field(&root, "f").value, YamlValue::Null);
    assert_eq!(field(&root, "g").value, s("12"));
    assert_eq!(field(&root, "h").value, s("5"));
    assert_eq!(field(&root, "i").as_sequence().map(<[_]>::len), Some(1));
    assert_eq!(
        field(&root, "j").get("k").and_then(|n| n.as_str()),
        Some("v")
    );
    assert_eq!(field(&root, "k").value, YamlValue::Float(16.0));
    assert_eq!(field(&root, "l").value, s(""));
}

#[test]
fn unknown_tags_are_rejected_where_they_are_written() {
    for (source, tag) in [
        ("a: !Ref foo\n", "!Ref"),
        ("a: !!binary aGVsbG8=\n", "!!binary"),
        ("a: !!timestamp 2001-12-14\n", "!!timestamp"),
        ("a: !custom [1]\n", "!custom"),
        ("a: !!set {x}\n", "!!set"),
    ] {
        let error = load_err(source);
        assert_eq!(
            error.kind,
            YamlErrorKind::UnsupportedTag {
                tag: tag.to_owned()
            },
            "{source}"
        );
        assert_eq!((error.line(), error.col()), (1, 4), "{source}");
        assert!(error.to_string().contains(tag), "{error}");
    }
}

#[test]
fn mismatched_standard_tags_are_rejected() {
    for (source, tag) in [
        ("a: !!int abc\n", "!!int"),
        ("a: !!int 1.5\n", "!!int"),
        ("a: !!bool yes\n", "!!bool"),
        ("a: !!null 0\n", "!!null"),
        ("a: !!float x\n", "!!float"),
        ("a: !!map [1]\n", "!!map"),
        ("a: !!seq {b: 1}\n", "!!seq"),
        ("a: !!seq text\n", "!!seq"),
    ] {
        let error = load_err(source);
        match &error.kind {
            YamlErrorKind::TagMismatch { tag: found, .. } => assert_eq!(found, tag, "{source}"),
            other => panic!("{source}: unexpected {other:?}"),
        }
        assert_eq!((error.line(), error.col()), (1, 4), "{source}");
    }
}
