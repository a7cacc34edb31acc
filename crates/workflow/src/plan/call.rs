//! Calling a reusable workflow (`jobs.<id>.uses`), the parts a forge decides before the called
//! jobs run: where the called file is ([`WorkflowRef`]), the `inputs` it gets ([`call_inputs`]:
//! `with:` checked against `on.workflow_call.inputs`, defaults filled in), the `secrets` it gets
//! ([`call_secrets`]), and afterwards the outputs it gives back ([`call_outputs`]).
//!
//! Reading the called file is the caller's business (this crate does no I/O): it hands the text
//! to [`Workflow::parse`] and the parsed workflow here.

use hearth_expr::{Object, Value as ExprValue};

use super::eval;
use crate::model::{
    EventConfig, InputType, Job, JobSecrets, Scalar, Spanned, Workflow, WorkflowCall,
};
use crate::validate::Diagnostic;
use crate::yaml::Pos;

/// How deep calls may nest, the calling workflow counting as the first level (GitHub's limit).
pub const MAX_CALL_DEPTH: usize = 4;

/// The folders a local reusable workflow may live in: GitHub's, and the forges' own.
const WORKFLOW_FOLDERS: [&str; 3] = [
    ".github/workflows",
    ".gitea/workflows",
    ".forgejo/workflows",
];

/// Where the workflow a job calls is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkflowRef<'a> {
    /// `./.forgejo/workflows/x.yml`: a file of the caller's repository, `path` without `./`.
    Local {
        /// Relative to the repository's root, checked to stay inside it.
        path: &'a str,
    },
    /// `owner/repo/.github/workflows/x.yml@ref`, or the same after `https://host/` (a Gitea
    /// and Forgejo extension).
    Remote {
        /// `owner/repo`, or the repository's URL (`https://host/owner/repo`).
        repository: &'a str,
        /// The file inside that repository.
        path: &'a str,
        /// A tag, branch or commit.
        reference: &'a str,
    },
}

impl<'a> WorkflowRef<'a> {
    /// Reads a `uses:` value.
    ///
    /// # Errors
    ///
    /// What is wrong with it, for people: a path outside the workflow folders, `..`, a missing
    /// `@ref`, a URL that is not `http(s)://host[:port]/...`.
    pub fn parse(uses: &'a str) -> Result<WorkflowRef<'a>, String> {
        if let Some(path) = uses.strip_prefix("./") {
            check_path(path).map_err(|e| format!("'{uses}': {e}"))?;
            return Ok(WorkflowRef::Local { path });
        }
        // `https://host[:port]/` before `owner/repo/...`: the repository is then its URL.
        let origin = match uses.split_once("://") {
            Some((scheme, after)) => {
                let authority = after.split('/').next().unwrap_or_default();
                let plain = !authority.is_empty()
                    && authority.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_')
                    });
                if !matches!(scheme, "http" | "https") || !plain {
                    return Err(format!(
                        "'{uses}': expected 'https://host/owner/repo/path/to/workflow.yml@ref' \
                         (http or https, a host and port only)"
                    ));
                }
                scheme.len() + 3 + authority.len() + 1
            }
            None => 0,
        };
        let Some((location, reference)) = uses.get(origin..).and_then(|u| u.rsplit_once('@'))
        else {
            return Err(format!(
                "'{uses}': expected './path/to/workflow.yml' or \
                 'owner/repo/path/to/workflow.yml@ref'"
            ));
        };
        let mut parts = location.splitn(3, '/');
        let (Some(owner), Some(repo), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "'{uses}': expected 'owner/repo/path/to/workflow.yml@ref'"
            ));
        };
        let plain = |name: &str| {
            !name.is_empty()
                && name != "."
                && name != ".."
                && !name.starts_with('-')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !plain(owner) || !plain(repo) {
            return Err(format!(
                "'{uses}': '{owner}/{repo}' is not a repository name"
            ));
        }
        if reference.is_empty() || reference.starts_with('-') {
            return Err(format!("'{uses}': '{reference}' is not a ref"));
        }
        check_path(path).map_err(|e| format!("'{uses}': {e}"))?;
        Ok(WorkflowRef::Remote {
            repository: &uses[..origin + owner.len() + 1 + repo.len()],
            path,
            reference,
        })
    }
}

