//! Which workflows an event triggers: GitHub's `on:` filters.
//!
//! `hearth exec` plays the forge's part and must decide, like GitHub does,
//! whether a workflow runs for an event. This module is the pure logic: the
//! caller supplies the event name, its payload, the Git ref and the list of
//! changed files (computed with Git), and asks [`EventFilter::matches`].
//!
//! ```
//! use hearth_workflow::filters::{workflow_triggers, EventInfo};
//! use serde_json::json;
//!
//! let on = json!({"push": {"branches": ["main", "releases/**"], "paths-ignore": ["docs/**"]}});
//! let triggers = workflow_triggers(&on).unwrap();
//! let payload = json!({});
//! let changed = vec!["src/lib.rs".to_owned()];
//! let event = EventInfo {
//!     name: "push",
//!     payload: &payload,
//!     git_ref: Some("refs/heads/releases/v1"),
//!     changed_paths: Some(&changed),
//! };
//! assert!(triggers.iter().any(|t| t.matches(&event)));
//! ```
//!
//! # The rules, and where they come from
//!
//! All from GitHub's documentation (*Workflow syntax for GitHub Actions* and
//! *Events that trigger workflows*) and the workflow schema of
//! `actions/languageservices` (`workflow-v1.0.json`):
//!
//! - Patterns: see [`Pattern`]. Branch and tag patterns match the short name
//!   (`main`, `v1.2`); a full `refs/heads/…` or `refs/tags/…` ref is reduced
//!   to it first.
//! - `branches`, `tags`, `paths` (and `workflows`): the last pattern that
//!   matches decides; an input no pattern matches is excluded. A list with
//!   `!` patterns needs at least one positive pattern ([`FilterError::OnlyNegative`]).
//! - `branches-ignore`, `tags-ignore`, `paths-ignore`: excluded when a
//!   pattern matches (with `!` patterns, when the last matching one is
//!   positive; without them this is "any pattern matches").
//! - A filter and its `-ignore` form together are an error
//!   ([`FilterError::Conflicting`]), except for `merge_group`, where GitHub
//!   accepts both and a branch must pass each.
//! - `push`: with only branch filters a tag push does not run, and with
//!   only tag filters a branch push does not run; with both, the filter of
//!   the pushed ref's kind decides. Refs that are neither branches nor tags
//!   never pass a ref filter. Path filters are not evaluated for tag pushes.
//! - Path filters AND with the ref filters. `paths`: runs when at least one
//!   changed file is selected. `paths-ignore`: runs when at least one changed
//!   file is not ignored. No changed files: does not run.
//! - GitHub's diffs are limited to [`DIFF_FILE_LIMIT`] files: only the first
//!   300 changed files are matched, so a change that only touches a matching
//!   file after them does not run the workflow. When GitHub cannot produce
//!   the diff (more than 1,000 commits pushed, or a timeout) the workflow
//!   always runs: callers in that situation pass no `changed_paths`.
//! - `pull_request`, `pull_request_target`: `branches` match the base
//!   branch (`pull_request.base.ref`); without `types` only the `opened`,
//!   `synchronize` and `reopened` activities run. Every other event with
//!   `types` runs for all its activities when `types` is absent.
//! - `merge_group`: `branches` match `merge_group.base_ref`.
//! - `workflow_run`: `branches` match `workflow_run.head_branch`,
//!   `workflows` match `workflow_run.name` (as patterns: GitHub refuses an
//!   unescaped `C++` there).
//! - `schedule`, `workflow_dispatch`, `workflow_call`: no filters; their
//!   configuration (crons, inputs) is left to the caller.
//!
//! # When the caller does not know
//!
//! A filter whose input is missing is not applied: no `changed_paths` means
//! path filters pass (as GitHub does when it cannot produce the diff), no
//! `action` in the payload means `types` pass, no ref / base branch /
//! workflow name means the ref or `workflows` filters pass. A local run thus
//! errs on the side of running.

