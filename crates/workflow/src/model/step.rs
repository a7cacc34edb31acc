//! Steps of a job or of a composite action.

use super::common::{Env, OrExpr, Spanned, Text};
use super::job::check_identifier;
use crate::validate::reader::{Loc, Reader};
use crate::yaml::{Node, Span};

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `id`.
    pub id: Option<Text>,
    /// `name`.
    pub name: Option<Text>,
    /// `if`.
    pub condition: Option<Text>,
    /// `env`.
    pub env: Option<Env>,
    /// `continue-on-error`.
    pub continue_on_error: Option<OrExpr<bool>>,
    /// `timeout-minutes`.
    pub timeout_minutes: Option<OrExpr<f64>>,
    /// `background`: run without waiting for the step to finish.
    pub background: Option<Spanned<bool>>,
    /// What the step does.
    pub kind: StepKind,
    /// The step's mapping.
    pub span: Span,
}

/// What a step does, by the key that defines it.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `run`: a script.
    Run {
        /// The script.
        run: Text,
        /// `shell`.
        shell: Option<Text>,
        /// `working-directory`.
        working_directory: Option<Text>,
    },
    /// `uses`: an action.
    Uses {
        /// The action: `owner/repo[/path]@ref`, `./path` or `docker://image`.
        uses: Text,
        /// `with`: the action's inputs.
        with: Option<Env>,
    },
    /// `wait`: wait for background steps.
    Wait {
        /// Ids of the steps to wait for.
        targets: Vec<Text>,
    },
    /// `wait-all`: wait for every background step.
    WaitAll,
    /// `cancel`: cancel a background step.
    Cancel {
        /// Id of the step to cancel.
        target: Text,
    },
    /// `parallel`: run steps side by side.
    Parallel {
        /// The steps.
        steps: Vec<Step>,
    },
}

/// The keys that say what a step does; exactly one must be present.
const KIND_KEYS: &[&str] = &["run", "uses", "wait", "wait-all", "cancel", "parallel"];

/// Which other keys each kind of step takes.
fn allowed_with(kind: &str) -> &'static [&'static str] {
    match kind {
        "run" => &[
            "name",
            "id",
            "if",
            "timeout-minutes",
            "continue-on-error",
            "env",
            "working-directory",
            "shell",
            "background",
        ],
        "uses" => &[
            "name",
            "id",
            "if",
            "timeout-minutes",
            "continue-on-error",
            "env",
            "with",
            "background",
        ],
        "parallel" => &[],
        _ => &["name", "id", "continue-on-error"],
    }
}

/// Reads `steps`; `schema` is the schema path of one step
/// (`jobs.*.steps[]` or `runs.steps[]` for a composite action).
pub(crate) fn read_steps(r: &mut Reader, node: &Node, loc: &Loc, schema: &str) -> Vec<Step> {
    let Some(items) = r.sequence(node, loc) else {
        return Vec::new();
    };
    let mut steps = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = loc.item(i).with_schema(schema);
        if let Some(step) = read_step(r, item, &at, schema) {
            steps.push(step);
        }
    }
    check_unique_ids(r, &steps, loc);
    steps
}

fn check_unique_ids(r: &mut Reader, steps: &[Step], loc: &Loc) {
    let mut seen: Vec<&str> = Vec::new();
    let mut all = Vec::new();
    collect_ids(steps, &mut all);
    for id in all {
        // GitHub compares ids ignoring case: `Build` and `build` are the same id.
        if seen
            .iter()
            .any(|s| hearth_expr::eq_ignore_case(s, &id.value))
        {
            r.error(
                id.span.start,
                format!(
                    "step id '{}' is used more than once in '{}'",
                    id.value, loc.path
                ),
            );
        } else {
            seen.push(&id.value);
        }
    }
}

fn collect_ids<'s>(steps: &'s [Step], out: &mut Vec<&'s Text>) {
    for step in steps {
        out.extend(step.id.iter());
        if let StepKind::Parallel { steps } = &step.kind {
            collect_ids(steps, out);
        }
    }
}

