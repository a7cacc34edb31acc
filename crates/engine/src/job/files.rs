//! The files of a job's steps in its temp folder: the file-command files a step talks back
//! through (`GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_OUTPUT`, `GITHUB_STATE` and
//! `GITHUB_STEP_SUMMARY`, empty at the start of every step, in
//! `RUNNER_TEMP/_runner_file_commands` as GitHub's runner keeps them), and the scripts of
//! `run:` steps.
//!
//! Both reuse their files from step to step rather than creating and deleting new ones: on
//! file systems that avoid reusing recently freed inodes (ext4 without a journal, where every
//! new file skips each inode freed in the last minutes, one buffer-cache lookup each),
//! creating files gets slower the more were deleted shortly before, and a job of many short
//! steps deleted a file per step.

use hearth_backend::{BackendError, JobPath, JobRuntime};

use crate::env_files::FileCommand;

/// The folder, under the job's temp folder, that holds the file-command files.
pub(crate) const FOLDER: &str = "_runner_file_commands";
/// The folder, under the job's temp folder, that holds the event payload (`event.json`).
pub(crate) const WORKFLOW_FOLDER: &str = "_github_workflow";
/// The folder, under the job's temp folder, that is `HOME` for steps in containers of their
/// own (Docker actions).
pub(crate) const HOME_FOLDER: &str = "_github_home";

/// The most the engine reads of a step's `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_OUTPUT` or
/// `GITHUB_STATE`: a step controls these files, and a runner must not read gigabytes into
/// memory because a step wrote them (GitHub's own limits on outputs are far lower).
pub(crate) const FILE_COMMAND_LIMIT: u64 = 16 * 1024 * 1024;

/// The files of a job's steps, as the job sees them.
#[derive(Clone, Debug)]
pub(crate) struct StepFiles {
    files: Vec<(FileCommand, JobPath)>,
    all: Vec<JobPath>,
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
    /// The job's files under its temp folder. The same files serve every step of the job
    /// (emptied before each): nothing a step sees differs, except that a process a step leaves
    /// behind could write into a later step's file (on GitHub it writes into a file nobody
    /// reads).
    pub fn new(temp: &JobPath) -> Self {
        let folder = temp.join(FOLDER);
        let files: Vec<(FileCommand, JobPath)> = ALL
            .iter()
            .map(|&kind| (kind, folder.join(prefix(kind))))
            .collect();
        let all = files.iter().map(|(_, path)| path.clone()).collect();
        StepFiles { files, all }
    }

    /// Empties every file for the next step (creating one a step removed).
    pub async fn reset(&self, runtime: &dyn JobRuntime) -> Result<(), BackendError> {
        runtime.empty_files(&self.all).await
    }

    /// Each file's `github` context key and path as the job sees it.
    pub fn context_entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.files
            .iter()
            .map(|(kind, path)| (kind.name(), path.as_str()))
    }

    /// What the step wrote to `kind`, up to [`FILE_COMMAND_LIMIT`]; a file the step removed
    /// reads as empty.
    pub async fn read(
        &self,
        runtime: &dyn JobRuntime,
        kind: FileCommand,
    ) -> Result<Vec<u8>, BackendError> {
        let Some((_, path)) = self.files.iter().find(|(k, _)| *k == kind) else {
            return Ok(Vec::new());
        };
        Ok(runtime
            .read_file(path, FILE_COMMAND_LIMIT)
            .await?
            .unwrap_or_default())
    }
}

/// The scripts of a job's `run:` steps, each under a name of its own (`step_<n>.sh`), as
/// GitHub gives each its own file. A step's script is kept when the step ends, and the next
/// step's is written into that same file, renamed (the runtime's `replaces`): no step sees an
/// earlier step's script, and the job creates one script file instead of one per step. The
/// backend removes the last one with the job's temp folder.
#[derive(Debug)]
pub(crate) struct Scripts {
    /// The job's temp folder.
    folder: JobPath,
    /// The script of the step that ended last, to be reused.
    spare: Option<JobPath>,
}

impl Scripts {
    pub fn new(temp: &JobPath) -> Self {
        Scripts {
            folder: temp.clone(),
            spare: None,
        }
    }

    /// Writes a step's script as `name` in the temp folder; returns its path.
    pub async fn write(
        &mut self,
        runtime: &dyn JobRuntime,
        name: &str,
        contents: &[u8],
    ) -> Result<JobPath, BackendError> {
        let path = self.folder.join(name);
        let spare = self.spare.take();
        runtime.write_file(&path, contents, spare.as_ref()).await?;
        Ok(path)
    }

    /// The step whose script is at `path` has ended: its file may serve the next step.
    pub fn done(&mut self, path: JobPath) {
        self.spare = Some(path);
    }
}