mod error;
mod pattern;

use serde_json::Value;

pub use error::FilterError;
pub use pattern::{Pattern, PatternError, PatternList};

use error::describe;

/// GitHub compares at most this many changed files with path filters ("Diffs
/// are limited to 300 files", *Workflow syntax for GitHub Actions*); files
/// after them are not looked at.
pub const DIFF_FILE_LIMIT: usize = 300;

/// The activity types a `pull_request` or `pull_request_target` workflow
/// runs for when it names none.
pub const DEFAULT_PULL_REQUEST_TYPES: &[&str] = &["opened", "synchronize", "reopened"];

/// The event being dispatched, as the caller knows it.
#[derive(Debug, Clone, Copy)]
pub struct EventInfo<'a> {
    /// The event name, such as `push` or `pull_request`.
    pub name: &'a str,
    /// The webhook payload (`github.event`).
    pub payload: &'a Value,
    /// The ref, preferably in full (`refs/heads/main`, `refs/tags/v1`). A
    /// name without `refs/` is taken as a branch. For `push`, `None` falls
    /// back to the payload's `ref`.
    pub git_ref: Option<&'a str>,
    /// Repository-relative paths of the changed files, if known.
    pub changed_paths: Option<&'a [String]>,
}

/// Why a workflow does not run for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The filter is for another event.
    OtherEvent {
        /// The event the filter is for.
        expected: String,
    },
    /// The payload's `action` is not among the activity types.
    ActivityType {
        /// The payload's `action`.
        action: String,
    },
    /// A branch push, but only tag filters are defined.
    BranchNotFiltered,
    /// A tag push, but only branch filters are defined.
    TagNotFiltered,
    /// The ref is neither a branch nor a tag, and ref filters are defined.
    NotBranchOrTag {
        /// The ref.
        git_ref: String,
    },
    /// The branch is not selected by `branches`.
    BranchNotIncluded {
        /// The short branch name.
        branch: String,
    },
    /// The branch is excluded by `branches-ignore`.
    BranchIgnored {
        /// The short branch name.
        branch: String,
    },
    /// The tag is not selected by `tags`.
    TagNotIncluded {
        /// The short tag name.
        tag: String,
    },
    /// The tag is excluded by `tags-ignore`.
    TagIgnored {
        /// The short tag name.
        tag: String,
    },
    /// The triggering workflow is not selected by `workflows`.
    WorkflowNotIncluded {
        /// The triggering workflow's name.
        workflow: String,
    },
    /// No changed file is selected by `paths` (or no file changed).
    NoPathIncluded,
    /// Every changed file is excluded by `paths-ignore` (or no file changed).
    AllPathsIgnored,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OtherEvent { expected } => write!(f, "the filter is for the `{expected}` event"),
            Self::ActivityType { action } => {
                write!(f, "activity type `{action}` is not in the workflow's types")
            }
            Self::BranchNotFiltered => {
                f.write_str("a branch was pushed but only tags are filtered")
            }
            Self::TagNotFiltered => f.write_str("a tag was pushed but only branches are filtered"),
            Self::NotBranchOrTag { git_ref } => {
                write!(f, "ref `{git_ref}` is neither a branch nor a tag")
            }
            Self::BranchNotIncluded { branch } => {
                write!(f, "branch `{branch}` does not match `branches`")
            }
            Self::BranchIgnored { branch } => {
                write!(f, "branch `{branch}` matches `branches-ignore`")
            }
            Self::TagNotIncluded { tag } => write!(f, "tag `{tag}` does not match `tags`"),
            Self::TagIgnored { tag } => write!(f, "tag `{tag}` matches `tags-ignore`"),
            Self::WorkflowNotIncluded { workflow } => {
                write!(f, "workflow `{workflow}` does not match `workflows`")
            }
            Self::NoPathIncluded => f.write_str("no changed file matches `paths`"),
            Self::AllPathsIgnored => f.write_str("every changed file matches `paths-ignore`"),
        }
    }
}

