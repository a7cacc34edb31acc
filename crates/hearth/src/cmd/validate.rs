//! `hearth validate`: checks workflow files (and `action.yml` files) the way GitHub does and
//! prints every problem as `file:line:col: error: message`, like a compiler.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use hearth_workflow::model::{Action, Workflow};

use hearth_runner::workflow_files::{self, is_action_file};

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Workflow files, or folders whose *.yml and *.yaml files to check [default: the
    /// repository's .forgejo/workflows, .gitea/workflows or .github/workflows, the first that
    /// exists]. Files named action.yml or action.yaml are checked as actions.
    paths: Vec<PathBuf>,

    /// The repository whose workflow folder to check.
    #[arg(
        short = 'C',
        long = "directory",
        value_name = "DIR",
        default_value = "."
    )]
    directory: PathBuf,
}

/// Exit 0 when every file is valid, 1 when any has a problem, 2 when files cannot be read.
pub fn run(args: ValidateArgs) -> Result<ExitCode> {
    let files = workflow_files::find(&args.paths, &args.directory)?;

    let mut errors = 0;
    let mut bad_files = 0;
    for path in &files {
        let source = workflow_files::read(path)?;
        let diagnostics: Vec<String> = match source.text() {
            Err(problem) => vec![problem],
            Ok(text) if is_action_file(path) => Action::parse(text, &source.label)
                .err()
                .map(|d| d.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            Ok(text) => Workflow::parse(text, &source.label)
                .err()
                .map(|d| d.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
        };
        if !diagnostics.is_empty() {
            bad_files += 1;
            errors += diagnostics.len();
            for line in diagnostics {
                println!("{line}");
            }
        }
    }

    let checked = plural(files.len(), "file");
    if errors == 0 {
        eprintln!("{checked} checked, no problems");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} in {bad_files} of {checked}", plural(errors, "error"));
        Ok(ExitCode::from(1))
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
