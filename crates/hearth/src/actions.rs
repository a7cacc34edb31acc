//! Actions from other repositories (`uses: owner/repo@ref`), fetched with the real `git`.
//!
//! Each use fetches the reference again (one shallow fetch, as GitHub's runner downloads the
//! actions of every job), so a branch reference is never stale; what it points at is checked
//! out once per commit under `<cache>/<owner>/<repo>/<commit>` and reused from then on. The
//! base URL is GitHub's by default, or the forge's `DEFAULT_ACTIONS_URL` for its jobs.

use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;

use hearth_engine::job::remote::ActionSource;
use tokio::process::Command;
use tokio::sync::Mutex;

/// Fetches actions from `{base_url}/{owner}/{repo}`.
pub struct GitActions {
    base_url: String,
    cache: PathBuf,
    /// Sent as HTTP basic credentials to `base_url` (a forge's own actions may be private).
    token: Option<String>,
    /// The `git` to run (`git` from `PATH`; a test puts a recorder in front of it).
    program: PathBuf,
}

/// One fetch at a time in this process: fetches share each repository's git folder and its
/// `FETCH_HEAD`, whichever job (and so whichever `GitActions`) asks.
static FETCHING: Mutex<()> = Mutex::const_new(());

impl GitActions {
    pub fn new(base_url: &str, cache: PathBuf) -> GitActions {
        GitActions {
            base_url: base_url.trim_end_matches('/').to_owned(),
            cache,
            token: None,
            program: PathBuf::from("git"),
        }
    }

    /// Authenticates to the base URL with `token` (the task's token, for the forge itself).
    pub fn with_token(mut self, token: &str) -> GitActions {
        if !token.is_empty() {
            self.token = Some(token.to_owned());
        }
        self
    }

    /// The folder of `owner/repo` in the cache: exactly two plain names, so that no
    /// `..`, absolute path or extra level can put it (and the `.git` made in it) elsewhere.
    fn repository_folder(&self, repository: &str) -> Result<PathBuf, String> {
        let mut names = 0;
        for component in Path::new(repository).components() {
            match component {
                Component::Normal(_) => names += 1,
                _ => names = usize::MAX,
            }
            if names > 2 {
                break;
            }
        }
        if names != 2 {
            return Err(format!(
                "refusing the action repository '{repository}': expected 'owner/repo'"
            ));
        }
        Ok(self.cache.join(repository))
    }