/// The filters of one event under `on:`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// The event name, such as `push`.
    pub event: String,
    /// `branches`.
    pub branches: Option<PatternList>,
    /// `branches-ignore`.
    pub branches_ignore: Option<PatternList>,
    /// `tags` (`push` only).
    pub tags: Option<PatternList>,
    /// `tags-ignore` (`push` only).
    pub tags_ignore: Option<PatternList>,
    /// `paths`.
    pub paths: Option<PatternList>,
    /// `paths-ignore`.
    pub paths_ignore: Option<PatternList>,
    /// `types`, as written; `None` means the event's default.
    pub types: Option<Vec<String>>,
    /// `workflows` (`workflow_run` only).
    pub workflows: Option<PatternList>,
}

/// Which filter keys an event accepts, per GitHub's workflow schema.
struct EventSpec {
    branches: bool,
    tags: bool,
    paths: bool,
    types: bool,
    workflows: bool,
}

const NONE: EventSpec = EventSpec {
    branches: false,
    tags: false,
    paths: false,
    types: false,
    workflows: false,
};
const TYPES: EventSpec = EventSpec {
    types: true,
    ..NONE
};
const ALL: EventSpec = EventSpec {
    branches: true,
    tags: true,
    paths: true,
    types: true,
    workflows: true,
};

/// `None`: an event GitHub does not define; every filter is accepted.
fn spec(event: &str) -> Option<EventSpec> {
    Some(match event {
        "push" => EventSpec {
            branches: true,
            tags: true,
            paths: true,
            ..NONE
        },
        "pull_request" | "pull_request_target" => EventSpec {
            branches: true,
            paths: true,
            types: true,
            ..NONE
        },
        "merge_group" => EventSpec {
            branches: true,
            types: true,
            ..NONE
        },
        "workflow_run" => EventSpec {
            branches: true,
            types: true,
            workflows: true,
            ..NONE
        },
        "branch_protection_rule"
        | "check_run"
        | "check_suite"
        | "discussion"
        | "discussion_comment"
        | "issue_comment"
        | "issues"
        | "label"
        | "milestone"
        | "project"
        | "project_card"
        | "project_column"
        | "pull_request_comment"
        | "pull_request_review"
        | "pull_request_review_comment"
        | "registry_package"
        | "release"
        | "repository_dispatch"
        | "watch" => TYPES,
        "create" | "delete" | "deployment" | "deployment_status" | "fork" | "gollum"
        | "page_build" | "public" | "status" => NONE,
        _ => return None,
    })
}

/// Whether GitHub lets this event have a filter and its `-ignore` form together
/// (`merge_group`: a branch must then be selected by one and not by the other).
pub(crate) fn allows_filter_with_its_ignore(event: &str) -> bool {
    event == "merge_group"
}

/// Events whose configuration is not filters; the caller handles them.
fn unfiltered(event: &str) -> bool {
    matches!(event, "schedule" | "workflow_dispatch" | "workflow_call")
}

/// The activity types an event runs for when `types` is absent; `None`
/// means all.
pub fn default_types(event: &str) -> Option<&'static [&'static str]> {
    match event {
        "pull_request" | "pull_request_target" => Some(DEFAULT_PULL_REQUEST_TYPES),
        _ => None,
    }
}

impl EventFilter {
    /// Reads the filters of `event` from the value under `on.<event>`
    /// (`null` when the event is listed without configuration). Patterns
    /// and `types` may be a string or a sequence of strings. Fails with the
    /// first problem; [`EventFilter::validate`] reports them all.
    pub fn from_json(event: &str, config: &Value) -> Result<Self, FilterError> {
        let (filter, mut errors) = parse(event, config);
        if errors.is_empty() {
            Ok(filter)
        } else {
            Err(errors.swap_remove(0))
        }
    }

