//! `hearth exec -P ubuntu-latest=kubernetes://IMAGE` runs a workflow's jobs as Pods of the real
//! test cluster (`scripts/k8s-test-env`): local JavaScript and composite actions, outputs from
//! one job to the next, `hashFiles` over the Pod's workspace.

#[path = "common/action_repos.rs"]
#[allow(dead_code)] // only `make_repo`
mod action_repos;

#[path = "common/kubernetes.rs"]
mod kubernetes;

use kubernetes::{client, kubeconfig};

use std::process::Command;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::Api;

const WORKFLOW: &str = r#"on: push
jobs:
  first:
    runs-on: ubuntu-latest
    outputs:
      greeting: ${{ steps.js.outputs.greeting }}
    steps:
      - id: js
        uses: ./.github/actions/hello
        with:
          who: pods
      - uses: ./.github/actions/twice
        with:
          word: composite
      - run: printf 'files %s %s\n' hash "${{ hashFiles('**/data.txt') }}"
      - run: printf 'shell=%s\n' "${BASH_VERSION:+bash}"
  second:
    runs-on: ubuntu-latest
    needs: first
    steps:
      - run: printf 'second %s %s\n' got "${{ needs.first.outputs.greeting }}"
"#;

const JS_ACTION: &str = r#"name: hello
inputs:
  who:
    required: true
outputs:
  greeting:
    description: the greeting
runs:
  using: node20
  main: index.js
"#;

const JS_MAIN: &str = r#"const fs = require('fs');
const who = process.env['INPUT_WHO'];
console.log(`hello ${who} from node ${process.versions.node.split('.')[0] > 0 ? 'ok' : 'no'}`);
fs.appendFileSync(process.env['GITHUB_OUTPUT'], `greeting=hello ${who}\n`);
"#;

const COMPOSITE: &str = r#"name: twice
inputs:
  word:
    required: true
runs:
  using: composite
  steps:
    - run: printf '%s-%s\n' "${{ inputs.word }}" "${{ inputs.word }}"
      shell: sh
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_run_runs_its_jobs_as_pods() {
    let client = client().await;
    let namespace = format!("hearth-x-{}", std::process::id());
    kubernetes::create_namespace(&client, &namespace).await;

    let dir = tempfile::tempdir().unwrap();
    action_repos::make_repo(
        dir.path(),
        "project",
        &[
            (".forgejo/workflows/ci.yml", WORKFLOW),
            (".github/actions/hello/action.yml", JS_ACTION),
            (".github/actions/hello/index.js", JS_MAIN),
            (".github/actions/twice/action.yml", COMPOSITE),
            ("data.txt", "some data\n"),
        ],
        "start",
    );
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "kubernetes:\n  kubeconfig: {}\n  namespace: {namespace}\n",
            kubeconfig()
        ),
    )
    .unwrap();
    let project = dir.path().join("project");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_hearth"))
            .arg("-c")
            .arg(&config)
            .args(["exec", "--no-cache-server", "-C"])
            .arg(&project)
            .args(["-P", "ubuntu-latest=kubernetes://hearth-test/debian:1"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();

    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let left = pods.list_metadata(&ListParams::default()).await.unwrap();
    kubernetes::delete_namespace(&client, &namespace);

    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("hello pods from node ok"), "{stdout}");
    assert!(stdout.contains("composite-composite"), "{stdout}");
    // sha256 of the one file's sha256, as GitHub computes hashFiles.
    let expected = {
        use sha2::{Digest, Sha256};
        let file = Sha256::digest(b"some data\n");
        hex(&Sha256::digest(file))
    };
    assert!(
        stdout.contains(&format!("files hash {expected}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("shell=bash"),
        "the image's bash is the default shell: {stdout}"
    );
    assert!(stdout.contains("second got hello pods"), "{stdout}");
    assert!(left.items.is_empty(), "Pods left: {:?}", left.items.len());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
