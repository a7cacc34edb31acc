//! Loads, validates and plans the benchmark's 200-job workflow N times (default 20), for
//! instruction counts that do not depend on what else the machine does:
//! `cargo build --release -p hearth-workflow --example profile_plan` then
//! `valgrind --tool=callgrind target/release/examples/profile_plan 20`.

#[path = "../benches/generated/mod.rs"]
mod generated;

use hearth_workflow::model::Workflow;
use hearth_workflow::plan::{self, RunContext};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let source = generated::workflow(200);
    let github = hearth_expr::Value::from_json(&serde_json::json!({
        "event_name": "push", "ref": "refs/heads/main", "ref_name": "main", "event": {}
    }));
    let run = RunContext {
        github,
        ..RunContext::default()
    };
    let mut planned_jobs = 0;
    for _ in 0..rounds {
        let workflow = match Workflow::parse(&source, "big.yml") {
            Ok(workflow) => workflow,
            Err(problems) => {
                eprintln!("the generated workflow is invalid: {problems}");
                std::process::exit(1);
            }
        };
        match plan::plan(&workflow, "big.yml", &run) {
            Ok(planned) => planned_jobs = planned.len(),
            Err(problems) => {
                eprintln!("the generated workflow does not plan: {problems}");
                std::process::exit(1);
            }
        }
    }
    println!("{rounds} rounds of {planned_jobs} jobs");
}