fn read_step(r: &mut Reader, node: &Node, loc: &Loc, schema: &str) -> Option<Step> {
    let entries = r.mapping(node, loc)?;
    let composite = schema.starts_with("runs.");
    let kinds: Vec<(&str, &Node)> = entries
        .iter()
        .filter_map(|(k, _)| {
            let name = k.as_str()?;
            KIND_KEYS.contains(&name).then_some((name, k))
        })
        .collect();
    let Some(&(kind, _)) = kinds.first() else {
        r.error(
            node.span.start,
            format!("step '{}' needs 'run' or 'uses'", loc.path),
        );
        return None;
    };
    for (other, key) in &kinds[1..] {
        r.error(
            key.span.start,
            format!("a step cannot have both '{kind}' and '{other}'"),
        );
    }
    let mut step = Step {
        id: None,
        name: None,
        condition: None,
        env: None,
        continue_on_error: None,
        timeout_minutes: None,
        background: None,
        kind: StepKind::WaitAll,
        span: node.span,
    };
    let allowed = allowed_with(kind);
    let mut shell = None;
    let mut working_directory = None;
    let mut with = None;
    for (key, key_node, value) in r.fixed_entries(entries, loc) {
        if key != kind && !allowed.contains(&key) && !KIND_KEYS.contains(&key) {
            r.error(
                key_node.span.start,
                format!("'{key}' is not allowed in a '{kind}' step"),
            );
            continue;
        }
        let at = loc.key(key);
        match key {
            "id" => {
                step.id = r.non_empty_string(value, &at);
                if let Some(id) = &step.id {
                    check_identifier(r, id, "step id");
                }
            }
            "name" => step.name = r.string(value, &at),
            "if" => step.condition = r.condition(value, &at),
            "env" => step.env = r.string_map(value, &at),
            "continue-on-error" => step.continue_on_error = r.boolean(value, &at),
            "timeout-minutes" => step.timeout_minutes = r.number(value, &at),
            "background" => step.background = r.plain_boolean(value, &at),
            "shell" => shell = r.non_empty_string(value, &at),
            "working-directory" => working_directory = r.non_empty_string(value, &at),
            "with" => with = r.string_map(value, &at),
            _ if key != kind => {}
            "run" => {
                if let Some(run) = r.string(value, &at) {
                    step.kind = StepKind::Run {
                        run,
                        shell: None,
                        working_directory: None,
                    };
                }
            }
            "uses" => {
                if let Some(uses) = read_action_ref(r, value, &at) {
                    step.kind = StepKind::Uses { uses, with: None };
                }
            }
            "wait" => {
                step.kind = StepKind::Wait {
                    targets: r.string_list(value, &at),
                }
            }
            "wait-all" => {
                if !value.is_null() {
                    r.plain_boolean(value, &at);
                }
            }
            "cancel" => {
                if let Some(target) = r.non_empty_string(value, &at) {
                    step.kind = StepKind::Cancel { target };
                }
            }
            _ => {
                step.kind = StepKind::Parallel {
                    steps: read_steps(r, value, &at, schema),
                }
            }
        }
    }
    match &mut step.kind {
        StepKind::Run {
            shell: s,
            working_directory: w,
            ..
        } => {
            if composite
                && shell.is_none()
                && !entries.iter().any(|(k, _)| k.as_str() == Some("shell"))
            {
                r.error(
                    node.span.start,
                    format!("step '{}' of a composite action needs 'shell'", loc.path),
                );
            }
            *s = shell;
            *w = working_directory;
        }
        StepKind::Uses { with: w, .. } => *w = with,
        _ => {}
    }
    Some(step)
}

