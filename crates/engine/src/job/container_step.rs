//! Steps that run in a container of their own, beside the job: Docker actions (`runs.using:
//! docker`, an image from `docker://` or built from a Dockerfile in the action's folder) and
//! `uses: docker://IMAGE` steps.
//!
//! The engine says what to run (image, entrypoint, arguments, environment, the job's folders
//! to mount) and the runtime runs it ([`hearth_backend::JobRuntime::run_container`]); a
//! backend that cannot fails the step with what to change. As GitHub's runner does, the
//! container sees the workspace at `/github/workspace` (its working directory), the
//! file-command files under `/github/file_commands`, the event payload under
//! `/github/workflow` and a home of the job's at `/github/home`, and the `GITHUB_*` variables
//! that name those files say so. It starts from its image's environment, not the job's.

use std::collections::BTreeMap;

use hearth_backend::{ContainerRun, ImageSource, JobPaths, Mount};
use hearth_expr::{Object, Value};
use hearth_workflow::model::{Env, Runs, Step, Text};

use super::eval::{EvalError, Scope};
use super::files;
use super::load::Loaded;
use super::step::{Launch, Prepared, StepEnd};
use super::{JobControl, JobRun};
use hearth_events::{LogLine, StepLabel};

/// The workspace, as a step's container sees it (and its working directory).
const WORKSPACE: &str = "/github/workspace";
/// The file-command files' folder, as a step's container sees it.
const FILE_COMMANDS: &str = "/github/file_commands";
/// The event payload's folder, as a step's container sees it.
const WORKFLOW: &str = "/github/workflow";
/// `HOME` in a step's container.
const HOME: &str = "/github/home";

/// What one stage (pre, main or post) of a container step runs, before the step's
/// environment is added.
#[derive(Clone, Debug)]
pub(super) struct ContainerStep {
    pub image: ImageSource,
    pub entrypoint: Option<String>,
    pub args: Vec<String>,
}

/// A Docker action's stage and the variables it adds (`INPUT_*`, then the action's env).
pub(super) struct DockerStage {
    pub container: ContainerStep,
    pub extra: Vec<(String, String)>,
}

/// Which entrypoint of a Docker action a stage runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    Pre,
    Main,
    Post,
}

impl JobRun<'_> {
    /// Runs a stage of a container step: its environment is the job's variables, the step's
    /// env and `extra` (inputs, the action's env, state), with the paths rewritten to the
    /// container's. Returns the step's end and the state it saved.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_container_step(
        &mut self,
        label: &StepLabel,
        step: &Step,
        container: &ContainerStep,
        env: &BTreeMap<String, String>,
        extra: &[(String, String)],
        scope: &Scope<'_>,
        control: &JobControl,
    ) -> (StepEnd, Vec<(String, String)>) {
        let prepared = self.step_environment(step, env, extra, None, false).await;
        let (files, mut process_env, _) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                return (StepEnd::failure(), Vec::new());
            }
        };
        let paths = self.runtime.paths().clone();
        relocate(&mut process_env, &paths);
        let run = ContainerRun {
            image: container.image.clone(),
            entrypoint: container.entrypoint.clone(),
            args: container.args.clone(),
            env: process_env.into_iter().collect(),
            mounts: mounts(&paths),
            working_dir: WORKSPACE.to_owned(),
            timeout: None,
        };
        let prepared = Prepared {
            files,
            launch: Launch::Container(run),
            script_path: None,
        };
        self.exec_prepared(label, step, prepared, env, scope, control)
            .await
    }

    /// Runs a `uses: docker://IMAGE` step: `with: entrypoint` and `with: args` (split as a
    /// command line) replace the image's, and every `with:` value is an `INPUT_*` variable.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_image_step(
        &mut self,
        label: &StepLabel,
        step: &Step,
        image: &str,
        with: Option<&Env>,
        env: &BTreeMap<String, String>,
        scope: &Scope<'_>,
        control: &JobControl,
    ) -> StepEnd {
        let given = match scope.env(with) {
            Ok(given) => given,
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                return StepEnd::failure();
            }
        };
        let find = |name: &str| {
            given
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let container = ContainerStep {
            image: ImageSource::Pull(image.to_owned()),
            entrypoint: find("entrypoint").filter(|e| !e.is_empty()),
            args: find("args").map(|a| split_args(&a)).unwrap_or_default(),
        };
        let extra: Vec<(String, String)> = given
            .iter()
            .map(|(name, value)| (super::action::input_variable(name), value.clone()))
            .collect();
        let (end, _) = self
            .run_container_step(label, step, &container, env, &extra, scope, control)
            .await;
        end
    }
}

