//! What a local run needs to know of the repository, asked of the real `git`.
//!
//! Every query is optional: a folder that is not a repository, or a machine without `git`,
//! still plans and runs, with the values left empty.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The repository's state, as far as `git` could tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repository {
    /// The checked-out ref in full, e.g. `refs/heads/main`; `None` on a detached HEAD.
    pub head_ref: Option<String>,
    /// The commit checked out.
    pub sha: Option<String>,
    /// `owner/name` from the `origin` remote's URL.
    pub name: Option<String>,
}

impl Repository {
    /// Reads the repository that contains `dir`.
    ///
    /// Two `git` processes, run side by side: `rev-parse` answers the commit and the branch in
    /// one go, `remote get-url` the remote (it applies `url.*.insteadOf`, which reading the
    /// config would miss). Starting `git` costs about a millisecond and a half, and every
    /// `hearth exec` pays it before its first job. Only on an unborn branch, where `rev-parse`
    /// knows no `HEAD`, does a third ask `symbolic-ref` for the branch.
    pub fn read(dir: &Path) -> Repository {
        let remote = spawn(dir, &["remote", "get-url", "origin"]);
        let head =
            spawn(dir, &["rev-parse", "HEAD", "--symbolic-full-name", "HEAD"]).and_then(answer);
        let (sha, head_ref) = match head.as_deref().map(parse_rev_parse) {
            Some((sha, head_ref)) => (Some(sha), head_ref),
            None => (
                None,
                spawn(dir, &["symbolic-ref", "-q", "HEAD"]).and_then(answer),
            ),
        };
        Repository {
            head_ref,
            sha,
            name: remote.and_then(answer).and_then(|url| name_from_url(&url)),
        }
    }
}

/// Starts `git -C dir ARGS` with its output captured; `None` without a `git` to start.
fn spawn(dir: &Path, args: &[&str]) -> Option<Child> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// What a successful `git` printed, trimmed; `None` when it failed or printed nothing.
fn answer(child: Child) -> Option<String> {
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The commit and the checked-out ref from `rev-parse HEAD --symbolic-full-name HEAD`: two
/// lines, the second `HEAD` itself on a detached HEAD.
fn parse_rev_parse(text: &str) -> (String, Option<String>) {
    let mut lines = text.lines().map(str::trim);
    let sha = lines.next().unwrap_or_default().to_owned();
    let head_ref = lines
        .next()
        .filter(|name| !name.is_empty() && *name != "HEAD")
        .map(str::to_owned);
    (sha, head_ref)
}

/// `owner/name` from a remote URL in any of git's forms: `https://host/owner/name.git`,
/// `ssh://git@host:22/owner/name`, `git@host:owner/name.git`, or a local path ending in
/// `owner/name`.
pub fn name_from_url(url: &str) -> Option<String> {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    // scp-like `user@host:path` has a colon before any slash and no scheme.
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map(|(_, path)| path)?,
        None => match url.split_once(':') {
            Some((host, path)) if !host.contains('/') => path,
            _ => url,
        },
    };
    let mut parts = path.rsplit('/').filter(|p| !p.is_empty());
    let name = parts.next()?;
    let owner = parts.next()?;
    Some(format!("{owner}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::{name_from_url, parse_rev_parse};

    #[test]
    fn rev_parse_gives_the_commit_and_the_branch() {
        let sha = "e99eba851143d881bdd745745bd4a69f0af58620";
        assert_eq!(
            parse_rev_parse(&format!("{sha}\nrefs/heads/main")),
            (sha.to_owned(), Some("refs/heads/main".to_owned()))
        );
        assert_eq!(
            parse_rev_parse(&format!("{sha}\nHEAD")),
            (sha.to_owned(), None)
        );
        assert_eq!(parse_rev_parse(sha), (sha.to_owned(), None));
    }

    #[test]
    fn names_come_from_every_url_form() {
        for url in [
            "https://codeberg.org/acme/app.git",
            "https://codeberg.org/acme/app",
            "http://localhost:3000/acme/app.git/",
            "ssh://git@codeberg.org:2222/acme/app.git",
            "git@codeberg.org:acme/app.git",
            "/srv/git/acme/app.git",
        ] {
            assert_eq!(name_from_url(url).as_deref(), Some("acme/app"), "{url}");
        }
        assert_eq!(name_from_url("https://host/"), None);
        assert_eq!(name_from_url("app"), None);
    }
}
