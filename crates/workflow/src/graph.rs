//! The job graph: `needs`, the errors GitHub reports for it, the order in which jobs can run,
//! and the status a job's own `if:` sees given what its needs did.
//!
//! A job whose needs failed is skipped unless its `if:` calls a status function. That rule is
//! not special-cased here: an `if:` without a status function means `success() && (...)`
//! ([`hearth_expr::Condition`]), and [`needs_status`] makes `success()` false when a need failed
//! or was skipped.

use std::collections::VecDeque;
use std::fmt;

use hearth_expr::Status;

use crate::yaml::Span;

/// A job as the graph sees it: its id, where it is declared, and what it needs.
#[derive(Clone, Debug)]
pub struct GraphJob {
    pub id: String,
    pub span: Span,
    pub needs: Vec<Need>,
}

/// One entry of a job's `needs`, with its position for error messages.
#[derive(Clone, Debug)]
pub struct Need {
    pub id: String,
    pub span: Span,
}

/// An error in the `needs` of a workflow, at the offending entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct GraphError {
    pub file: String,
    pub span: Span,
    pub message: String,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.span.start.line, self.span.start.col, self.message
        )
    }
}

/// What GitHub says when every job has `needs`, so that none can start.
pub const NO_JOB_WITHOUT_NEEDS: &str =
    "The workflow must contain at least one job with no dependencies.";

/// The jobs of one workflow with their dependencies checked.
#[derive(Clone, Debug)]
pub struct JobGraph {
    jobs: Vec<GraphJob>,
    /// For each job, the indices of the jobs it needs.
    needs: Vec<Vec<usize>>,
    /// Jobs in an order that respects `needs`; among jobs that are ready together, the order
    /// of declaration.
    order: Vec<usize>,
}

impl JobGraph {
    /// Checks the `needs` of `jobs` as GitHub does, and reports problems where it does.
    ///
    /// At least one job must need nothing. Starting from those, a job becomes ready once
    /// every job it needs is ready (ids compared ignoring case); every need of a job that
    /// never becomes ready is an error at that need: a job that does not exist, a job on a
    /// cycle with this one, or a job that itself never starts. All errors are returned, in
    /// source order.
    pub fn build(file: &str, jobs: Vec<GraphJob>) -> Result<JobGraph, Vec<GraphError>> {
        let index_of =
            |id: &str| -> Option<usize> { jobs.iter().position(|j| j.id.eq_ignore_ascii_case(id)) };
        let error = |span: Span, message: String| GraphError {
            file: file.to_string(),
            span,
            message,
        };
        if let Some(first) = jobs.first() {
            if jobs.iter().all(|j| !j.needs.is_empty()) {
                return Err(vec![error(first.span, NO_JOB_WITHOUT_NEEDS.to_owned())]);
            }
        }
        let mut needs = Vec::with_capacity(jobs.len());
        // A job with an unknown need never becomes ready, nor does anything after it.
        let mut complete = vec![true; jobs.len()];
        for (j, job) in jobs.iter().enumerate() {
            let mut resolved = Vec::new();
            for need in &job.needs {
                match index_of(&need.id) {
                    Some(i) if !resolved.contains(&i) => resolved.push(i),
                    Some(_) => {}
                    None => complete[j] = false,
                }
            }
            needs.push(resolved);
        }
        let order: Vec<usize> = topological_order(&needs)
            .into_iter()
            .scan(vec![false; jobs.len()], |ready, i| {
                ready[i] = complete[i] && needs[i].iter().all(|&n| ready[n]);
                Some((i, ready[i]))
            })
            .filter_map(|(i, ready)| ready.then_some(i))
            .collect();
        if order.len() == jobs.len() {
            return Ok(JobGraph { jobs, needs, order });
        }
        let mut ready = vec![false; jobs.len()];
        for &i in &order {
            ready[i] = true;
        }
        let mut errors = Vec::new();
        for (i, job) in jobs.iter().enumerate().filter(|&(i, _)| !ready[i]) {
            for need in &job.needs {
                let message = match index_of(&need.id) {
                    None => format!("Job '{}' depends on unknown job '{}'.", job.id, need.id),
                    Some(n) if ready[n] => continue,
                    Some(n) if reaches(&needs, n, i) => format!(
                        "Job '{}' depends on job '{}' which creates a cycle in the dependency graph.",
                        job.id, jobs[n].id
                    ),
                    Some(n) => format!(
                        "Job '{}' depends on job '{}', which can never start (see its 'needs').",
                        job.id, jobs[n].id
                    ),
                };
                errors.push(error(need.span, message));
            }
        }
        Err(errors)
    }

