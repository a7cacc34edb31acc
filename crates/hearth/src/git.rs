//! What a local run needs to know of the repository, asked of the real `git`.
//!
//! Every query is optional: a folder that is not a repository, or a machine without `git`,
//! still plans and runs, with the values left empty.

use std::path::Path;
use std::process::Command;

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
    pub fn read(dir: &Path) -> Repository {
        Repository {
            head_ref: git(dir, &["symbolic-ref", "-q", "HEAD"]),
            sha: git(dir, &["rev-parse", "-q", "--verify", "HEAD"]),
            name: git(dir, &["remote", "get-url", "origin"]).and_then(|url| name_from_url(&url)),
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
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
    use super::name_from_url;

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
