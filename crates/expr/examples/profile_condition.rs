//! Parses and evaluates the benchmark condition in a loop, for profilers
//! (`valgrind --tool=callgrind target/release/examples/profile_condition 20000`).

use hearth_expr::{EvalContext, Expression, Object, ParseOptions};

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let mut github = Object::new();
    github.insert("event_name", "push");
    github.insert("ref", "refs/tags/v1.4.2");
    let mut contexts = Object::new();
    contexts.insert("github", github);
    let names = ["github", "env", "vars", "inputs"];
    let options = ParseOptions::with_named_values(&names);
    let condition = "github.event_name == 'push' && startsWith(github.ref, 'refs/tags/v')";
    let start = std::time::Instant::now();
    let mut truthy = 0;
    for _ in 0..iterations {
        let expr = Expression::parse(std::hint::black_box(condition), &options).expect("parses");
        let value = expr
            .evaluate(&EvalContext::new(&contexts))
            .expect("evaluates");
        truthy += usize::from(value.is_truthy());
    }
    let elapsed = start.elapsed();
    println!(
        "{iterations} parse+evaluate in {elapsed:?}: {:.0}/s ({truthy} true)",
        iterations as f64 / elapsed.as_secs_f64()
    );
}