    pub fn jobs(&self) -> &[GraphJob] {
        &self.jobs
    }

    /// Job indices in an order where each job comes after everything it needs.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The indices of the jobs that job `i` needs.
    pub fn needs_of(&self, i: usize) -> &[usize] {
        self.needs.get(i).map_or(&[], Vec::as_slice)
    }

    /// Jobs grouped in stages: each stage needs only jobs of earlier stages.
    pub fn stages(&self) -> Vec<Vec<usize>> {
        let mut stage_of = vec![0usize; self.jobs.len()];
        for &i in &self.order {
            stage_of[i] = self.needs[i]
                .iter()
                .map(|&n| stage_of[n] + 1)
                .max()
                .unwrap_or(0);
        }
        let count = stage_of.iter().max().map_or(0, |m| m + 1);
        let mut stages = vec![Vec::new(); count];
        for &i in &self.order {
            stages[stage_of[i]].push(i);
        }
        stages
    }
}

/// Kahn's algorithm, always taking the earliest-declared ready job.
fn topological_order(needs: &[Vec<usize>]) -> Vec<usize> {
    let mut waiting: Vec<usize> = needs.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); needs.len()];
    for (i, job_needs) in needs.iter().enumerate() {
        for &n in job_needs {
            dependents[n].push(i);
        }
    }
    let mut ready: VecDeque<usize> = (0..needs.len()).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(needs.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                // Keep the ready queue in declaration order.
                let at = ready.iter().position(|&r| r > d).unwrap_or(ready.len());
                ready.insert(at, d);
            }
        }
    }
    order
}

/// Whether `from` reaches `to` by following needs.
fn reaches(needs: &[Vec<usize>], from: usize, to: usize) -> bool {
    let mut seen = vec![false; needs.len()];
    let mut stack = vec![from];
    while let Some(i) = stack.pop() {
        if i == to {
            return true;
        }
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        stack.extend(needs[i].iter().copied());
    }
    false
}

/// How a job ended, as `needs.<id>.result` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobResult {
    Success,
    Failure,
    Cancelled,
    Skipped,
}

impl JobResult {
    /// The word GitHub uses in `needs.<id>.result`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobResult::Success => "success",
            JobResult::Failure => "failure",
            JobResult::Cancelled => "cancelled",
            JobResult::Skipped => "skipped",
        }
    }
}

