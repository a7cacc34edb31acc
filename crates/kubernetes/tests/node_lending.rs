//! The node the runner lends to job Pods, against a real cluster (`scripts/k8s-test-env`, the
//! test images loaded into its node): an image without node gets the runner's copied into its
//! Pod and runs it; an image with its own node keeps it for its major and is lent the runner's
//! for others, as in a Docker job. Each test works in a namespace of its own, deleted after.

use std::time::Instant;

use hearth_backend::{
    Backend, BackendError, CancellationToken, ExecEnd, ExecSpec, JobRuntime, NoSetupLog,
    NodeCommand, Stream,
};
use hearth_kubernetes::KubernetesSettings;

mod common;

use common::*;

fn runners_node() -> String {
    let output = std::process::Command::new("node")
        .arg("--version")
        .output()
        .expect("the tests need a node on PATH (the runner's, to lend)");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// What `node` prints of `process.version` when run as `command` says, in the job's Pod.
async fn version_through(runtime: &dyn JobRuntime, command: &NodeCommand) -> String {
    let mut out = Vec::new();
    let mut sink = |_: Stream, chunk: &[u8]| out.extend_from_slice(chunk);
    let mut argv = command.argv.clone();
    argv.extend(["-e".to_owned(), "console.log(process.version)".to_owned()]);
    let spec = ExecSpec {
        argv,
        env: runtime.base_env().to_vec(),
        working_dir: runtime.paths().workspace.clone(),
        timeout: None,
    };
    let end = runtime
        .exec(spec, &mut sink, &CancellationToken::new())
        .await;
    let out = String::from_utf8_lossy(&out).trim().to_owned();
    assert_eq!(end.unwrap(), ExecEnd::Exited(0), "{command:?}: {out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_without_node_is_lent_the_runners_copied_into_its_pod() {
    let ns = TestNamespace::new("node-lent").await;
    let externals = tempfile::tempdir().unwrap();
    let backend = ns
        .backend(KubernetesSettings::default())
        .with_node_lending(externals.path().to_path_buf());
    let runtime = backend
        .start(
            job(BUSYBOX, "node-runner"),
            &mut NoSetupLog,
            &CancellationToken::new(),
        )
        .await
        .expect("the job's Pod starts");
    let runners = runners_node();
    let major: u32 = runners[1..].split('.').next().unwrap().parse().unwrap();

    let copying = Instant::now();
    let lent = runtime.node(major).await.expect("a node is lent");
    let copied_in = copying.elapsed();
    let at = format!("/__e/node{major}/");
    assert!(lent.argv[0].starts_with(&at), "{lent:?}");
    assert_eq!(lent.argv.last().unwrap(), &format!("{at}bin/node"));
    assert_eq!(lent.notice, None);
    assert_eq!(version_through(&*runtime, &lent).await, runners);

    // Once per job: the next action finds it there, and another major gets it with a notice.
    let again = Instant::now();
    let newer = runtime.node(major + 4).await.expect("the lent one again");
    let second = again.elapsed();
    assert_eq!(newer.argv, lent.argv);
    let notice = newer.notice.expect("a notice for another major");
    assert!(
        notice.contains(&format!("node{}", major + 4))
            && notice.contains(&format!("the runner's node {major}")),
        "{notice}"
    );
    assert!(
        second < copied_in,
        "not copied again: {second:?} against {copied_in:?} the first time"
    );
    eprintln!("the lent node was copied into the Pod in {copied_in:?}; asked again: {second:?}");
    runtime.finish().await.unwrap();
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_with_node_keeps_its_own_for_its_major_and_is_lent_for_others() {
    let ns = TestNamespace::new("node-own").await;
    let externals = tempfile::tempdir().unwrap();
    let backend = ns
        .backend(KubernetesSettings::default())
        .with_node_lending(externals.path().to_path_buf());
    let runtime = backend
        .start(
            job(DEBIAN, "node-runner"),
            &mut NoSetupLog,
            &CancellationToken::new(),
        )
        .await
        .expect("the job's Pod starts");

    let own = runtime.node(18).await.expect("the image's node");
    assert_eq!(own, NodeCommand::on_path());
    assert!(version_through(&*runtime, &own).await.starts_with("v18."));
    assert!(
        std::fs::read_dir(externals.path())
            .unwrap()
            .next()
            .is_none(),
        "nothing is bundled for an image whose node is the one asked for"
    );

    // The runner's major: lent, no notice (the exact major wins).
    let runners = runners_node();
    let major: u32 = runners[1..].split('.').next().unwrap().parse().unwrap();
    assert_ne!(
        major, 18,
        "the test needs the runner's node to differ from the image's"
    );
    let lent = runtime.node(major).await.expect("the runner's node");
    assert!(
        lent.argv[0].starts_with(&format!("/__e/node{major}/")),
        "{lent:?}"
    );
    assert_eq!(lent.notice, None);
    assert_eq!(version_through(&*runtime, &lent).await, runners);

    // A major neither has: the newer of the two, said in a notice.
    let other = runtime.node(major + 4).await.expect("some node");
    assert_eq!(other.argv, lent.argv);
    assert!(
        other
            .notice
            .as_deref()
            .is_some_and(|n| n.contains(&format!("the runner's node {major}"))),
        "{other:?}"
    );
    runtime.finish().await.unwrap();
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}

/// Without lending, an image without node says so when an action asks for one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_lending_an_image_without_node_has_none() {
    let ns = TestNamespace::new("node-none").await;
    let backend = ns.backend(KubernetesSettings::default());
    let runtime = backend
        .start(
            job(BUSYBOX, "node-runner"),
            &mut NoSetupLog,
            &CancellationToken::new(),
        )
        .await
        .expect("the job's Pod starts");
    let refused = runtime.node(20).await.expect_err("no node");
    assert!(
        matches!(&refused, BackendError::Unsupported(m) if m.contains("set to lend none")),
        "{refused}"
    );
    runtime.finish().await.unwrap();
    assert_eq!(ns.leftovers().await, Vec::<String>::new());
}
