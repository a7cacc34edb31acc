//! Load, validate and plan a 200-job workflow (target: under 20 ms).
//!
//! The workflow is generated in the styles real ones use: anchors on the first job's values
//! reused by the others, `needs` fanning in from earlier jobs, `if:` conditions, env, multi-line `run:`
//! scripts, and every tenth job with a matrix (include and exclude) and `runs-on` from it.

use criterion::{black_box, criterion_group, criterion_main, Criterion};

#[path = "generated/mod.rs"]
mod generated;
use generated::workflow;
use hearth_workflow::model::Workflow;
use hearth_workflow::plan::{self, RunContext};

fn bench(c: &mut Criterion) {
    let source = workflow(200);
    let github = hearth_expr::Value::from_json(&serde_json::json!({
        "event_name": "push", "ref": "refs/heads/main", "ref_name": "main", "event": {}
    }));
    let run = RunContext {
        github,
        ..RunContext::default()
    };
    // The benchmark must plan what it claims to.
    let workflow = Workflow::parse(&source, "big.yml").expect("the generated workflow is valid");
    let planned = plan::plan(&workflow, "big.yml", &run).expect("plans");
    assert_eq!(planned.len(), 200);
    let instances: usize = planned
        .iter()
        .map(|e| match &e.plan {
            plan::JobPlan::Run(jobs) => jobs.len(),
            _ => 0,
        })
        .sum();
    eprintln!(
        "the workflow: {} KiB, {} lines, {} jobs planned as {instances} job instances",
        source.len() / 1024,
        source.lines().count(),
        planned.len()
    );

    c.bench_function("load+validate+plan 200 jobs", |b| {
        b.iter(|| {
            let workflow = Workflow::parse(black_box(&source), "big.yml").expect("valid");
            plan::plan(&workflow, "big.yml", &run).expect("plans")
        })
    });
}

/// The parts, to see where the time goes.
fn parts(c: &mut Criterion) {
    let source = workflow(200);
    let run = RunContext::default();
    c.bench_function("yaml load 200 jobs", |b| {
        b.iter(|| hearth_workflow::yaml::load(black_box(&source), "big.yml").expect("yaml"))
    });
    let root = hearth_workflow::yaml::load(&source, "big.yml").expect("yaml");
    c.bench_function("model+validate 200 jobs", |b| {
        b.iter(|| Workflow::from_yaml(black_box(&root), "big.yml").expect("valid"))
    });
    let workflow = Workflow::from_yaml(&root, "big.yml").expect("valid");
    c.bench_function("plan 200 jobs", |b| {
        b.iter(|| plan::plan(black_box(&workflow), "big.yml", &run).expect("plans"))
    });
}

criterion_group!(benches, bench, parts);
criterion_main!(benches);