/// A Docker action's stage, its arguments and its env evaluated with `inputs` as the action's
/// inputs (the other contexts the step's); `with: entrypoint` and `with: args` replace the
/// action's in the main stage, as GitHub's runner does. `None` for a stage the action does not
/// have.
pub(super) fn docker_stage(
    loaded: &Loaded,
    inputs: &Object,
    scope: &Scope<'_>,
    stage: Stage,
) -> Result<Option<DockerStage>, EvalError> {
    let Runs::Docker {
        image,
        entrypoint,
        args,
        env,
        pre_entrypoint,
        post_entrypoint,
        ..
    } = &loaded.action.runs
    else {
        return Ok(None);
    };
    let mut contexts = scope.contexts.clone();
    contexts.insert("inputs", Value::object(inputs.clone()));
    let action_scope = Scope {
        file: &loaded.file,
        contexts: &contexts,
        ..*scope
    };
    let given = |name: &str| {
        inputs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_display_string())
            .filter(|v| !v.is_empty())
    };
    let raw = |text: &Option<Text>| text.as_ref().map(|t| t.value.clone());
    let entrypoint = match stage {
        Stage::Pre => raw(pre_entrypoint),
        Stage::Post => raw(post_entrypoint),
        Stage::Main => given("entrypoint").or_else(|| raw(entrypoint)),
    };
    if stage != Stage::Main && entrypoint.is_none() {
        return Ok(None);
    }
    let args = match (stage, given("args")) {
        (Stage::Main, Some(args)) => split_args(&args),
        _ => args
            .iter()
            .map(|arg| action_scope.string(arg))
            .collect::<Result<_, _>>()?,
    };
    let mut extra: Vec<(String, String)> = inputs
        .iter()
        .map(|(name, value)| {
            (
                super::action::input_variable(name),
                value.to_display_string(),
            )
        })
        .collect();
    extra.extend(action_scope.env(env.as_ref())?);
    let container = ContainerStep {
        image: image_source(&loaded.dir, &image.value),
        entrypoint,
        args,
    };
    Ok(Some(DockerStage { container, extra }))
}

/// `runs.image`: `docker://IMAGE`, else a Dockerfile's path in the action's folder, built
/// with the Dockerfile's folder as its context (as GitHub's runner builds it).
fn image_source(action_dir: &hearth_backend::JobPath, image: &str) -> ImageSource {
    if let Some(reference) = image.strip_prefix("docker://") {
        return ImageSource::Pull(reference.to_owned());
    }
    let relative = image.trim_start_matches("./");
    match relative.rsplit_once('/') {
        Some((folder, file)) => ImageSource::Build {
            context: action_dir.join(folder),
            dockerfile: file.to_owned(),
        },
        None => ImageSource::Build {
            context: action_dir.clone(),
            dockerfile: relative.to_owned(),
        },
    }
}

/// The job's folders a step's container sees, at GitHub's paths.
fn mounts(paths: &JobPaths) -> Vec<Mount> {
    let temp = |name: &str| paths.temp.join(name);
    vec![
        Mount {
            source: paths.workspace.clone(),
            target: WORKSPACE.to_owned(),
        },
        Mount {
            source: temp(files::FOLDER),
            target: FILE_COMMANDS.to_owned(),
        },
        Mount {
            source: temp(files::WORKFLOW_FOLDER),
            target: WORKFLOW.to_owned(),
        },
        Mount {
            source: temp(files::HOME_FOLDER),
            target: HOME.to_owned(),
        },
    ]
}

