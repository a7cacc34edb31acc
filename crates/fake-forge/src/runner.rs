//! The runner's side, for tests that exercise one task: a client registered with the fake and
//! holding the one task it fetched.

use std::time::Duration;

use hearth_forge::proto::runner::{FetchTaskRequest, RegisterRequest};
use hearth_forge::{Client, ClientOptions, Credentials};

use crate::{FakeForge, JobId, Options, TaskSpec};

/// A fake forge, a runner registered with it, and the task it handed the runner.
pub struct TaskInHand {
    pub forge: FakeForge,
    /// The runner's client, with its credentials.
    pub client: Client,
    pub job: JobId,
    pub task_id: i64,
}

/// Starts a Gitea-flavoured fake, registers a runner labelled `linux` and fetches the one
/// queued task, a job of `steps` steps of `run: true`.
///
/// # Panics
///
/// When any of it fails: this is test support.
pub async fn task_in_hand(steps: usize) -> TaskInHand {
    let forge = FakeForge::start(Options::gitea().with_registration_token("reg"))
        .await
        .expect("forge");
    let client = Client::new(&ClientOptions {
        address: forge.url(),
        insecure: false,
        ca_file: None,
        request_timeout: Duration::from_secs(5),
        version: "test".into(),
    })
    .expect("client");
    let runner = client
        .register(&RegisterRequest {
            name: "r".into(),
            token: "reg".into(),
            labels: vec!["linux".into()],
            ..Default::default()
        })
        .await
        .expect("registered")
        .runner
        .expect("runner");
    let client = client.with_credentials(Credentials {
        uuid: runner.uuid,
        token: runner.token.into(),
    });
    let step_lines: String = (0..steps).map(|_| "      - run: true\n").collect();
    let job = forge.queue_task(TaskSpec::new(format!(
        "on: push\njobs:\n  j:\n    runs-on: linux\n    steps:\n{step_lines}"
    )));
    let task = client
        .fetch_task(
            &FetchTaskRequest { tasks_version: 0 },
            Duration::from_secs(5),
            "key-1",
        )
        .await
        .expect("fetched")
        .task
        .expect("a task");
    TaskInHand {
        forge,
        client,
        job,
        task_id: task.id,
    }
}
