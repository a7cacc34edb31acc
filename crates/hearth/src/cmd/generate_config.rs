//! `hearth generate-config`: prints a commented config file holding the defaults, to start
//! a `config.yaml` from.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use hearth_runner::config::example::EXAMPLE_CONFIG;

#[derive(Args, Debug)]
pub struct GenerateConfigArgs {}

pub fn run(_args: GenerateConfigArgs) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(EXAMPLE_CONFIG.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write the config to standard output")?;
    Ok(ExitCode::SUCCESS)
}