/// A workflow file straight inside one of [`WORKFLOW_FOLDERS`], as GitHub requires (no
/// sub-folders), so that no `uses:` can reach a file elsewhere.
fn check_path(path: &str) -> Result<(), String> {
    let in_folder = path.rsplit_once('/').is_some_and(|(folder, name)| {
        WORKFLOW_FOLDERS.contains(&folder)
            && !name.is_empty()
            && !name.starts_with('.')
            && (name.ends_with(".yml") || name.ends_with(".yaml"))
    });
    if in_folder {
        Ok(())
    } else {
        Err(format!(
            "the called workflow must be a .yml or .yaml file directly in {} or {}",
            WORKFLOW_FOLDERS[..WORKFLOW_FOLDERS.len() - 1].join(", "),
            WORKFLOW_FOLDERS[WORKFLOW_FOLDERS.len() - 1]
        ))
    }
}

/// What the called workflow declares under `on.workflow_call`.
///
/// # Errors
///
/// The workflow does not run on `workflow_call`, so it cannot be called; the error points at
/// the caller's `uses:`.
pub fn workflow_call<'w>(
    file: &str,
    job: &Job,
    callee: &'w Workflow,
    callee_file: &str,
) -> Result<std::borrow::Cow<'w, WorkflowCall>, Diagnostic> {
    match callee.on.event("workflow_call").map(|e| &e.config) {
        Some(EventConfig::WorkflowCall(call)) => Ok(std::borrow::Cow::Borrowed(call)),
        Some(_) => Ok(std::borrow::Cow::Owned(WorkflowCall::default())),
        None => Err(Diagnostic::new(
            file,
            uses_pos(job),
            format!("{callee_file} cannot be called: its 'on' has no 'workflow_call'"),
        )),
    }
}

fn uses_pos(job: &Job) -> Pos {
    job.uses.as_ref().map_or(job.span.start, |u| u.span.start)
}

/// The `inputs` context of the called workflow: each `with:` value evaluated in the caller's
/// `contexts` (`github`, `vars`, `inputs`, `needs`, `matrix`, `strategy`) and checked against
/// its declared type, then the defaults (evaluated with `github` and `vars`) of those not given,
/// and the empty value of the type (`''`, `false`, `0`) for those without a default.
///
/// A `string` input takes a number or a boolean as its text; `boolean` and `number` inputs take
/// only their type, as on GitHub (a job output, always a string, needs `fromJSON`).
///
/// # Errors
///
/// An input the called workflow does not declare, a value of the wrong type (at the value), a
/// required input not given (at `uses:`), a default of the wrong type (in the called file).
pub fn call_inputs(
    file: &str,
    job: &Job,
    call: &WorkflowCall,
    callee_file: &str,
    contexts: &Object,
) -> Result<Object, Diagnostic> {
    let mut inputs = Object::with_capacity(call.inputs.len());
    for (name, value) in &job.with {
        let Some(input) = call
            .inputs
            .iter()
            .find(|i| i.name.value.eq_ignore_ascii_case(&name.value))
        else {
            let declared: Vec<&str> = call.inputs.iter().map(|i| i.name.value.as_str()).collect();
            let takes = if declared.is_empty() {
                "it takes no input".to_owned()
            } else {
                format!("it takes {}", declared.join(", "))
            };
            return Err(Diagnostic::new(
                file,
                name.span.start,
                format!(
                    "input '{}' is not defined in {callee_file} ({takes})",
                    name.value
                ),
            ));
        };
        let evaluated = scalar(file, value, contexts)?;
        let typed = typed(input.kind, evaluated).map_err(|found| {
            Diagnostic::new(
                file,
                value.span.start,
                format!(
                    "input '{}' of {callee_file} is {}, but 'with' gives {found}",
                    input.name.value,
                    type_name(input.kind)
                ),
            )
        })?;
        inputs.insert(input.name.value.as_str(), typed);
    }
    let mut default_contexts = Object::with_capacity(2);
    for name in ["github", "vars"] {
        if let Some(value) = contexts.get(name) {
            default_contexts.insert(name, value.clone());
        }
    }
    for input in &call.inputs {
        if inputs.contains_key(&input.name.value) {
            continue;
        }
        let value = match &input.default {
            Some(default) => {
                let evaluated = scalar(callee_file, default, &default_contexts)?;
                typed(input.kind, evaluated).map_err(|found| {
                    Diagnostic::new(
                        callee_file,
                        default.span.start,
                        format!(
                            "the default of input '{}' is {found}, but the input is {}",
                            input.name.value,
                            type_name(input.kind)
                        ),
                    )
                })?
            }
            None if input.required => {
                return Err(Diagnostic::new(
                    file,
                    uses_pos(job),
                    format!(
                        "input '{}' is required by {callee_file}, but 'with' does not give it",
                        input.name.value
                    ),
                ))
            }
            None => match input.kind {
                InputType::Boolean => ExprValue::Bool(false),
                InputType::Number => ExprValue::Number(0.0),
                _ => ExprValue::string(""),
            },
        };
        inputs.insert(input.name.value.as_str(), value);
    }
    Ok(inputs)
}