/// The status a job's `if:` sees: cancelled when the run is cancelled, failure when a need
/// failed (or was cancelled), skipped when a need was skipped, success otherwise.
pub fn needs_status(results: impl IntoIterator<Item = JobResult>, run_cancelled: bool) -> Status {
    if run_cancelled {
        return Status::Cancelled;
    }
    let mut status = Status::Success;
    for result in results {
        match result {
            JobResult::Failure | JobResult::Cancelled => return Status::Failure,
            JobResult::Skipped => status = Status::Skipped,
            JobResult::Success => {}
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::Pos;
    use hearth_expr::{Condition, EvalContext, Object, ParseOptions};

    fn span(line: usize) -> Span {
        Span {
            start: Pos { line, col: 3 },
            end: Pos { line, col: 9 },
        }
    }

    fn job(id: &str, line: usize, needs: &[&str]) -> GraphJob {
        GraphJob {
            id: id.to_string(),
            span: span(line),
            needs: needs
                .iter()
                .map(|n| Need {
                    id: n.to_string(),
                    span: span(line + 1),
                })
                .collect(),
        }
    }

    fn ids(graph: &JobGraph, indices: &[usize]) -> Vec<String> {
        indices
            .iter()
            .map(|&i| graph.jobs()[i].id.clone())
            .collect()
    }

    #[test]
    fn orders_by_needs_then_declaration() {
        let graph = JobGraph::build(
            "ci.yml",
            vec![
                job("deploy", 1, &["test", "build"]),
                job("test", 4, &["build"]),
                job("lint", 7, &[]),
                job("build", 9, &[]),
                job("notify", 11, &["DEPLOY"]),
            ],
        )
        .unwrap();
        assert_eq!(
            ids(&graph, graph.order()),
            ["lint", "build", "test", "deploy", "notify"]
        );
        let stages: Vec<Vec<String>> = graph.stages().iter().map(|s| ids(&graph, s)).collect();
        assert_eq!(
            stages,
            [
                vec!["lint", "build"],
                vec!["test"],
                vec!["deploy"],
                vec!["notify"]
            ]
        );
    }

    #[test]
    fn unknown_needs_are_errors_at_the_need() {
        let errors = JobGraph::build(
            "ci.yml",
            vec![job("build", 1, &[]), job("test", 3, &["tset"])],
        )
        .unwrap_err();
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["ci.yml:4:3: error: Job 'test' depends on unknown job 'tset'."]
        );
    }

    #[test]
    fn every_need_of_a_job_that_never_starts_is_an_error() {
        let errors = JobGraph::build(
            "ci.yml",
            vec![
                job("start", 1, &[]),
                job("a", 3, &["start", "c"]),
                job("b", 5, &["a"]),
                job("c", 7, &["b"]),
                job("d", 9, &["a", "start"]),
                job("e", 11, &["e"]),
                job("f", 13, &["nope", "start"]),
                job("g", 15, &["F"]),
            ],
        )
        .unwrap_err();
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "ci.yml:4:3: error: Job 'a' depends on job 'c' which creates a cycle in the dependency graph.",
                "ci.yml:6:3: error: Job 'b' depends on job 'a' which creates a cycle in the dependency graph.",
                "ci.yml:8:3: error: Job 'c' depends on job 'b' which creates a cycle in the dependency graph.",
                "ci.yml:10:3: error: Job 'd' depends on job 'a', which can never start (see its 'needs').",
                "ci.yml:12:3: error: Job 'e' depends on job 'e' which creates a cycle in the dependency graph.",
                "ci.yml:14:3: error: Job 'f' depends on unknown job 'nope'.",
                "ci.yml:16:3: error: Job 'g' depends on job 'f', which can never start (see its 'needs').",
            ]
        );
    }

    #[test]
    fn a_workflow_where_every_job_has_needs_is_an_error() {
        let errors =
            JobGraph::build("ci.yml", vec![job("a", 1, &["b"]), job("b", 3, &["a"])]).unwrap_err();
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            ["ci.yml:1:3: error: The workflow must contain at least one job with no dependencies."]
        );
    }

    /// Whether a job with this `if:` runs after needs that ended so.
    fn runs(condition: &str, needs: &[JobResult], cancelled: bool) -> bool {
        let names = ["needs", "github"];
        let condition = Condition::parse(condition, &ParseOptions::with_named_values(&names))
            .expect("condition parses");
        let contexts = Object::new();
        let status = needs_status(needs.iter().copied(), cancelled);
        condition
            .evaluate(&EvalContext::new(&contexts).with_status(status))
            .expect("condition evaluates")
    }

    #[test]
    fn failed_needs_skip_a_job_unless_its_if_uses_a_status_function() {
        use JobResult::*;
        assert!(runs("", &[Success, Success], false));
        assert!(!runs("", &[Success, Failure], false));
        assert!(!runs("true", &[Failure], false));
        assert!(runs("always()", &[Failure], false));
        assert!(runs("failure()", &[Success, Failure], false));
        assert!(!runs("failure()", &[Success], false));
        assert!(!runs("", &[Skipped], false));
        assert!(!runs("success()", &[Skipped], false));
        assert!(!runs("failure()", &[Skipped], false));
        assert!(runs("!cancelled()", &[Skipped], false));
        assert!(!runs("!cancelled()", &[Success], true));
        assert!(runs("cancelled()", &[Success], true));
        assert!(runs("always()", &[Success], true));
    }
}
