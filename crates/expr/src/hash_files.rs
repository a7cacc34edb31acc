//! `hashFiles(patterns…)`: a SHA-256 over the SHA-256 of every matching file, as GitHub's
//! runner computes it.
//!
//! The crate does no I/O: the caller hands in the workspace as a [`WorkspaceFiles`]. Patterns
//! follow `@actions/glob`, which GitHub uses: relative to the workspace (or absolute inside it),
//! `*`, `?`, `[...]`, `**`, a leading `!` to exclude what earlier patterns included, `#` for a
//! comment, and a pattern that matches a directory matching everything below it. Files are
//! hashed in path order, component by component, which is the order GitHub's walk visits them.

use std::collections::BTreeSet;

use globset::{GlobBuilder, GlobMatcher};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The job's workspace, as `hashFiles` needs it.
pub trait WorkspaceFiles {
    /// The workspace's absolute path, as the job sees it; patterns may begin with it.
    fn root(&self) -> &str;
    /// Every regular file below `dir` (relative to the root, `""` for the root itself), as
    /// relative paths separated by `/`.
    fn list_files(&self, dir: &str) -> Result<Vec<String>, String>;
    /// The SHA-256 of a file's content, by relative path.
    fn sha256(&self, path: &str) -> Result<[u8; 32], String>;
}

struct Pattern {
    negate: bool,
    matcher: GlobMatcher,
    /// The directory below which the pattern can match anything: its leading literal part.
    search_root: String,
}

/// Computes `hashFiles(patterns)`: the hex digest, or `""` when nothing matches.
pub fn hash_files(files: &dyn WorkspaceFiles, patterns: &[String]) -> Result<String, Error> {
    let fail = |message: String| {
        Error::evaluation(format!(
            "hashFiles('{}') failed. {message}",
            patterns.join(", ")
        ))
    };
    let mut compiled = Vec::new();
    for line in patterns.iter().flat_map(|p| p.lines()) {
        if let Some(pattern) = compile(line, files.root()).map_err(fail)? {
            compiled.push(pattern);
        }
    }

    let mut roots: Vec<&str> = compiled
        .iter()
        .filter(|p| !p.negate)
        .map(|p| p.search_root.as_str())
        .collect();
    roots.sort_unstable();
    roots.dedup();
    // A root below another root is listed with it.
    let roots: Vec<&str> = roots
        .iter()
        .copied()
        .filter(|r| !roots.iter().any(|o| o != r && is_within(r, o)))
        .collect();

    let mut matched: BTreeSet<PathOrder> = BTreeSet::new();
    for root in roots {
        for path in files.list_files(root).map_err(fail)? {
            if is_included(&compiled, &path) {
                matched.insert(PathOrder(path));
            }
        }
    }
    if matched.is_empty() {
        return Ok(String::new());
    }
    let mut outer = Sha256::new();
    for PathOrder(path) in &matched {
        outer.update(files.sha256(path).map_err(fail)?);
    }
    Ok(hex(&outer.finalize()))
}