    /// Every problem with the filters of `event` under `on.<event>`: bad
    /// values and patterns, a filter with its `-ignore` form, filters with
    /// only negative patterns, and filters the event does not accept.
    pub fn validate(event: &str, config: &Value) -> Vec<FilterError> {
        parse(event, config).1
    }

    /// The filters of `event` with no configuration (`on: push`).
    pub fn unfiltered(event: &str) -> Self {
        Self {
            event: event.to_owned(),
            ..Self::default()
        }
    }

    /// Whether the workflow runs for `event` as far as this filter is
    /// concerned.
    pub fn matches(&self, event: &EventInfo<'_>) -> bool {
        self.check(event).is_ok()
    }

    /// Like [`EventFilter::matches`], saying why not.
    pub fn check(&self, event: &EventInfo<'_>) -> Result<(), SkipReason> {
        if event.name != self.event {
            return Err(SkipReason::OtherEvent {
                expected: self.event.clone(),
            });
        }
        if unfiltered(&self.event) {
            return Ok(());
        }
        self.check_types(event.payload)?;
        let payload = event.payload;
        match self.event.as_str() {
            "push" => {
                let git_ref = event.git_ref.or_else(|| str_at(payload, &["ref"]));
                let is_tag = self.check_push_ref(git_ref)?;
                if !is_tag {
                    self.check_paths(event.changed_paths)?;
                }
            }
            "pull_request" | "pull_request_target" => {
                self.check_branch(str_at(payload, &["pull_request", "base", "ref"]))?;
                self.check_paths(event.changed_paths)?;
            }
            "merge_group" => {
                self.check_branch(str_at(payload, &["merge_group", "base_ref"]))?;
            }
            "workflow_run" => {
                self.check_branch(str_at(payload, &["workflow_run", "head_branch"]))?;
                if let (Some(list), Some(name)) =
                    (&self.workflows, str_at(payload, &["workflow_run", "name"]))
                {
                    if !list.selects(name) {
                        return Err(SkipReason::WorkflowNotIncluded {
                            workflow: name.to_owned(),
                        });
                    }
                }
            }
            _ => {
                // Events GitHub gives no ref filters never carry any (the
                // parser refuses them); other events are treated like push.
                let is_tag = self.check_push_ref(event.git_ref)?;
                if !is_tag {
                    self.check_paths(event.changed_paths)?;
                }
            }
        }
        Ok(())
    }

    fn check_types(&self, payload: &Value) -> Result<(), SkipReason> {
        let Some(action) = str_at(payload, &["action"]) else {
            return Ok(());
        };
        let allowed = match (&self.types, default_types(&self.event)) {
            (Some(types), _) => types.iter().any(|t| t == action),
            (None, Some(defaults)) => defaults.contains(&action),
            (None, None) => true,
        };
        if allowed {
            Ok(())
        } else {
            Err(SkipReason::ActivityType {
                action: action.to_owned(),
            })
        }
    }

    /// Applies the branch and tag filters to a pushed ref; returns whether
    /// it is a tag.
    fn check_push_ref(&self, git_ref: Option<&str>) -> Result<bool, SkipReason> {
        let Some(git_ref) = git_ref else {
            return Ok(false);
        };
        let has_branch = self.branches.is_some() || self.branches_ignore.is_some();
        let has_tag = self.tags.is_some() || self.tags_ignore.is_some();
        match RefKind::of(git_ref) {
            RefKind::Branch(branch) => {
                if has_branch {
                    self.check_branch(Some(branch))?;
                } else if has_tag {
                    return Err(SkipReason::BranchNotFiltered);
                }
                Ok(false)
            }
            RefKind::Tag(tag) => {
                if has_tag {
                    if let Some(list) = &self.tags {
                        if !list.selects(tag) {
                            return Err(SkipReason::TagNotIncluded { tag: tag.into() });
                        }
                    }
                    if let Some(list) = &self.tags_ignore {
                        if list.selects(tag) {
                            return Err(SkipReason::TagIgnored { tag: tag.into() });
                        }
                    }
                } else if has_branch {
                    return Err(SkipReason::TagNotFiltered);
                }
                Ok(true)
            }
            RefKind::Other(other) => {
                if has_branch || has_tag {
                    Err(SkipReason::NotBranchOrTag {
                        git_ref: other.into(),
                    })
                } else {
                    Ok(false)
                }
            }
        }
    }

