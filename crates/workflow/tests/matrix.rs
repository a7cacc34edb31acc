//! Matrix expansion: the data-driven cases in `tests/data/matrix/`, the strategy context, and
//! property tests.
//!
//! A case file is a JSON object with `description`, optionally `source` (where the rule is
//! documented), `matrix` (the `strategy.matrix` mapping), and what to expect: `expected` (the
//! combinations, in order), `expected_count`, `names` (display names for `job_name`), or
//! `error` (the exact message).

use std::path::Path;

use hearth_workflow::matrix::{
    display_name, expand, strategy_contexts, MatrixError, MAX_CONFIGURATIONS,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn run_case(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case: Value = serde_json::from_str(&text).map_err(|e| format!("bad JSON: {e}"))?;
    let matrix = case["matrix"]
        .as_object()
        .ok_or("`matrix` must be an object")?;
    let result = expand(matrix);

    if let Some(error) = case.get("error") {
        return match result {
            Err(e) if Value::String(e.to_string()) == *error => Ok(()),
            Err(e) => Err(format!("expected error {error}, got error {e:?} ({e})")),
            Ok(combos) => Err(format!(
                "expected error {error}, got {:?}",
                combos.iter().map(|c| c.to_json()).collect::<Vec<_>>()
            )),
        };
    }
    let combos = result.map_err(|e| format!("unexpected error: {e}"))?;
    let actual: Vec<Value> = combos.iter().map(|c| c.to_json()).collect();

    if let Some(expected) = case.get("expected") {
        let expected = expected.as_array().ok_or("`expected` must be an array")?;
        // Compare with key order: serde_json's map equality ignores it.
        let render = |v: &[Value]| {
            v.iter()
                .map(|c| serde_json::to_string(c).unwrap_or_default())
                .collect::<Vec<_>>()
        };
        if render(&actual) != render(expected) {
            return Err(format!(
                "combinations differ\n  expected: {:#?}\n  actual:   {:#?}",
                render(expected),
                render(&actual)
            ));
        }
    }
    if let Some(count) = case.get("expected_count") {
        if Some(actual.len() as u64) != count.as_u64() {
            return Err(format!(
                "expected {count} combinations, got {}",
                actual.len()
            ));
        }
    }
    if let Some(names) = case.get("names") {
        let job = case["job_name"]
            .as_str()
            .ok_or("`names` needs `job_name`")?;
        let actual: Vec<Value> = combos
            .iter()
            .map(|c| Value::String(display_name(job, c, false)))
            .collect();
        if Some(&actual) != names.as_array() {
            return Err(format!(
                "names differ\n  expected: {names}\n  actual:   {actual:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn matrix_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/matrix");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/data/matrix exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 30, "too few cases: {}", paths.len());
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| run_case(p).err().map(|e| format!("{}: {e}", p.display())))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n\n")
    );
}

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

#[test]
fn too_many_configurations_counts_all_and_names_the_job() {
    let matrix = map(json!({
        "a": (0..16).collect::<Vec<_>>(),
        "b": (0..17).collect::<Vec<_>>(),
        "include": [{"a": 99}],
    }));
    let error = expand(&matrix).unwrap_err();
    assert_eq!(error, MatrixError::TooManyConfigurations { count: 273 });
    assert_eq!(
        error.message_for_job("build"),
        "Strategy for job 'build' produced 273 configurations which exceeds the maximum of 256 configurations"
    );
}

#[test]
fn exactly_the_limit_is_allowed() {
    let matrix = map(json!({
        "a": (0..16).collect::<Vec<_>>(),
        "b": (0..16).collect::<Vec<_>>(),
    }));
    assert_eq!(expand(&matrix).unwrap().len(), MAX_CONFIGURATIONS);
}

#[test]
fn huge_cross_product_is_refused_quickly() {
    let big: Vec<u32> = (0..1000).collect();
    let matrix = map(json!({"a": big, "b": big, "c": big, "exclude": [{"a": 0}]}));
    assert!(matches!(
        expand(&matrix),
        Err(MatrixError::ProductTooLarge {
            product: 1_000_000_000
        })
    ));
}

#[test]
fn exclusions_can_bring_a_large_product_under_the_limit() {
    let matrix = map(json!({
        "a": (0..100).collect::<Vec<_>>(),
        "b": (0..100).collect::<Vec<_>>(),
        "exclude": (1..100).map(|a| json!({"a": a})).collect::<Vec<_>>(),
    }));
    let combos = expand(&matrix).unwrap();
    assert_eq!(combos.len(), 100);
    assert!(combos.iter().all(|c| c["a"] == json!(0)));
}

#[test]
fn strategy_context_defaults() {
    let contexts = strategy_contexts(3, true, None);
    assert_eq!(contexts.len(), 3);
    assert_eq!(
        serde_json::to_string(&contexts[1].to_json()).unwrap(),
        r#"{"fail-fast":true,"job-index":1,"job-total":3,"max-parallel":3}"#
    );
}

#[test]
fn strategy_context_max_parallel() {
    let contexts = strategy_contexts(4, false, Some(2));
    assert_eq!(
        contexts[3].to_json(),
        json!({"fail-fast": false, "job-index": 3, "job-total": 4, "max-parallel": 2})
    );
    // Zero or negative is unset in GitHub (`MaxParallel > 0`).
    assert_eq!(strategy_contexts(4, true, Some(0))[0].max_parallel, 4);
    assert_eq!(strategy_contexts(4, true, Some(-1))[0].max_parallel, 4);
    assert!(strategy_contexts(0, true, None).is_empty());
}

#[test]
fn display_name_rules() {
    let combos = expand(&map(json!({
        "os": ["ubuntu"],
        "python": [3.10, 3, 1e21, 0.1],
        "include": [{"experimental": true}],
    })))
    .unwrap();
    let names: Vec<String> = combos
        .iter()
        .map(|c| display_name("test", c, false))
        .collect();
    assert_eq!(
        names,
        [
            "test (ubuntu, 3.1)",
            "test (ubuntu, 3)",
            "test (ubuntu, 1E+21)",
            "test (ubuntu, 0.1)"
        ]
    );
    // A name that uses the matrix is the caller's, unchanged.
    assert_eq!(
        display_name("Build on ubuntu", &combos[0], true),
        "Build on ubuntu"
    );
    // An empty base stays empty.
    assert_eq!(display_name("", &combos[0], false), "");
}

#[test]
fn display_name_is_cut_at_100_characters() {
    let long = "x".repeat(120);
    let combos = expand(&map(json!({"v": [long]}))).unwrap();
    let name = display_name("job", &combos[0], false);
    assert_eq!(name.len(), 100);
    assert!(name.starts_with("job (xxx"));
    assert!(name.ends_with("x..."));
    // Without values, the base alone, also cut.
    let combos = expand(&map(json!({"v": [null, ""]}))).unwrap();
    assert_eq!(display_name("job", &combos[0], false), "job");
    assert_eq!(display_name("job", &combos[1], false), "job");
    let base = "é".repeat(150);
    let name = display_name(&base, &combos[0], false);
    assert_eq!(name.chars().count(), 100);
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..3).prop_map(Value::from),
        prop::sample::select(vec!["a", "A", "b", "1", "", "x y"]).prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(vec!["k", "K", "os"]), inner), 0..3)
                .prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["os", "OS", "node", "arch", "x", "include", "exclude"])
        .prop_map(str::to_owned)
}

