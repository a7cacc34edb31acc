//! Arbitrary patterns, inputs and `on:` values never panic.

use hearth_workflow::filters::{validate_on, workflow_triggers, EventInfo, Pattern, PatternList};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Strings heavy in the characters the pattern syntax gives meaning to.
fn pattern_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::sample::select(vec![
                "*", "**", "**/", "?", "+", "[", "]", "-", "!", "\\", "/", "a", "z", "0", "9", "A",
                ".", "é", "\n", "(", "|", "$", "^", "{", "}",
            ])
            .prop_map(str::to_owned),
            1 => any::<char>().prop_map(String::from),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        pattern_text().prop_map(Value::String),
        proptest::sample::select(vec![
            "push",
            "pull_request",
            "workflow_run",
            "branches",
            "tags-ignore",
            "paths",
            "types",
            "workflows",
            "issues",
            "schedule",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "push",
                        "pull_request",
                        "pull_request_target",
                        "workflow_run",
                        "merge_group",
                        "issues",
                        "branches",
                        "branches-ignore",
                        "tags",
                        "tags-ignore",
                        "paths",
                        "paths-ignore",
                        "types",
                        "workflows",
                        "x",
                    ]),
                    inner,
                ),
                0..6,
            )
            .prop_map(|pairs| Value::Object(
                pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn filters_fuzz_patterns_never_panic(pattern in pattern_text(), input in pattern_text()) {
        if let Ok(p) = Pattern::new(&pattern) {
            let _ = p.is_match(&input);
        }
        if let Ok(list) = PatternList::new([&pattern, &input]) {
            let _ = list.selects(&input);
            let _ = list.selects(&pattern);
        }
    }

    #[test]
    fn filters_fuzz_literal_patterns_match_themselves(text in "[a-zA-Z0-9/._-]{1,20}") {
        // Text without special characters is a literal pattern.
        let p = Pattern::new(&text).expect("literal");
        prop_assert!(p.is_match(&text));
        let other = format!("{text}x");
        prop_assert!(!p.is_match(&other));
    }

    #[test]
    fn filters_fuzz_escaped_patterns_match_literally(text in pattern_text()) {
        prop_assume!(!text.is_empty());
        let escaped: String = text.chars().flat_map(|c| ['\\', c]).collect();
        let p = Pattern::new(&escaped).expect("escaped text compiles");
        prop_assert!(p.is_match(&text), "{escaped:?} vs {text:?} via {}", p.regex());
    }

    #[test]
    fn filters_fuzz_on_values_never_panic(
        on in json_value(),
        payload in json_value(),
        name in proptest::sample::select(vec!["push", "pull_request", "workflow_run", "merge_group", "issues", "x"]),
        git_ref in proptest::option::of(pattern_text()),
        paths in proptest::option::of(proptest::collection::vec(pattern_text(), 0..5)),
    ) {
        let _ = validate_on(&on);
        if let Ok(triggers) = workflow_triggers(&on) {
            let event = EventInfo {
                name,
                payload: &payload,
                git_ref: git_ref.as_deref(),
                changed_paths: paths.as_deref(),
            };
            for t in &triggers {
                let _ = t.check(&event);
            }
        }
    }
}
