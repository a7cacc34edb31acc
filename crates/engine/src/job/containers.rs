//! `jobs.<id>.container` and `jobs.<id>.services`, evaluated into what a backend starts.
//!
//! The engine only evaluates them; whether and how they run is the backend's business (the
//! host backend refuses them with a message naming the fix, a container backend starts them).
//! A label that names an image (`ubuntu-latest:docker://node:20`) gives the job container's
//! image when the job has no `container:` of its own, as act_runner does.

use hearth_backend::{ContainerSpec, Credentials, SecretString};
use hearth_workflow::model::{Container, Job, OrExpr};

use super::eval::{EvalError, Scope};

/// The job container: the job's `container:` (expressions evaluated), else the label's image.
pub(crate) fn job_container(
    scope: &Scope<'_>,
    job: &Job,
    label_image: Option<&str>,
) -> Result<Option<ContainerSpec>, EvalError> {
    if let Some(container) = &job.container {
        let spec = container_spec(scope, container)?;
        // `container: ${{ matrix.image }}` that comes out empty means "no container", as on
        // GitHub; then the label decides.
        if !spec.image.is_empty() {
            return Ok(Some(spec));
        }
    }
    Ok(label_image.map(|image| ContainerSpec {
        image: image.to_owned(),
        ..ContainerSpec::default()
    }))
}

/// The job's services, by id, in the order written; those whose image is empty are left out.
pub(crate) fn services(
    scope: &Scope<'_>,
    job: &Job,
) -> Result<Vec<(String, ContainerSpec)>, EvalError> {
    let Some(services) = &job.services else {
        return Ok(Vec::new());
    };
    match services {
        OrExpr::Value(services) => {
            let mut started = Vec::new();
            for (id, container) in services {
                let spec = container_spec(scope, container)?;
                // An image that comes out empty leaves the service out: GitHub's documented way
                // to make a service conditional (`image: ${{ cond && 'postgres' || '' }}`),
                // which act_runner follows too.
                if !spec.image.is_empty() {
                    started.push((id.value.clone(), spec));
                }
            }
            Ok(started)
        }
        OrExpr::Expr(text) => Err(scope.error_at(
            text,
            "`services:` must be a mapping of service ids to containers, not one expression",
        )),
    }
}

fn container_spec(scope: &Scope<'_>, container: &Container) -> Result<ContainerSpec, EvalError> {
    let text = |value: &Option<hearth_workflow::model::Text>| -> Result<Option<String>, EvalError> {
        value.as_ref().map(|t| scope.string(t)).transpose()
    };
    let credentials = match &container.credentials {
        None => None,
        Some(OrExpr::Value(credentials)) => {
            let username = text(&credentials.username)?.unwrap_or_default();
            let password = text(&credentials.password)?.unwrap_or_default();
            (!username.is_empty() || !password.is_empty()).then(|| Credentials {
                username,
                password: SecretString::from(password),
            })
        }
        Some(OrExpr::Expr(expression)) => {
            let value = scope.value(expression)?;
            let field = |name: &str| {
                value
                    .as_object()
                    .and_then(|o| o.get(name))
                    .map(|v| v.to_display_string())
                    .unwrap_or_default()
            };
            let (username, password) = (field("username"), field("password"));
            (!username.is_empty() || !password.is_empty()).then(|| Credentials {
                username,
                password: SecretString::from(password),
            })
        }
    };
    Ok(ContainerSpec {
        image: text(&container.image)?.unwrap_or_default(),
        credentials,
        env: scope.env(container.env.as_ref())?,
        ports: container
            .ports
            .iter()
            .map(|p| scope.string(p))
            .collect::<Result<_, _>>()?,
        volumes: container
            .volumes
            .iter()
            .map(|v| scope.string(v))
            .collect::<Result<_, _>>()?,
        options: text(&container.options)?.unwrap_or_default(),
        entrypoint: text(&container.entrypoint)?,
        command: text(&container.command)?,
    })
}
