//! Evaluating a job's and its steps' expressions, with errors that point into the workflow.
//!
//! Expressions were parsed and checked with the contexts each key allows when the workflow
//! was loaded; here they are parsed permissively and evaluated against the live contexts.

use hearth_expr::{
    Condition, EvalContext, Object, ParseOptions, Status, Template, Value, WorkspaceFiles,
};
use hearth_workflow::model::{is_insert_directive, Defaults, Env, OrExpr, Text};

/// An expression that failed while the job ran, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct EvalError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// What an expression is evaluated against.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The workflow (or action) file, for error positions.
    pub file: &'a str,
    pub contexts: &'a Object,
    /// What the status functions report.
    pub status: Status,
    /// The workspace, for `hashFiles`.
    pub files: Option<&'a dyn WorkspaceFiles>,
}

impl<'a> Scope<'a> {
    fn context(&self) -> EvalContext<'a> {
        let context = EvalContext::new(self.contexts).with_status(self.status);
        match self.files {
            Some(files) => context.with_files(files),
            None => context,
        }
    }

    /// An error at `text`'s place in the file.
    pub fn error_at(&self, text: &Text, message: impl ToString) -> EvalError {
        self.error(text, message)
    }

    fn error(&self, text: &Text, message: impl ToString) -> EvalError {
        EvalError {
            file: self.file.to_owned(),
            line: text.span.start.line,
            col: text.span.start.col,
            message: message.to_string(),
        }
    }

    /// The value of a template; a string that is one `${{ }}` keeps the expression's type.
    pub fn value(&self, text: &Text) -> Result<Value, EvalError> {
        if !text.has_expression() {
            return Ok(Value::string(text.value.as_str()));
        }
        let template = Template::parse(&text.value, &ParseOptions::permissive())
            .map_err(|e| self.error(text, e))?;
        template
            .evaluate(&self.context())
            .map_err(|e| self.error(text, e))
    }

    /// A template as a string, as GitHub converts results (`true`, `3`, `''` for null).
    pub fn string(&self, text: &Text) -> Result<String, EvalError> {
        if !text.has_expression() {
            return Ok(text.value.clone());
        }
        Ok(self.value(text)?.to_display_string())
    }

    /// An `if:`; none means `success()`.
    pub fn condition(&self, condition: Option<&Text>) -> Result<bool, EvalError> {
        let Some(text) = condition else {
            return Ok(self.status == Status::Success);
        };
        let parsed = Condition::parse(&text.value, &ParseOptions::permissive())
            .map_err(|e| self.error(text, e))?;
        parsed
            .evaluate(&self.context())
            .map_err(|e| self.error(text, e))
    }

    /// A boolean that may be written as an expression (`continue-on-error`).
    pub fn flag(&self, value: Option<&OrExpr<bool>>) -> Result<bool, EvalError> {
        match value {
            None => Ok(false),
            Some(OrExpr::Value(b)) => Ok(*b),
            Some(OrExpr::Expr(text)) => Ok(self.value(text)?.is_truthy()),
        }
    }

    /// A number of minutes that may be written as an expression (`timeout-minutes`).
    pub fn minutes(&self, value: Option<&OrExpr<f64>>) -> Result<Option<f64>, EvalError> {
        let minutes = match value {
            None => return Ok(None),
            Some(OrExpr::Value(n)) => *n,
            Some(OrExpr::Expr(text)) => {
                let value = self.value(text)?;
                let n = value.to_number();
                if n.is_nan() {
                    return Err(self.error(
                        text,
                        format!(
                            "timeout-minutes must be a number, not '{}'",
                            value.display_str()
                        ),
                    ));
                }
                n
            }
        };
        Ok(Some(minutes))
    }

    /// The entries a `${{ insert }}` key merges into its mapping: its value must produce a
    /// mapping (GitHub's "Expected a mapping" otherwise).
    fn inserted(&self, value: &Text) -> Result<Vec<(String, String)>, EvalError> {
        let evaluated = self.value(value)?;
        let Some(object) = evaluated.as_object() else {
            return Err(self.error(
                value,
                format!(
                    "Expected a mapping for `${{{{ insert }}}}`, got {}",
                    evaluated.kind().name()
                ),
            ));
        };
        Ok(object
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_display_string()))
            .collect())
    }

    /// `defaults.run`, its values evaluated; written as one expression it must produce a
    /// mapping, whose `shell` and `working-directory` are taken.
    pub fn run_defaults(
        &self,
        defaults: Option<&Defaults>,
    ) -> Result<super::RunDefaults, EvalError> {
        let text = |value: Option<&Text>| value.map(|t| self.string(t)).transpose();
        match defaults.and_then(|d| d.run.as_ref()) {
            None => Ok(super::RunDefaults::default()),
            Some(OrExpr::Value(run)) => Ok(super::RunDefaults {
                shell: text(run.shell.as_ref())?,
                working_directory: text(run.working_directory.as_ref())?,
            }),
            Some(OrExpr::Expr(expr)) => {
                let value = self.value(expr)?;
                let Some(object) = value.as_object() else {
                    return Err(self.error(
                        expr,
                        format!(
                            "defaults.run must be a mapping, got {}",
                            value.kind().name()
                        ),
                    ));
                };
                let key = |name: &str| {
                    object
                        .get(name)
                        .filter(|v| !matches!(v, Value::Null))
                        .map(|v| v.to_display_string())
                };
                Ok(super::RunDefaults {
                    shell: key("shell"),
                    working_directory: key("working-directory"),
                })
            }
        }
    }

    /// An `env:` (or `with:`) mapping, each value evaluated, in source order; an `env:` written
    /// as one expression must produce an object.
    pub fn env(&self, env: Option<&Env>) -> Result<Vec<(String, String)>, EvalError> {
        match env {
            None => Ok(Vec::new()),
            Some(OrExpr::Value(map)) => {
                let mut entries = Vec::with_capacity(map.entries.len());
                for (name, value) in &map.entries {
                    if is_insert_directive(&name.value) {
                        entries.extend(self.inserted(value)?);
                    } else {
                        entries.push((self.string(name)?, self.string(value)?));
                    }
                }
                Ok(entries)
            }
            Some(OrExpr::Expr(text)) => {
                let value = self.value(text)?;
                let Some(object) = value.as_object() else {
                    return Err(self.error(
                        text,
                        format!("expected a mapping, got {}", value.kind().name()),
                    ));
                };
                Ok(object
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_display_string()))
                    .collect())
            }
        }
    }
}
