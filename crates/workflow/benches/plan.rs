//! Load, validate and plan a 200-job workflow (target: under 20 ms).
//!
//! The workflow is generated in the styles real ones use: anchors on the first job's values
//! reused by the others, `needs` fanning in from earlier jobs, `if:` conditions, env, multi-line `run:`
//! scripts, and every tenth job with a matrix (include and exclude) and `runs-on` from it.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use hearth_workflow::model::Workflow;
use hearth_workflow::plan::{self, RunContext};

/// The generated workflow: `jobs` jobs of five steps each.
pub fn workflow(jobs: usize) -> String {
    let mut s = String::from(
        "name: Big pipeline
on:
  push:
    branches: [main, 'release/**']
  pull_request:
    types: [opened, synchronize]
env:
  CARGO_TERM_COLOR: always
  RUST_BACKTRACE: 1
defaults:
  run:
    shell: bash
jobs:
",
    );
    for i in 0..jobs {
        s.push_str(&format!("  job-{i}:\n"));
        if i % 10 == 5 {
            s.push_str(&format!(
                "    name: Test ${{{{ matrix.os }}}} / ${{{{ matrix.rust }}}} ({i})
    strategy:
      fail-fast: false
      matrix:
        os: [linux, macos, windows]
        rust: [stable, beta, '1.80']
        exclude:
          - os: windows
            rust: beta
        include:
          - os: linux
            rust: nightly
            experimental: true
    runs-on: ${{{{ matrix.os }}}}
"
            ));
        } else if i == 0 {
            s.push_str(
                "    runs-on: &runner [self-hosted, linux]\n    timeout-minutes: &timeout 30\n",
            );
        } else {
            s.push_str("    runs-on: *runner\n    timeout-minutes: *timeout\n");
        }
        if i > 0 {
            let needs: Vec<String> = [i - 1, i / 2, i / 3]
                .iter()
                .filter(|&&n| n < i)
                .map(|n| format!("job-{n}"))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            s.push_str(&format!("    needs: [{}]\n", needs.join(", ")));
        }
        s.push_str(&format!(
            "    if: github.event_name == 'push' || contains(github.event.pull_request.labels.*.name, 'full-ci')
    env:
      JOB_INDEX: {i}
      TARGET: ${{{{ github.ref_name }}}}-{i}
    outputs:
      artifact: ${{{{ steps.build.outputs.artifact }}}}
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - name: Cache
        uses: actions/cache@v4
        with:
          path: ~/.cargo
          key: cargo-${{{{ hashFiles('**/Cargo.lock') }}}}
      - id: build
        name: Build {i}
        run: |
          set -e
          cargo build --release --bin part-{i}
          echo \"artifact=part-{i}\" >> \"$GITHUB_OUTPUT\"
      - name: Test
        if: ${{{{ success() && !cancelled() }}}}
        run: cargo test --bin part-{i} -- --nocapture
        continue-on-error: ${{{{ matrix.experimental == true }}}}
      - name: Report
        if: always()
        run: echo \"done with ${{{{ env.JOB_INDEX }}}} on ${{{{ runner.os }}}}\"
"
        ));
    }
    s
}

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