/// The variables that name the job's folders and files, rewritten to the container's paths
/// (`GITHUB_WORKSPACE`, `GITHUB_EVENT_PATH`, the file-command files, `HOME`).
fn relocate(env: &mut BTreeMap<String, String>, paths: &JobPaths) {
    let folders = [
        (paths.temp.join(files::FOLDER), FILE_COMMANDS),
        (paths.temp.join(files::WORKFLOW_FOLDER), WORKFLOW),
        (paths.workspace.clone(), WORKSPACE),
    ];
    let names = [
        "GITHUB_WORKSPACE",
        "GITHUB_EVENT_PATH",
        "GITHUB_ENV",
        "GITHUB_PATH",
        "GITHUB_OUTPUT",
        "GITHUB_STATE",
        "GITHUB_STEP_SUMMARY",
    ];
    for name in names {
        let Some(value) = env.get_mut(name) else {
            continue;
        };
        let path = hearth_backend::JobPath::new(value.as_str());
        for (folder, seen) in &folders {
            if let Some(rest) = path.strip_prefix(folder) {
                *value = hearth_backend::JobPath::new(*seen)
                    .join(rest)
                    .as_str()
                    .to_owned();
                break;
            }
        }
    }
    env.insert("HOME".to_owned(), HOME.to_owned());
}

/// `with: args` as a command line: split at white space, except inside double quotes (a `\"`
/// inside them is a quote), as GitHub's runner splits it.
pub(super) fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_arg = false;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => {
                quoted = !quoted;
                in_arg = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_arg {
                    args.push(std::mem::take(&mut current));
                    in_arg = false;
                }
            }
            c => {
                current.push(c);
                in_arg = true;
            }
        }
    }
    if in_arg {
        args.push(current);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_backend::JobPath;

    #[test]
    fn args_split_at_white_space_outside_quotes() {
        assert_eq!(
            split_args(r#" one  "two three" fo"u"r "say \"hi\"" "" "#),
            ["one", "two three", "four", r#"say "hi""#, ""]
        );
        assert!(split_args("  ").is_empty());
    }

    #[test]
    fn a_dockerfiles_folder_is_its_build_context() {
        let dir = JobPath::new("/w/action");
        assert_eq!(
            image_source(&dir, "Dockerfile"),
            ImageSource::Build {
                context: dir.clone(),
                dockerfile: "Dockerfile".into()
            }
        );
        assert_eq!(
            image_source(&dir, "./build/Dockerfile.action"),
            ImageSource::Build {
                context: JobPath::new("/w/action/build"),
                dockerfile: "Dockerfile.action".into()
            }
        );
        assert_eq!(
            image_source(&dir, "docker://alpine:3"),
            ImageSource::Pull("alpine:3".into())
        );
    }

    #[test]
    fn paths_are_rewritten_to_the_containers() {
        let paths = JobPaths {
            workspace: JobPath::new("/j/workspace"),
            temp: JobPath::new("/j/temp"),
            tool_cache: JobPath::new("/t"),
        };
        let mut env: BTreeMap<String, String> = [
            ("GITHUB_WORKSPACE", "/j/workspace"),
            ("GITHUB_OUTPUT", "/j/temp/_runner_file_commands/set_output"),
            ("GITHUB_EVENT_PATH", "/j/temp/_github_workflow/event.json"),
            ("OTHER", "/j/workspace"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        relocate(&mut env, &paths);
        assert_eq!(env["GITHUB_WORKSPACE"], "/github/workspace");
        assert_eq!(env["GITHUB_OUTPUT"], "/github/file_commands/set_output");
        assert_eq!(env["GITHUB_EVENT_PATH"], "/github/workflow/event.json");
        assert_eq!(env["OTHER"], "/j/workspace");
        assert_eq!(env["HOME"], "/github/home");
    }
}