/// A scalar of the file, its expressions evaluated; a string that is one `${{ }}` keeps the
/// expression's type.
fn scalar(file: &str, value: &Spanned<Scalar>, contexts: &Object) -> Result<ExprValue, Diagnostic> {
    Ok(match &value.value {
        Scalar::Null => ExprValue::Null,
        Scalar::Bool(b) => ExprValue::Bool(*b),
        Scalar::Number(n) => ExprValue::Number(*n),
        Scalar::String(s) if s.contains("${{") => {
            eval::template(file, s, value.span.start, contexts)?
        }
        Scalar::String(s) => ExprValue::string(s.as_str()),
    })
}

/// `value` as an input of type `kind`, or what was found instead, for the message.
fn typed(kind: InputType, value: ExprValue) -> Result<ExprValue, String> {
    match (kind, value) {
        (InputType::Boolean, value @ ExprValue::Bool(_))
        | (InputType::Number, value @ ExprValue::Number(_)) => Ok(value),
        (InputType::Boolean | InputType::Number, other) => Err(describe(&other)),
        (_, value @ ExprValue::String(_)) => Ok(value),
        (_, ExprValue::Null) => Ok(ExprValue::string("")),
        (_, value @ (ExprValue::Bool(_) | ExprValue::Number(_))) => {
            Ok(ExprValue::string(value.to_display_string()))
        }
        (_, other) => Err(describe(&other)),
    }
}

fn type_name(kind: InputType) -> &'static str {
    match kind {
        InputType::Boolean => "a boolean",
        InputType::Number => "a number",
        _ => "a string",
    }
}

fn describe(value: &ExprValue) -> String {
    match value {
        ExprValue::Null => "null".to_owned(),
        ExprValue::Bool(b) => format!("the boolean {b}"),
        ExprValue::Number(_) => format!("the number {}", value.to_display_string()),
        ExprValue::String(s) => format!("the string '{s}'"),
        ExprValue::Array(_) => "an array".to_owned(),
        ExprValue::Object(_) => "an object".to_owned(),
    }
}

/// The secrets the called workflow gets: all of the caller's with `secrets: inherit`, else those
/// `secrets:` names, evaluated in `contexts` (the caller's, `secrets` among them).
/// `GITHUB_TOKEN` always goes along, as on GitHub.
///
/// # Errors
///
/// A secret the called workflow does not declare (at its name; not with `inherit`), an
/// expression that fails, or a secret the called workflow requires that is not passed (at
/// `uses:`).
pub fn call_secrets(
    file: &str,
    job: &Job,
    call: &WorkflowCall,
    callee_file: &str,
    secrets: &[(String, String)],
    contexts: &Object,
) -> Result<Vec<(String, String)>, Diagnostic> {
    let mut passed: Vec<(String, String)> = Vec::new();
    match &job.secrets {
        Some(JobSecrets::Inherit(_)) => passed.extend(secrets.iter().cloned()),
        Some(JobSecrets::Map(entries)) => {
            for (name, value) in entries {
                let Some(declared) = call
                    .secrets
                    .iter()
                    .find(|s| s.name.value.eq_ignore_ascii_case(&name.value))
                else {
                    return Err(Diagnostic::new(
                        file,
                        name.span.start,
                        format!(
                            "secret '{}' is not defined in {callee_file}'s 'on.workflow_call.secrets'",
                            name.value
                        ),
                    ));
                };
                let value = scalar(file, value, contexts)?.to_display_string();
                passed.push((declared.name.value.clone(), value));
            }
        }
        None => {}
    }
    for secret in &call.secrets {
        let given = passed
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(&secret.name.value));
        if secret.required && !given {
            return Err(Diagnostic::new(
                file,
                uses_pos(job),
                format!(
                    "secret '{}' is required by {callee_file}, but 'secrets' does not pass it",
                    secret.name.value
                ),
            ));
        }
    }
    let token = secrets
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("GITHUB_TOKEN"));
    if let Some(token) = token {
        if !passed.iter().any(|(name, _)| name == &token.0) {
            passed.push(token.clone());
        }
    }
    Ok(passed)
}

