//! The files a step talks back through: `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_OUTPUT`,
//! `GITHUB_STATE` and `GITHUB_STEP_SUMMARY`, empty at the start of every step, in
//! `RUNNER_TEMP/_runner_file_commands` as GitHub's runner keeps them.

use std::path::{Path, PathBuf};

use crate::env_files::FileCommand;

/// The folder, under the job's temp folder, that holds the file-command files.
const FOLDER: &str = "_runner_file_commands";

/// The files of a job's steps.
#[derive(Clone, Debug)]
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
    /// Creates the job's files, empty. The same files serve every step of the job (emptied
    /// before each): creating and deleting five files per step is measurably slow on file
    /// systems that avoid reusing recently freed inodes (ext4), and nothing a step sees
    /// differs, except that a process a step leaves behind could write into a later step's
    /// file (on GitHub it writes into a file nobody reads).
    pub fn create(temp: &Path, temp_on_host: &Path) -> std::io::Result<Self> {
        let folder = temp_on_host.join(FOLDER);
        std::fs::create_dir_all(&folder)?;
        let mut files = Vec::with_capacity(ALL.len());
        for kind in ALL {
            let name = prefix(kind);
            let on_host = folder.join(name);
            std::fs::write(&on_host, b"")?;
            let seen = temp.join(FOLDER).join(name).to_string_lossy().into_owned();
            files.push((kind, seen, on_host));
        }
        Ok(StepFiles { files })
    }

    /// Empties every file for the next step (recreating one a step removed).
    pub fn reset(&self) -> std::io::Result<()> {
        for (_, _, on_host) in &self.files {
            std::fs::File::create(on_host)?;
        }
        Ok(())
    }

    /// Each file's `github` context key and path as the job sees it.
    pub fn context_entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.files
            .iter()
            .map(|(kind, seen, _)| (kind.name(), seen.as_str()))
    }

    /// What the step wrote to `kind`; a file the step removed reads as empty.
    pub fn read(&self, kind: FileCommand) -> std::io::Result<Vec<u8>> {
        let Some((_, _, on_host)) = self.files.iter().find(|(k, _, _)| *k == kind) else {
            return Ok(Vec::new());
        };
        match std::fs::read(on_host) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The size of the step summary, without reading it.
    pub fn summary_size(&self) -> u64 {
        match self
            .files
            .iter()
            .find(|(k, _, _)| *k == FileCommand::StepSummary)
        {
            Some((_, _, path)) => std::fs::metadata(path).map_or(0, |m| m.len()),
            None => 0,
        }
    }
}