proptest! {
    #[test]
    fn random_matrices_never_panic(
        entries in prop::collection::vec((key(), prop_oneof![
            prop::collection::vec(value(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                prop::collection::vec((key(), value()), 0..3)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                0..4,
            ).prop_map(Value::Array),
            value(),
        ]), 0..5)
    ) {
        let matrix: Map<String, Value> = entries.into_iter().collect();
        if let Ok(combos) = expand(&matrix) {
            prop_assert!(combos.len() <= MAX_CONFIGURATIONS);
            for c in &combos {
                let _ = display_name("job", c, false);
            }
        }
    }

    #[test]
    fn product_size_without_include_or_exclude(
        lengths in prop::collection::vec(1usize..5, 1..5),
        seed in any::<u8>(),
    ) {
        let names = ["a", "b", "c", "d", "e"];
        let mut matrix = Map::new();
        for (i, len) in lengths.iter().enumerate() {
            let items: Vec<Value> = (0..*len).map(|j| json!(format!("{seed}-{i}-{j}"))).collect();
            matrix.insert(names[i].to_owned(), Value::Array(items));
        }
        let combos = expand(&matrix).unwrap();
        prop_assert_eq!(combos.len(), lengths.iter().product::<usize>());
        // First key slowest: the last key changes on every step.
        if let Some(last) = names.get(lengths.len() - 1) {
            if lengths[lengths.len() - 1] > 1 && combos.len() > 1 {
                prop_assert_ne!(&combos[0][*last], &combos[1][*last]);
            }
        }
        for c in &combos {
            prop_assert_eq!(c.keys().cloned().collect::<Vec<_>>(), names[..lengths.len()].to_vec());
        }
    }
}