    fn check_branch(&self, branch: Option<&str>) -> Result<(), SkipReason> {
        let Some(branch) = branch else {
            return Ok(());
        };
        let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        if let Some(list) = &self.branches {
            if !list.selects(branch) {
                return Err(SkipReason::BranchNotIncluded {
                    branch: branch.into(),
                });
            }
        }
        if let Some(list) = &self.branches_ignore {
            if list.selects(branch) {
                return Err(SkipReason::BranchIgnored {
                    branch: branch.into(),
                });
            }
        }
        Ok(())
    }

    fn check_paths(&self, files: Option<&[String]>) -> Result<(), SkipReason> {
        if self.paths.is_none() && self.paths_ignore.is_none() {
            return Ok(());
        }
        let Some(files) = files else {
            return Ok(());
        };
        let files = &files[..files.len().min(DIFF_FILE_LIMIT)];
        if let Some(list) = &self.paths {
            if !files.iter().any(|f| list.selects(f)) {
                return Err(SkipReason::NoPathIncluded);
            }
        }
        if let Some(list) = &self.paths_ignore {
            if files.iter().all(|f| list.selects(f)) {
                return Err(SkipReason::AllPathsIgnored);
            }
        }
        Ok(())
    }
}

/// A ref, reduced to what branch and tag filters see.
enum RefKind<'a> {
    Branch(&'a str),
    Tag(&'a str),
    Other(&'a str),
}

impl<'a> RefKind<'a> {
    fn of(git_ref: &'a str) -> Self {
        if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
            Self::Branch(branch)
        } else if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
            Self::Tag(tag)
        } else if git_ref.starts_with("refs/") {
            Self::Other(git_ref)
        } else {
            Self::Branch(git_ref)
        }
    }
}

/// The string at `path` in `value`, if there is one.
fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

/// Parses one event's filters, collecting every problem.
fn parse(event: &str, config: &Value) -> (EventFilter, Vec<FilterError>) {
    let mut filter = EventFilter::unfiltered(event);
    let mut errors = Vec::new();
    if unfiltered(event) {
        return (filter, errors);
    }
    let map = match config {
        Value::Null => return (filter, errors),
        Value::Object(map) => map,
        other => {
            errors.push(FilterError::InvalidEventConfig {
                event: event.into(),
                found: describe(other),
            });
            return (filter, errors);
        }
    };
    let spec = spec(event).unwrap_or(ALL);
    for (key, value) in map {
        let allowed = match key.as_str() {
            "branches" | "branches-ignore" => spec.branches,
            "tags" | "tags-ignore" => spec.tags,
            "paths" | "paths-ignore" => spec.paths,
            "types" => spec.types,
            "workflows" => spec.workflows,
            // Not a filter (such as `inputs`): someone else's concern.
            _ => continue,
        };
        if !allowed {
            errors.push(FilterError::Unsupported {
                event: event.into(),
                key: key.clone(),
            });
            continue;
        }
        let Some(items) = strings(event, key, value, &mut errors) else {
            continue;
        };
        if key == "types" {
            filter.types = Some(items);
            continue;
        }
        let list = match PatternList::new(&items) {
            Ok(list) => list,
            Err(source) => {
                errors.push(FilterError::InvalidPattern {
                    event: event.into(),
                    key: key.clone(),
                    source,
                });
                continue;
            }
        };
        if matches!(key.as_str(), "branches" | "tags" | "paths")
            && list.has_negative()
            && !list.has_positive()
        {
            errors.push(FilterError::OnlyNegative {
                event: event.into(),
                key: key.clone(),
            });
        }
        let slot = match key.as_str() {
            "branches" => &mut filter.branches,
            "branches-ignore" => &mut filter.branches_ignore,
            "tags" => &mut filter.tags,
            "tags-ignore" => &mut filter.tags_ignore,
            "paths" => &mut filter.paths,
            "paths-ignore" => &mut filter.paths_ignore,
            _ => &mut filter.workflows,
        };
        *slot = Some(list);
    }
    let checked_pairs = if allows_filter_with_its_ignore(event) {
        0
    } else {
        3
    };
    for (key, include, ignore) in [
        ("branches", &filter.branches, &filter.branches_ignore),
        ("tags", &filter.tags, &filter.tags_ignore),
        ("paths", &filter.paths, &filter.paths_ignore),
    ]
    .into_iter()
    .take(checked_pairs)
    {
        if include.is_some() && ignore.is_some() {
            errors.push(FilterError::Conflicting {
                event: event.into(),
                key: key.into(),
            });
        }
    }
    (filter, errors)
}