/// The called workflow's outputs, `on.workflow_call.outputs.*.value` evaluated in `contexts`
/// (the called workflow's `github`, `vars` and `inputs`) with `jobs` (each called job's
/// `result` and `outputs`).
///
/// # Errors
///
/// An expression that fails, in the called file.
pub fn call_outputs(
    callee_file: &str,
    call: &WorkflowCall,
    contexts: &Object,
    jobs: ExprValue,
) -> Result<Vec<(String, String)>, Diagnostic> {
    let mut contexts = contexts.clone();
    contexts.insert("jobs", jobs);
    call.outputs
        .iter()
        .map(|output| {
            let value = eval::text(callee_file, &output.value, &contexts)?;
            Ok((output.name.value.clone(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_remote_references() {
        assert_eq!(
            WorkflowRef::parse("./.forgejo/workflows/build.yml"),
            Ok(WorkflowRef::Local {
                path: ".forgejo/workflows/build.yml"
            })
        );
        assert_eq!(
            WorkflowRef::parse("octo/shared/.github/workflows/deploy.yaml@v2"),
            Ok(WorkflowRef::Remote {
                repository: "octo/shared",
                path: ".github/workflows/deploy.yaml",
                reference: "v2"
            })
        );
    }

    const CALLEE: &str = "on:
  workflow_call:
    inputs:
      name: {type: string, required: true}
      count: {type: number, default: 2}
      flag: {type: boolean}
    secrets:
      token: {required: true}
    outputs:
      out: {value: 'got-${{ jobs.a.outputs.x }}-${{ inputs.name }}'}
jobs:
  a: {runs-on: linux, steps: [{run: 'true'}]}
";

    fn caller(job: &str) -> Workflow {
        let text = format!("on: push\njobs:\n  c:\n{job}");
        Workflow::parse(&text, "caller.yml").expect("a valid caller")
    }

    fn callee() -> Workflow {
        Workflow::parse(CALLEE, "callee.yml").expect("a valid callee")
    }

    fn contexts() -> Object {
        let mut github = Object::new();
        github.insert("event_name", "push");
        let mut contexts = Object::new();
        contexts.insert("github", ExprValue::object(github));
        contexts
    }

    fn inputs(job: &str) -> Result<Object, Diagnostic> {
        let caller = caller(job);
        let callee = callee();
        let call = workflow_call("caller.yml", &caller.jobs[0], &callee, "callee.yml")?;
        call_inputs(
            "caller.yml",
            &caller.jobs[0],
            &call,
            "callee.yml",
            &contexts(),
        )
    }

    #[test]
    fn inputs_keep_their_types_and_take_defaults() {
        let got = inputs(
            "    uses: ./.github/workflows/x.yml\n    with:\n      name: 5\n      flag: ${{ github.event_name == 'push' }}\n",
        )
        .expect("inputs");
        assert_eq!(got.get("name").and_then(ExprValue::as_str), Some("5"));
        assert!(matches!(got.get("count"), Some(ExprValue::Number(n)) if *n == 2.0));
        assert!(matches!(got.get("flag"), Some(ExprValue::Bool(true))));
    }

    #[test]
    fn wrong_types_and_missing_inputs_are_errors_with_positions() {
        let wrong = inputs(
            "    uses: ./.github/workflows/x.yml\n    with:\n      name: a\n      count: '3'\n",
        )
        .expect_err("a string for a number");
        assert_eq!(
            wrong.to_string(),
            "caller.yml:7:14: error: input 'count' of callee.yml is a number, but 'with' gives the string '3'"
        );
        let missing = inputs("    uses: ./.github/workflows/x.yml\n").expect_err("name missing");
        assert_eq!(
            missing.to_string(),
            "caller.yml:4:11: error: input 'name' is required by callee.yml, but 'with' does not give it"
        );
    }

    #[test]
    fn secrets_are_passed_by_name_or_inherited_and_required_ones_checked() {
        let secrets = vec![
            ("TOKEN".to_owned(), "t".to_owned()),
            ("GITHUB_TOKEN".to_owned(), "g".to_owned()),
            ("OTHER".to_owned(), "o".to_owned()),
        ];
        let mut contexts = contexts();
        let mut secrets_context = Object::new();
        for (name, value) in &secrets {
            secrets_context.insert(name.as_str(), value.as_str());
        }
        contexts.insert("secrets", ExprValue::object(secrets_context));
        let callee = callee();
        let pass = |job: &str| {
            let caller = caller(job);
            let call = workflow_call("caller.yml", &caller.jobs[0], &callee, "callee.yml")?;
            call_secrets(
                "caller.yml",
                &caller.jobs[0],
                &call,
                "callee.yml",
                &secrets,
                &contexts,
            )
        };
        let named = pass(
            "    uses: ./.github/workflows/x.yml\n    secrets:\n      token: ${{ secrets.TOKEN }}-x\n",
        )
        .expect("named");
        assert_eq!(
            named,
            [
                ("token".to_owned(), "t-x".to_owned()),
                ("GITHUB_TOKEN".to_owned(), "g".to_owned())
            ]
        );
        let inherited =
            pass("    uses: ./.github/workflows/x.yml\n    secrets: inherit\n").expect("inherit");
        assert_eq!(inherited, secrets);
        let missing = pass("    uses: ./.github/workflows/x.yml\n").expect_err("token missing");
        assert!(
            missing.message.contains("secret 'token' is required"),
            "{missing}"
        );
    }

    #[test]
    fn outputs_read_the_called_jobs() {
        let callee = callee();
        let Some(EventConfig::WorkflowCall(call)) =
            callee.on.event("workflow_call").map(|e| &e.config)
        else {
            panic!("workflow_call");
        };
        let mut outputs = Object::new();
        outputs.insert("x", "1");
        let mut a = Object::new();
        a.insert("outputs", ExprValue::object(outputs));
        let mut jobs = Object::new();
        jobs.insert("a", ExprValue::object(a));
        let mut inputs = Object::new();
        inputs.insert("name", "n");
        let mut contexts = Object::new();
        contexts.insert("inputs", ExprValue::object(inputs));
        let got =
            call_outputs("callee.yml", call, &contexts, ExprValue::object(jobs)).expect("outputs");
        assert_eq!(got, [("out".to_owned(), "got-1-n".to_owned())]);
    }

    #[test]
    fn references_that_could_leave_the_workflow_folders_are_refused() {
        for bad in [
            "./.github/workflows/../../secret.yml",
            "./.github/workflows/sub/x.yml",
            "./README.md",
            "./.github/workflows/x.txt",
            "octo/shared/.github/workflows/x.yml",
            "octo/../.github/workflows/x.yml@v1",
            "octo/shared/.github/workflows/x.yml@",
            "octo/shared/.github/workflows/x.yml@-x",
            "ftp://example.com/octo/shared/.github/workflows/x.yml@v1",
            "https://us@er/octo/shared/.github/workflows/x.yml@v1",
            "https://example.com/octo/shared/x.yml@v1",
        ] {
            assert!(WorkflowRef::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            WorkflowRef::parse(
                "https://git.example.com:3000/octo/shared/.gitea/workflows/x.yml@v1"
            ),
            Ok(WorkflowRef::Remote {
                repository: "https://git.example.com:3000/octo/shared",
                path: ".gitea/workflows/x.yml",
                reference: "v1",
            })
        );
    }
}