/// Whether `path` is `dir` or below it (`dir` empty meaning the root).
fn is_within(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The patterns decide in order: an include adds, a later exclude removes.
fn is_included(patterns: &[Pattern], path: &str) -> bool {
    let mut included = false;
    for pattern in patterns {
        if pattern.negate == included && matches_self_or_ancestor(&pattern.matcher, path) {
            included = !pattern.negate;
        }
    }
    included
}

fn matches_self_or_ancestor(matcher: &GlobMatcher, path: &str) -> bool {
    if matcher.is_match(path) {
        return true;
    }
    path.match_indices('/')
        .any(|(i, _)| matcher.is_match(&path[..i]))
}

fn compile(line: &str, root: &str) -> Result<Option<Pattern>, String> {
    let mut pattern = line.trim();
    if pattern.is_empty() || pattern.starts_with('#') {
        return Ok(None);
    }
    let mut negate = false;
    while let Some(rest) = pattern.strip_prefix('!') {
        negate = !negate;
        pattern = rest;
    }
    let root = root.trim_end_matches('/');
    let relative = if pattern.starts_with('/') {
        match pattern.strip_prefix(root) {
            Some(rest) if !root.is_empty() && (rest.is_empty() || rest.starts_with('/')) => {
                rest.trim_start_matches('/')
            }
            // Outside the workspace: GitHub ignores such files.
            _ => return Ok(None),
        }
    } else {
        pattern
    };
    let mut relative = relative;
    while let Some(rest) = relative.strip_prefix("./") {
        relative = rest;
    }
    let relative = relative.trim_end_matches('/');
    let relative = if relative.is_empty() || relative == "." {
        "**"
    } else {
        relative
    };
    if relative.split('/').any(|c| c == "..") {
        return Ok(None);
    }
    let glob = GlobBuilder::new(relative)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("Invalid pattern '{line}': {e}"))?;
    let search_root = relative
        .split('/')
        .take_while(|c| !c.contains(['*', '?', '[', '{']))
        .collect::<Vec<_>>();
    // The last literal component may be a file rather than a directory.
    let search_root = if search_root.len() == relative.split('/').count() {
        &search_root[..search_root.len().saturating_sub(1)]
    } else {
        &search_root[..]
    };
    Ok(Some(Pattern {
        negate,
        matcher: glob.compile_matcher(),
        search_root: search_root.join("/"),
    }))
}

/// Orders paths component by component (`a/x` before `a.txt`), as a depth-first walk that
/// visits each directory's entries sorted by name does.
#[derive(PartialEq, Eq)]
struct PathOrder(String);

impl Ord for PathOrder {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.split('/').cmp(other.0.split('/'))
    }
}

impl PartialOrd for PathOrder {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A workspace held in memory.
    struct MemoryFiles(BTreeMap<&'static str, &'static str>);

    impl WorkspaceFiles for MemoryFiles {
        fn root(&self) -> &str {
            "/work/repo"
        }
        fn list_files(&self, dir: &str) -> Result<Vec<String>, String> {
            Ok(self
                .0
                .keys()
                .filter(|p| is_within(p, dir))
                .map(|p| p.to_string())
                .collect())
        }
        fn sha256(&self, path: &str) -> Result<[u8; 32], String> {
            let content = self.0.get(path).ok_or("no such file")?;
            Ok(Sha256::digest(content.as_bytes()).into())
        }
    }

    fn workspace() -> MemoryFiles {
        MemoryFiles(BTreeMap::from([
            ("package-lock.json", "root lock"),
            ("a/package-lock.json", "a lock"),
            ("a.txt", "a text"),
            ("a/x.js", "x"),
            ("src/main.rs", "fn main() {}"),
            ("src/lib.rs", "// lib"),
        ]))
    }

    fn hash(patterns: &[&str]) -> String {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        hash_files(&workspace(), &patterns).unwrap()
    }

    /// The hash GitHub would give for these file contents, in this order.
    fn expected(contents: &[&str]) -> String {
        let mut outer = Sha256::new();
        for c in contents {
            outer.update(Sha256::digest(c.as_bytes()));
        }
        hex(&outer.finalize())
    }

    #[test]
    fn hashes_matches_in_walk_order() {
        assert_eq!(
            hash(&["**/package-lock.json"]),
            expected(&["a lock", "root lock"])
        );
        assert_eq!(hash(&["src/*.rs"]), expected(&["// lib", "fn main() {}"]));
        assert_eq!(hash(&["a*"]), expected(&["a lock", "x", "a text"]));
    }

    #[test]
    fn negation_comments_and_absolute_paths() {
        assert_eq!(hash(&["**/*.json", "!a/**"]), expected(&["root lock"]));
        assert_eq!(
            hash(&["# comment\nsrc/main.rs"]),
            expected(&["fn main() {}"])
        );
        assert_eq!(
            hash(&["/work/repo/src/main.rs"]),
            expected(&["fn main() {}"])
        );
        assert_eq!(hash(&["/elsewhere/src/main.rs"]), "");
        assert_eq!(hash(&["src"]), expected(&["// lib", "fn main() {}"]));
    }

    #[test]
    fn nothing_matched_is_empty() {
        assert_eq!(hash(&["**/*.go"]), "");
        assert_eq!(hash(&["!**"]), "");
    }
}
