use hearth_fake_forge::{FakeForge, Method, Options};
use hearth_forge::proto::ping::{PingRequest, PingResponse};
use hearth_forge::proto::runner::{
    DeclareRequest, DeclareResponse, FetchTaskRequest, FetchTaskResponse, RegisterRequest,
    RegisterResponse,
};
use prost::Message;

use crate::client::Client;
use crate::{forgejo, gitea, REG_TOKEN};

fn register_request(token: &str) -> RegisterRequest {
    RegisterRequest {
        name: "runner-1".into(),
        token: token.into(),
        version: "v1.2.3".into(),
        labels: vec!["ubuntu-latest".into(), "self-hosted".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn ping_answers_without_credentials() {
    let forge = gitea().await;
    let reply: PingResponse = Client::new(&forge)
        .call(
            Method::Ping,
            &PingRequest {
                data: "hearth".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(reply.data, "Hello, hearth!");
}

#[tokio::test]
async fn register_creates_a_runner_with_fresh_credentials() {
    let forge = gitea().await;
    let client = Client::new(&forge);
    let runner = client
        .call::<_, RegisterResponse>(Method::Register, &register_request(REG_TOKEN))
        .await
        .unwrap()
        .runner
        .unwrap();
    assert_eq!(runner.token.len(), 40);
    assert!(runner.token.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(runner.uuid.len(), 36);
    assert_eq!(runner.name, "runner-1");
    assert_eq!(runner.version, "v1.2.3");
    assert_eq!(runner.labels, ["ubuntu-latest", "self-hosted"]);

    // Registration tokens are reusable; each registration is a new runner.
    let second = client
        .call::<_, RegisterResponse>(Method::Register, &register_request(REG_TOKEN))
        .await
        .unwrap()
        .runner
        .unwrap();
    assert_ne!(second.uuid, runner.uuid);
    let runners = forge.runners();
    assert_eq!(runners.len(), 2);
    assert_eq!(runners[0].token, runner.token);
}

#[tokio::test]
#[allow(deprecated)]
async fn register_falls_back_to_agent_labels() {
    let forge = gitea().await;
    let request = RegisterRequest {
        labels: vec![],
        agent_labels: vec!["old-label".into()],
        ..register_request(REG_TOKEN)
    };
    Client::new(&forge)
        .call::<_, RegisterResponse>(Method::Register, &request)
        .await
        .unwrap();
    assert_eq!(forge.runners()[0].labels, ["old-label"]);
}

#[tokio::test]
async fn gitea_register_errors_are_plain_unknown() {
    let forge = gitea().await;
    forge.invalidate_registration_token("old-token");
    let client = Client::new(&forge);
    let cases = [
        (
            register_request("nope"),
            "runner registration token not found",
        ),
        (
            register_request("old-token"),
            "runner registration token has been invalidated, please use the latest one",
        ),
        (
            RegisterRequest {
                name: String::new(),
                ..register_request(REG_TOKEN)
            },
            "missing runner token, name",
        ),
    ];
    for (request, message) in cases {
        let err = client
            .call::<_, RegisterResponse>(Method::Register, &request)
            .await
            .unwrap_err();
        assert_eq!((err.http_status, err.code.as_str()), (500, "unknown"));
        assert_eq!(err.message, message);
    }
}

#[tokio::test]
async fn forgejo_register_errors_are_invalid_argument() {
    let forge = forgejo().await;
    let err = Client::new(&forge)
        .call::<_, RegisterResponse>(Method::Register, &register_request("nope"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.http_status, err.code.as_str()),
        (400, "invalid_argument")
    );
    assert_eq!(err.message, "runner registration token not found");
}

#[tokio::test]
async fn unknown_credentials_are_unregistered_runner_in_both_flavours() {
    let forge = gitea().await;
    let (mut client, _) = Client::registered(&forge, REG_TOKEN, &[]).await;
    client.token = "0".repeat(40);
    let err = client
        .call::<_, FetchTaskResponse>(Method::FetchTask, &FetchTaskRequest::default())
        .await
        .unwrap_err();
    assert_eq!((err.http_status, err.code.as_str()), (500, "unknown"));
    assert_eq!(
        err.message,
        "rpc error: code = Unauthenticated desc = unregistered runner"
    );

    let forge = forgejo().await;
    let (client, runner) = Client::registered(&forge, REG_TOKEN, &[]).await;
    forge.delete_runner(runner.id);
    let err = client
        .call::<_, DeclareResponse>(Method::Declare, &DeclareRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        (err.http_status, err.code.as_str()),
        (401, "unauthenticated")
    );
    assert_eq!(err.message, "unregistered runner");
}

#[tokio::test]
async fn declare_replaces_labels_and_version_and_sends_capabilities() {
    let forge = FakeForge::start(Options {
        declare_capabilities: Some("job-summary".into()),
        ..Options::gitea().with_registration_token(REG_TOKEN)
    })
    .await
    .unwrap();
    let (client, runner) = Client::registered(&forge, REG_TOKEN, &["a"]).await;
    let reply = client
        .call_full::<_, DeclareResponse>(
            Method::Declare,
            &DeclareRequest {
                version: "v2".into(),
                labels: vec!["b".into(), "c".into()],
                capabilities: vec!["cancelling".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        reply.headers.get("x-gitea-actions-capabilities").unwrap(),
        "job-summary"
    );
    let declared = reply.message.runner.unwrap();
    assert_eq!(
        (declared.id, declared.uuid.as_str()),
        (runner.id, runner.uuid.as_str())
    );
    assert_eq!(declared.labels, ["b", "c"]);
    let stored = &forge.runners()[0];
    assert_eq!(stored.labels, ["b", "c"]);
    assert_eq!(stored.version, "v2");
    assert_eq!(stored.capabilities, ["cancelling"]);
    assert_eq!(stored.declare_count, 1);
}

#[tokio::test]
async fn an_old_server_does_not_route_declare() {
    let forge = gitea().await;
    forge.set_declare_unimplemented(true);
    let (client, _) = Client::registered(&forge, REG_TOKEN, &[]).await;
    let err = client
        .call::<_, DeclareResponse>(Method::Declare, &DeclareRequest::default())
        .await
        .unwrap_err();
    assert_eq!((err.http_status, err.code.as_str()), (404, ""));
}

#[tokio::test]
async fn framing_errors() {
    let forge = gitea().await;
    let client = Client::new(&forge);
    let ping = PingRequest { data: "x".into() }.encode_to_vec();
    let err = client
        .post::<PingResponse>(Method::Ping, "text/plain", ping.clone())
        .await
        .unwrap_err();
    assert_eq!(err.http_status, 415);
    let ok = client
        .post::<PingResponse>(Method::Ping, "application/proto; charset=utf-8", ping)
        .await;
    assert!(ok.is_ok());
    let err = client
        .post::<PingResponse>(Method::Ping, "application/proto", vec![0xff, 0xff])
        .await
        .unwrap_err();
    assert_eq!(
        (err.http_status, err.code.as_str()),
        (400, "invalid_argument")
    );
}
