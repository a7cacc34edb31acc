//! `hearth expr`: evaluates one expression against contexts from a JSON file, so users can
//! debug their `if:` conditions and `${{ }}` values without pushing a workflow.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use hearth_expr::{
    Condition, EvalContext, Expression, Object, ParseOptions, Status, Template, Value,
};

use hearth_engine::workspace_files::DirWorkspace;

#[derive(Args, Debug)]
pub struct ExprArgs {
    /// A JSON object mapping context names to values, e.g. {"github": {"ref": "refs/heads/main"}}.
    /// Only these names may appear in the expression.
    #[arg(long, value_name = "FILE")]
    contexts: Option<PathBuf>,

    /// How to read EXPR: a bare expression, a string with `${{ }}` templates, or an `if:`
    /// condition (implicit `success() &&` unless it calls a status function).
    #[arg(long, value_enum, default_value_t = Mode::Expression)]
    mode: Mode,

    /// The job status that success(), failure() and cancelled() report.
    #[arg(long, value_enum, default_value_t = JobStatus::Success)]
    status: JobStatus,

    /// The workspace that hashFiles() reads [default: the current directory].
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,

    /// The expression.
    expression: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Expression,
    Template,
    If,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum JobStatus {
    Success,
    Failure,
    Cancelled,
}

pub fn run(args: ExprArgs) -> Result<ExitCode> {
    let contexts = match &args.contexts {
        Some(path) => read_contexts(path)?,
        None => Object::new(),
    };
    let workspace = match &args.workspace {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let workspace = DirWorkspace::new(&workspace)
        .with_context(|| format!("cannot open workspace {}", workspace.display()))?;
    let status = match args.status {
        JobStatus::Success => Status::Success,
        JobStatus::Failure => Status::Failure,
        JobStatus::Cancelled => Status::Cancelled,
    };
    let context = EvalContext::new(&contexts)
        .with_status(status)
        .with_files(&workspace);

    let names: Vec<&str> = contexts.keys().collect();
    let options = ParseOptions::with_named_values(&names);
    let outcome = match args.mode {
        Mode::Expression => {
            Expression::parse(&args.expression, &options).and_then(|e| e.evaluate(&context))
        }
        Mode::Template => {
            Template::parse(&args.expression, &options).and_then(|t| t.evaluate(&context))
        }
        Mode::If => Condition::parse(&args.expression, &options)
            .and_then(|c| c.evaluate(&context))
            .map(Value::Bool),
    };
    match outcome {
        Ok(value) => {
            println!(
                "{{\"kind\": \"{}\", \"value\": {}}}",
                value.kind().name(),
                value.to_json()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn read_contexts(path: &PathBuf) -> Result<Object> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read contexts file {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    match Value::from_json(&json) {
        Value::Object(object) => Ok(object.as_ref().clone()),
        other => bail!(
            "{} must hold a JSON object mapping context names to values, not {}",
            path.display(),
            other.kind()
        ),
    }
}
