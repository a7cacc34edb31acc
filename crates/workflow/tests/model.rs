//! The workflow and action models: what loading produces, beyond the
//! pass/fail corpus in `model_corpus.rs`.

use hearth_workflow::model::{
    Action, EventConfig, InputType, JobSecrets, OrExpr, Permissions, Runs, Scalar, StepKind,
    Workflow,
};
use hearth_workflow::Pos;

fn workflow(source: &str) -> Workflow {
    match Workflow::parse(source, "test.yml") {
        Ok(w) => w,
        Err(e) => panic!("unexpected diagnostics:\n{e}"),
    }
}

fn errors(source: &str) -> Vec<String> {
    match Workflow::parse(source, "test.yml") {
        Ok(_) => panic!("accepted:\n{source}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn runs_on_in_all_its_forms() {
    let w = workflow(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n  b:\n    runs-on: [self-hosted, linux]\n  c:\n    runs-on:\n      group: big\n      labels: gpu\n  d:\n    runs-on: ${{ matrix.os }}\n    strategy:\n      matrix:\n        os: [x]\n",
    );
    let labels = |id: &str| -> Vec<String> {
        let job = w.job(id).expect("job");
        let runs_on = job.runs_on.as_ref().expect("runs-on");
        runs_on.labels.iter().map(|l| l.value.clone()).collect()
    };
    assert_eq!(labels("a"), ["ubuntu-latest"]);
    assert_eq!(labels("b"), ["self-hosted", "linux"]);
    assert_eq!(labels("c"), ["gpu"]);
    assert_eq!(
        w.job("c")
            .unwrap()
            .runs_on
            .as_ref()
            .unwrap()
            .group
            .as_ref()
            .unwrap()
            .value,
        "big"
    );
    assert_eq!(labels("d"), ["${{ matrix.os }}"]);
    // Positions are kept for later errors.
    assert_eq!(w.job("b").unwrap().id.span.start, Pos::new(5, 3));
    assert_eq!(
        w.job("a").unwrap().runs_on.as_ref().unwrap().span.start,
        Pos::new(4, 14)
    );
}

#[test]
fn triggers_keep_their_settings() {
    let w = workflow(
        "on:\n  push:\n    branches: main\n    tags: ['v*']\n  workflow_dispatch:\n    inputs:\n      level:\n        type: choice\n        options: [a, b]\n        default: a\n  schedule:\n    - cron: '0 0 * * *'\njobs:\n  j:\n    runs-on: x\n    steps: [{run: x}]\n",
    );
    let EventConfig::Filters(push) = &w.on.event("push").unwrap().config else {
        panic!("push has filters");
    };
    assert_eq!(push.branches.as_ref().unwrap()[0].value, "main");
    assert_eq!(push.tags.as_ref().unwrap()[0].value, "v*");
    assert!(push.paths.is_none());
    let EventConfig::WorkflowDispatch(dispatch) = &w.on.event("workflow_dispatch").unwrap().config
    else {
        panic!("dispatch");
    };
    assert_eq!(dispatch.inputs[0].kind, InputType::Choice);
    assert_eq!(dispatch.inputs[0].options.len(), 2);
    assert_eq!(
        dispatch.inputs[0].default.as_ref().unwrap().value,
        Scalar::String("a".into())
    );
    let EventConfig::Schedule(schedule) = &w.on.event("schedule").unwrap().config else {
        panic!("schedule");
    };
    assert_eq!(schedule[0].cron.value, "0 0 * * *");
}

#[test]
fn steps_and_typed_values() {
    let w = workflow(
        "on: push\npermissions: read-all\njobs:\n  j:\n    runs-on: x\n    timeout-minutes: 30\n    continue-on-error: ${{ matrix.x }}\n    strategy:\n      matrix:\n        x: [true]\n    steps:\n      - uses: actions/checkout@v4\n        with:\n          depth: 1\n      - run: make\n        shell: bash\n  call:\n    uses: ./.github/workflows/x.yml\n    with:\n      n: 3\n    secrets: inherit\n",
    );
    assert_eq!(w.permissions, Some(Permissions::ReadAll));
    let job = w.job("j").unwrap();
    assert_eq!(job.timeout_minutes, Some(OrExpr::Value(30.0)));
    assert!(matches!(job.continue_on_error, Some(OrExpr::Expr(_))));
    let StepKind::Uses { uses, with } = &job.steps[0].kind else {
        panic!("uses step");
    };
    assert_eq!(uses.value, "actions/checkout@v4");
    let Some(OrExpr::Value(with)) = with else {
        panic!("with map");
    };
    assert_eq!(with.get("depth").unwrap().value, "1");
    let StepKind::Run { run, shell, .. } = &job.steps[1].kind else {
        panic!("run step");
    };
    assert_eq!(run.value, "make");
    assert_eq!(shell.as_ref().unwrap().value, "bash");
    let call = w.job("call").unwrap();
    assert!(call.is_call());
    assert_eq!(call.with[0].1.value, Scalar::Number(3.0));
    assert!(matches!(call.secrets, Some(JobSecrets::Inherit(_))));
}

#[test]
fn every_problem_is_reported_in_source_order() {
    let found = errors(
        "on: pushh\njobs:\n  build:\n    runs-on: ${{ steps.x }}\n    steps:\n      - run: echo ${{ secrets.A }}\n        if: ${{ secrets.B }}\n      - uses: x\n",
    );
    assert_eq!(
        found,
        [
            "test.yml:1:5: error: unknown event 'pushh'; did you mean 'push'?",
            "test.yml:4:18: error: Unrecognized named-value: 'steps'. Located at position 1 within expression: steps.x",
            "test.yml:7:17: error: Unrecognized named-value: 'secrets'. Located at position 1 within expression: secrets.B",
            "test.yml:8:15: error: invalid action reference 'x': expected 'owner/repo[/path]@ref', './path' or 'docker://image'",
        ]
    );
}

#[test]
fn expression_columns_account_for_quotes() {
    let found = errors("on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: 'a ${{ runner.os }} ${{ nope }}'\n");
    assert_eq!(
        found,
        ["test.yml:6:38: error: Unrecognized named-value: 'nope'. Located at position 1 within expression: nope"]
    );
}

#[test]
fn gitea_and_forgejo_aliases_of_github_are_accepted() {
    workflow("on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: echo ${{ gitea.sha }} ${{ forge.ref }}\n");
}

#[test]
fn yaml_errors_become_diagnostics() {
    let found = errors("on: push\njobs: [\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("test.yml:"), "{}", found[0]);
}

#[test]
fn actions_of_every_kind() {
    let node = Action::parse(
        "name: n\nruns:\n  using: node16\n  main: a.js\n  post: b.js\n  post-if: always()\n",
        "action.yml",
    )
    .unwrap();
    let Runs::Node {
        version, post_if, ..
    } = &node.runs
    else {
        panic!("node");
    };
    assert_eq!(*version, 16);
    assert_eq!(post_if.as_ref().unwrap().value, "always()");

    let docker = Action::parse(
        "name: d\nruns:\n  using: docker\n  image: Dockerfile\n  args: ['${{ inputs.a }}']\n",
        "action.yml",
    )
    .unwrap();
    assert_eq!(docker.runs.using(), "docker");

    let composite = Action::parse(
        "name: c\nruns:\n  using: composite\n  steps:\n    - run: echo\n      shell: bash\n",
        "action.yml",
    )
    .unwrap();
    let Runs::Composite { steps } = &composite.runs else {
        panic!("composite");
    };
    assert_eq!(steps.len(), 1);
}

/// GitHub reads workflow files of at most 1,048,576 characters (UTF-16 code units).
#[test]
fn files_longer_than_github_reads_are_refused() {
    let head = "on: push\njobs:\n  build:\n    runs-on: x\n    steps: [{run: make}]\n#";
    let limit = hearth_workflow::model::MAX_FILE_LENGTH;
    let at_limit = format!("{head}{}", "x".repeat(limit - head.len()));
    assert!(Workflow::parse(&at_limit, "test.yml").is_ok());
    // 'é' is one UTF-16 unit but two bytes: the length counts units.
    let accented = format!("{head}{}", "é".repeat(limit - head.len()));
    assert!(Workflow::parse(&accented, "test.yml").is_ok());
    let over = format!("{at_limit}x");
    assert_eq!(
        errors(&over),
        ["test.yml:1:1: error: the workflow file is 1048577 characters long; GitHub reads at most 1048576"]
    );
}