/// A step's `uses`: `./path`, `docker://image` or `owner/repo[/path]@ref`
/// (Gitea and Forgejo also take a full URL with `@ref`).
fn read_action_ref(r: &mut Reader, node: &Node, loc: &Loc) -> Option<Text> {
    let text = r.non_empty_string(node, loc)?;
    let value = text.value.as_str();
    // GitHub and the forges take only `./` as local; `../x@v1` would otherwise be read as the
    // owner `..` of a remote action, and so as a folder outside the runner's action cache.
    let local = value.starts_with("./");
    let docker = value.starts_with("docker://");
    let remote = value.contains('@') && value.contains('/');
    if !(local || docker || remote) {
        r.error(
            node.span.start,
            format!("invalid action reference '{value}': expected 'owner/repo[/path]@ref', './path' or 'docker://image'"),
        );
    } else if remote && !local && !docker && !text.has_expression() {
        // (An expression is reported on its own: `uses` cannot hold one.)
        if let Err(problem) = RemoteActionRef::parse(value) {
            r.error(
                node.span.start,
                format!("invalid action reference '{value}': {problem}"),
            );
        }
    }
    Some(text)
}

/// `owner/repo[/path]@ref`, split and checked. The runner turns these parts into a folder and
/// into arguments of `git fetch`, so each is held to what GitHub allows: names that cannot
/// leave the action cache, a path that does not go up, a ref that cannot pass for an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteActionRef<'a> {
    /// `scheme://host[:port]` of a full URL (`https://host/owner/repo@ref`, a Gitea and
    /// Forgejo extension); `""` for `owner/repo@ref`.
    pub origin: &'a str,
    /// `owner`.
    pub owner: &'a str,
    /// `repo`.
    pub repo: &'a str,
    /// The folder inside the repository, without surrounding `/` (`""` for the root).
    pub path: &'a str,
    /// A tag, branch or commit.
    pub reference: &'a str,
}

/// Why a `uses:` value is not a valid `owner/repo[/path]@ref`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActionRefError {
    /// Not `owner/repo[/path]@ref` at all (no `@`, or no `/` before it).
    #[error("expected 'owner/repo[/path]@ref'")]
    Shape,
    /// A full URL that is not `http(s)://host[:port]/owner/repo[/path]@ref`.
    #[error("expected 'https://host/owner/repo[/path]@ref' (http or https, a host and port only)")]
    Url,
    /// The owner is not a GitHub name.
    #[error(
        "'{0}' is not a valid owner name (letters, digits, '-', '_' and '.', but not '.' or '..')"
    )]
    Owner(String),
    /// The repository is not a GitHub name.
    #[error("'{0}' is not a valid repository name (letters, digits, '-', '_' and '.', but not '.' or '..')")]
    Repository(String),
    /// A path segment is `..`.
    #[error("its path must not contain '..'")]
    PathUp,
    /// Nothing after `@`.
    #[error("the ref after '@' must not be empty")]
    EmptyRef,
    /// The ref starts with `-`: `git` would read it as an option.
    #[error("the ref must not start with '-'")]
    RefOption,
    /// The ref holds characters no git ref name has (`:` would even make it a refspec).
    #[error("the ref must not contain spaces, control characters or any of ~ ^ : ? * [ \\")]
    RefCharacters,
}