    async fn fetch_checked_out(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<PathBuf, String> {
        let _one_at_a_time = FETCHING.lock().await;
        let folder = self.repository_folder(repository)?;
        // The engine checks refs already; this keeps `git fetch` safe whoever the caller is.
        if reference.is_empty() || reference.starts_with('-') {
            return Err(format!("refusing the ref '{reference}' of {repository}"));
        }
        let git_dir = folder.join(".git");
        if !git_dir.exists() {
            std::fs::create_dir_all(&folder)
                .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
            git(
                &self.program,
                &["init", "-q", "--bare"],
                Some(&git_dir),
                None,
            )
            .await?;
        }
        let url = format!("{}/{repository}", self.base_url);
        let mut fetch = Vec::new();
        let header;
        if let Some(token) = &self.token {
            use base64::Engine as _;
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            header = format!("http.extraHeader=Authorization: Basic {basic}");
            fetch.extend(["-c", header.as_str()]);
        }
        fetch.extend(fetch_args(&url, reference));
        git(&self.program, &fetch, Some(&git_dir), None).await?;
        let commit = git(
            &self.program,
            &["rev-parse", "FETCH_HEAD"],
            Some(&git_dir),
            None,
        )
        .await?;
        let commit = commit.trim();
        let checked_out = folder.join(commit);
        if checked_out.exists() {
            return Ok(checked_out);
        }
        // Check out beside it, then rename: a half-written folder is never taken for a whole one.
        let partial = folder.join(format!(".{commit}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial)
            .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
        git(
            &self.program,
            &["checkout", "-q", "-f", commit, "--", "."],
            Some(&git_dir),
            Some(&partial),
        )
        .await?;
        std::fs::rename(&partial, &checked_out)
            .map_err(|e| format!("cannot move the action into {}: {e}", checked_out.display()))?;
        Ok(checked_out)
    }
}

impl ActionSource for GitActions {
    fn fetch<'a>(
        &'a self,
        repository: &'a str,
        reference: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<PathBuf, String>> + Send + 'a>> {
        Box::pin(self.fetch_checked_out(repository, reference))
    }
}

/// The arguments of the shallow `git fetch` of `reference` from `url`: after `--`, neither
/// can be read as an option (a ref `--upload-pack=...` would run a command).
fn fetch_args<'a>(url: &'a str, reference: &'a str) -> Vec<&'a str> {
    vec![
        "fetch",
        "-q",
        "--depth",
        "1",
        "--no-tags",
        "--",
        url,
        reference,
    ]
}

/// Runs `git` with `args` on `git_dir` (and `work_tree`); its standard output, or its error
/// output as the error.
async fn git(
    program: &Path,
    args: &[&str],
    git_dir: Option<&Path>,
    work_tree: Option<&Path>,
) -> Result<String, String> {
    let mut command = Command::new(program);
    if let Some(dir) = git_dir {
        command.arg("--git-dir").arg(dir);
    }
    if let Some(tree) = work_tree {
        command.arg("--work-tree").arg(tree);
    }
    let output = command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let args: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| !a.starts_with("http.extraHeader"))
            .collect();
        return Err(format!("git {} failed: {}", args.join(" "), stderr.trim()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use std::process::Command as StdCommand;

    use super::*;

    fn run_git(dir: &Path, args: &[&str]) {
        let status = StdCommand::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
            .args(["-c", "init.defaultBranch=main"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?} failed");
    }

    /// A repository `base/name` with an `action.yml`, tagged `v1`.
    fn make_repo(base: &Path, name: &str) {
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).expect("repo folder");
        run_git(&dir, &["init", "-q"]);
        std::fs::write(dir.join("action.yml"), format!("name: {name}\n")).expect("file");
        run_git(&dir, &["add", "-A"]);
        run_git(&dir, &["commit", "-q", "-m", "action"]);
        run_git(&dir, &["tag", "v1"]);
    }

    fn file_url(dir: &Path) -> String {
        format!("file://{}", dir.display())
    }

    #[tokio::test]
    async fn a_repository_outside_the_cache_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let actions = dir.path().join("actions");
        make_repo(&actions, "acme/greet");
        let cache = dir.path().join("a/b/cache");
        let source = GitActions::new(&file_url(&actions), cache.clone());
        let absolute = dir.path().join("elsewhere");
        let absolute = absolute.to_str().expect("a UTF-8 path");
        for repository in ["../..", "acme/../..", absolute, "acme", "acme/greet/more"] {
            let fetched = source.fetch(repository, "v1").await;
            assert!(fetched.is_err(), "{repository}: {fetched:?}");
        }
        // Nothing was created outside the cache (`a/b/cache/../..` is `a`).
        assert!(!dir.path().join("a/.git").exists());
        assert!(!dir.path().join("elsewhere").exists());
        // A well-formed one still works.
        let folder = source.fetch("acme/greet", "v1").await.expect("fetched");
        assert!(folder.starts_with(&cache) && folder.join("action.yml").exists());
    }

    #[tokio::test]
    async fn a_ref_is_never_read_as_an_option() {
        let dir = tempfile::tempdir().expect("temp dir");
        let actions = dir.path().join("actions");
        make_repo(&actions, "acme/greet");
        let marker = dir.path().join("pwned");
        let source = GitActions::new(&file_url(&actions), dir.path().join("cache"));
        // Were it an option, `git fetch` would run it as its upload-pack command.
        let reference = format!("--upload-pack=touch {};git-upload-pack", marker.display());
        let fetched = source.fetch("acme/greet", &reference).await;
        assert!(fetched.is_err(), "{fetched:?}");
        assert!(!marker.exists(), "the ref ran as an option");
    }

    #[test]
    fn fetch_ends_the_options_before_the_url_and_ref() {
        let args = fetch_args("https://forge.example/acme/greet", "main");
        let end = args.iter().position(|a| *a == "--").expect("a `--`");
        let url = args
            .iter()
            .position(|a| *a == "https://forge.example/acme/greet");
        assert!(url.is_some_and(|url| end < url), "{args:?}");
        assert_eq!(args.last(), Some(&"main"));
    }
}