/// A string or a sequence of non-empty strings.
fn strings(
    event: &str,
    key: &str,
    value: &Value,
    errors: &mut Vec<FilterError>,
) -> Option<Vec<String>> {
    const EXPECTED: &str = "a non-empty string or a sequence of them (quote numbers)";
    let bad = |found: &Value| FilterError::InvalidValue {
        event: event.into(),
        key: key.into(),
        expected: EXPECTED,
        found: describe(found),
    };
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(s) if !s.is_empty() => out.push(s.clone()),
            other => {
                errors.push(bad(other));
                return None;
            }
        }
    }
    Some(out)
}

/// Reads every event of a workflow's `on:` value, in the three forms GitHub
/// accepts: `on: push`, `on: [push, pull_request]` and a mapping of events
/// to their configuration (`on: {push: null, pull_request: {branches: main}}`).
pub fn workflow_triggers(on: &Value) -> Result<Vec<EventFilter>, FilterError> {
    let (filters, mut errors) = parse_on(on);
    if errors.is_empty() {
        Ok(filters)
    } else {
        Err(errors.swap_remove(0))
    }
}

/// Every problem in a workflow's `on:` value.
pub fn validate_on(on: &Value) -> Vec<FilterError> {
    parse_on(on).1
}

/// Whether a workflow with this `on:` value runs for `event`.
pub fn triggered_by(on: &Value, event: &EventInfo<'_>) -> Result<bool, FilterError> {
    Ok(workflow_triggers(on)?.iter().any(|f| f.matches(event)))
}

fn parse_on(on: &Value) -> (Vec<EventFilter>, Vec<FilterError>) {
    let mut filters = Vec::new();
    let mut errors = Vec::new();
    let add_name = |item: &Value, filters: &mut Vec<EventFilter>, errors: &mut Vec<_>| match item {
        Value::String(name) if !name.is_empty() => filters.push(EventFilter::unfiltered(name)),
        other => errors.push(FilterError::InvalidOn {
            message: format!("expected an event name, found {}", describe(other)),
        }),
    };
    match on {
        Value::String(_) => add_name(on, &mut filters, &mut errors),
        Value::Array(items) => {
            for item in items {
                add_name(item, &mut filters, &mut errors);
            }
        }
        Value::Object(map) => {
            for (name, config) in map {
                if name.is_empty() {
                    errors.push(FilterError::InvalidOn {
                        message: "an event name cannot be empty".into(),
                    });
                    continue;
                }
                let (filter, errs) = parse(name, config);
                errors.extend(errs);
                filters.push(filter);
            }
        }
        other => errors.push(FilterError::InvalidOn {
            message: format!(
                "expected an event name, a sequence of them or a mapping, found {}",
                describe(other)
            ),
        }),
    }
    (filters, errors)
}