impl<'a> RemoteActionRef<'a> {
    /// Splits and checks `uses` (not a `./path` or `docker://` value): `owner/repo[/path]@ref`
    /// or `http(s)://host[:port]/owner/repo[/path]@ref`.
    pub fn parse(uses: &'a str) -> Result<RemoteActionRef<'a>, ActionRefError> {
        let (origin, rest) = match uses.split_once("://") {
            Some((scheme, after)) => {
                let authority = after.split('/').next().unwrap_or_default();
                let plain = !authority.is_empty()
                    && authority.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_')
                    });
                if !matches!(scheme, "http" | "https") || !plain || after.len() == authority.len() {
                    return Err(ActionRefError::Url);
                }
                let origin = &uses[..scheme.len() + 3 + authority.len()];
                (origin, &after[authority.len() + 1..])
            }
            None => ("", uses),
        };
        let mut parsed = Self::parse_name(rest)?;
        parsed.origin = origin;
        Ok(parsed)
    }

    /// `owner/repo[/path]@ref`.
    fn parse_name(uses: &'a str) -> Result<RemoteActionRef<'a>, ActionRefError> {
        let (name, reference) = uses.rsplit_once('@').ok_or(ActionRefError::Shape)?;
        let mut parts = name.splitn(3, '/');
        let owner = parts.next().unwrap_or_default();
        let repo = parts.next().ok_or(ActionRefError::Shape)?;
        if !is_github_name(owner) {
            return Err(ActionRefError::Owner(owner.to_owned()));
        }
        if !is_github_name(repo) {
            return Err(ActionRefError::Repository(repo.to_owned()));
        }
        // GitHub ignores empty segments (`a/b//c`); trimming them keeps the path relative.
        let path = parts.next().unwrap_or_default().trim_matches('/');
        check_path(path)?;
        check_reference(reference)?;
        Ok(RemoteActionRef {
            origin: "",
            owner,
            repo,
            path,
            reference,
        })
    }
}

/// `[A-Za-z0-9_.-]+`, but not `.` or `..`: GitHub's rule for owners and repositories, and
/// never a folder other than one inside the one it is joined to.
fn is_github_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_path(path: &str) -> Result<(), ActionRefError> {
    if path.split('/').any(|segment| segment == "..") {
        return Err(ActionRefError::PathUp);
    }
    Ok(())
}

fn check_reference(reference: &str) -> Result<(), ActionRefError> {
    if reference.is_empty() {
        return Err(ActionRefError::EmptyRef);
    }
    if reference.starts_with('-') {
        return Err(ActionRefError::RefOption);
    }
    let forbidden = |c: char| {
        c.is_whitespace() || c.is_control() || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    };
    if reference.contains(forbidden) {
        return Err(ActionRefError::RefCharacters);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_action_refs_are_split_and_checked() {
        assert_eq!(
            RemoteActionRef::parse("acme/tools//lint/rust/@v1.2"),
            Ok(RemoteActionRef {
                origin: "",
                owner: "acme",
                repo: "tools",
                path: "lint/rust",
                reference: "v1.2"
            })
        );
        assert_eq!(
            RemoteActionRef::parse("acme/tools//etc@v1").map(|r| r.path),
            Ok("etc")
        );
        let url = RemoteActionRef::parse("https://git.example.com:3000/acme/tools/lint@v1")
            .expect("a full URL");
        assert_eq!(
            (url.origin, url.owner, url.repo, url.path, url.reference),
            (
                "https://git.example.com:3000",
                "acme",
                "tools",
                "lint",
                "v1"
            )
        );
        for (uses, problem) in [
            ("ftp://host/acme/x@v1", ActionRefError::Url),
            ("https://host@v1", ActionRefError::Url),
            ("https://us@er/acme/x@v1", ActionRefError::Url),
            ("https:///acme/x@v1", ActionRefError::Url),
            (
                "https://host/acme/../x@v1",
                ActionRefError::Repository("..".into()),
            ),
            ("../..@v1", ActionRefError::Owner("..".into())),
            ("./x@v1", ActionRefError::Owner(".".into())),
            ("a\\b/c@v1", ActionRefError::Owner("a\\b".into())),
            ("acme@v1", ActionRefError::Shape),
            ("acme/greet", ActionRefError::Shape),
            ("acme/x/../../y@v1", ActionRefError::PathUp),
            ("acme/greet@--upload-pack=x", ActionRefError::RefOption),
            ("acme/greet@v1\tx", ActionRefError::RefCharacters),
            ("acme/greet@v1\u{1b}[2J", ActionRefError::RefCharacters),
            ("acme/greet@v1\u{a0}", ActionRefError::RefCharacters),
        ] {
            assert_eq!(RemoteActionRef::parse(uses), Err(problem), "{uses:?}");
        }
    }
}
