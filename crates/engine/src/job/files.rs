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

use std::io::{self, Write};
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
    /// before each): nothing a step sees differs, except that a process a step leaves behind
    /// could write into a later step's file (on GitHub it writes into a file nobody reads).
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

    /// Empties every file for the next step (recreating one a step removed). Most steps write
    /// none of them: a file found empty is left alone (one `stat` instead of an open).
    pub fn reset(&self) -> std::io::Result<()> {
        for (_, _, on_host) in &self.files {
            let empty = std::fs::symlink_metadata(on_host)
                .is_ok_and(|meta| meta.is_file() && meta.len() == 0);
            if !empty {
                std::fs::File::create(on_host)?;
            }
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
        // Most steps write none of the files: an empty one is not opened.
        let read = std::fs::metadata(on_host).and_then(|meta| match meta.len() {
            0 if meta.is_file() => Ok(Vec::new()),
            _ => std::fs::read(on_host),
        });
        match read {
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

/// The scripts of a job's `run:` steps, each under a name of its own (`step_<n>.sh`), as
/// GitHub gives each its own file. A step's script is kept when the step ends, and the next
/// step's is written into that same file, renamed: no step sees an earlier step's script, and
/// the job creates one script file instead of one per step. The backend removes the last one
/// with the job's temp folder.
#[derive(Debug)]
pub(crate) struct Scripts {
    /// The job's temp folder, on the host.
    folder: PathBuf,
    /// The script of the step that ended last, to be reused.
    spare: Option<PathBuf>,
}

impl Scripts {
    pub fn new(temp_on_host: &Path) -> Self {
        Scripts {
            folder: temp_on_host.to_path_buf(),
            spare: None,
        }
    }

    /// Writes a step's script as `name` in the temp folder; returns its path on the host.
    pub fn write(&mut self, name: &str, contents: &[u8]) -> io::Result<PathBuf> {
        let path = self.folder.join(name);
        if let Some(spare) = self.spare.take() {
            // A step may have removed or moved its script; then a new file is written.
            let _ = std::fs::rename(&spare, &path);
        }
        // Overwritten, then cut to length, rather than truncated first: ext4 writes a file out
        // at once when it is truncated to nothing and written again (its guard for programs
        // that replace a file's contents that way), which costs milliseconds per step.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        file.write_all(contents)?;
        file.set_len(contents.len() as u64)?;
        Ok(path)
    }

    /// The step whose script is at `path` has ended: its file may serve the next step.
    pub fn done(&mut self, path: PathBuf) {
        self.spare = Some(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(folder: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn scripts_reuse_one_file_under_new_names() {
        let temp = tempfile::tempdir().unwrap();
        let mut scripts = Scripts::new(temp.path());
        let first = scripts.write("step_1.sh", b"echo a longer line").unwrap();
        scripts.done(first);
        let second = scripts.write("step_2.sh", b"true").unwrap();
        assert_eq!(names(temp.path()), ["step_2.sh"]);
        assert_eq!(std::fs::read(&second).unwrap(), b"true");
        scripts.done(second);
        let third = scripts
            .write("step_3.py", b"print('longer again')")
            .unwrap();
        assert_eq!(names(temp.path()), ["step_3.py"]);
        assert_eq!(std::fs::read(&third).unwrap(), b"print('longer again')");
    }

    #[test]
    fn a_script_the_step_removed_is_written_anew() {
        let temp = tempfile::tempdir().unwrap();
        let mut scripts = Scripts::new(temp.path());
        let first = scripts.write("step_1.sh", b"rm \"$0\"").unwrap();
        std::fs::remove_file(&first).unwrap();
        scripts.done(first);
        let second = scripts.write("step_2.sh", b"true").unwrap();
        assert_eq!(std::fs::read(&second).unwrap(), b"true");
        assert_eq!(names(temp.path()), ["step_2.sh"]);
    }
}
