//! The files a step talks back through: `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_OUTPUT`,
//! `GITHUB_STATE` and `GITHUB_STEP_SUMMARY`, fresh and empty for every step, as GitHub's runner
//! makes them in `RUNNER_TEMP/_runner_file_commands`.

use std::path::{Path, PathBuf};

use crate::env_files::FileCommand;

/// The folder, under the job's temp folder, that holds the file-command files.
const FOLDER: &str = "_runner_file_commands";

/// One step's files.
pub(crate) struct StepFiles {
    /// (file, path as the job sees it, path on the host).
    files: Vec<(FileCommand, String, PathBuf)>,
}

/// Every file, in the order they are made.
const ALL: [FileCommand; 5] = [
    FileCommand::Env,
    FileCommand::Path,
    FileCommand::Output,
    FileCommand::State,
    FileCommand::StepSummary,
];

/// The runner's file name prefix.
fn prefix(kind: FileCommand) -> &'static str {
    match kind {
        FileCommand::Env => "set_env",
        FileCommand::Path => "add_path",
        FileCommand::Output => "set_output",
        FileCommand::State => "save_state",
        FileCommand::StepSummary => "step_summary",
    }
}

impl StepFiles {
    /// Creates the empty files of step number `n` (unique in the job).
    pub async fn create(temp: &Path, temp_on_host: &Path, n: usize) -> std::io::Result<Self> {
        let folder = temp_on_host.join(FOLDER);
        tokio::fs::create_dir_all(&folder).await?;
        let mut files = Vec::with_capacity(ALL.len());
        for kind in ALL {
            let name = format!("{}_{n}", prefix(kind));
            let on_host = folder.join(&name);
            tokio::fs::write(&on_host, b"").await?;
            let seen = temp.join(FOLDER).join(&name).to_string_lossy().into_owned();
            files.push((kind, seen, on_host));
        }
        Ok(StepFiles { files })
    }

    /// Each file's `github` context key and path as the job sees it.
    pub fn context_entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.files
            .iter()
            .map(|(kind, seen, _)| (kind.name(), seen.as_str()))
    }

    /// What the step wrote to `kind`; a file the step removed reads as empty.
    pub async fn read(&self, kind: FileCommand) -> std::io::Result<Vec<u8>> {
        let Some((_, _, on_host)) = self.files.iter().find(|(k, _, _)| *k == kind) else {
            return Ok(Vec::new());
        };
        match tokio::fs::read(on_host).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The size of the step summary, without reading it.
    pub async fn summary_size(&self) -> u64 {
        match self
            .files
            .iter()
            .find(|(k, _, _)| *k == FileCommand::StepSummary)
        {
            Some((_, _, path)) => tokio::fs::metadata(path).await.map_or(0, |m| m.len()),
            None => 0,
        }
    }

    /// Removes the files; they are the step's only.
    pub async fn remove(self) {
        for (_, _, path) in self.files {
            let _ = tokio::fs::remove_file(path).await;
        }
    }
}
