//! Parse + evaluate throughput of typical conditions.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hearth_expr::{EvalContext, Expression, Object, ParseOptions};

const CONDITION: &str = "github.event_name == 'push' && startsWith(github.ref, 'refs/tags/v')";

fn contexts() -> Object {
    let mut github = Object::new();
    github.insert("event_name", "push");
    github.insert("ref", "refs/tags/v1.4.2");
    github.insert("repository", "acme/app");
    github.insert("sha", "2ce6b095f4cceb616efed52266e3e3c0367ba795");
    let mut contexts = Object::new();
    contexts.insert("github", github);
    contexts
}

fn parse_and_evaluate(c: &mut Criterion) {
    let contexts = contexts();
    let names = ["github", "env", "vars", "inputs"];
    let options = ParseOptions::with_named_values(&names);
    let mut group = c.benchmark_group("condition");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse+evaluate", |b| {
        b.iter(|| {
            let expr = Expression::parse(black_box(CONDITION), &options).unwrap();
            expr.evaluate(&EvalContext::new(&contexts)).unwrap()
        })
    });
    let parsed = Expression::parse(CONDITION, &options).unwrap();
    group.bench_function("evaluate", |b| {
        b.iter(|| {
            black_box(&parsed)
                .evaluate(&EvalContext::new(&contexts))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, parse_and_evaluate);
criterion_main!(benches);
