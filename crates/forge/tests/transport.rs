//! The client's transport against the fake forge over real TLS and real HTTP: which
//! certificates it trusts, what it says when it trusts none, and which HTTP version it speaks.
//! (Proxy variables are in `proxy.rs`: they are process-wide.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use hearth_fake_forge::{FakeForge, HttpVersion, Options, TaskSpec, Tls};
use hearth_forge::proto::runner::{FetchTaskRequest, RegisterRequest};
use hearth_forge::{Client, ClientError, ClientOptions, Code, Credentials};

const REG_TOKEN: &str = "reg";

async fn start_forge(tls: Option<Tls>) -> FakeForge {
    let options = Options::gitea().with_registration_token(REG_TOKEN);
    let options = match tls {
        Some(tls) => options.with_tls(tls),
        None => options,
    };
    FakeForge::start(options).await.expect("forge")
}

fn options(forge: &FakeForge) -> ClientOptions {
    ClientOptions {
        address: forge.url(),
        insecure: false,
        ca_file: None,
        request_timeout: Duration::from_secs(10),
        version: "test".into(),
    }
}

/// A CA file in `dir` holding `pem`.
fn ca_file(dir: &Path, pem: &str) -> PathBuf {
    let path = dir.join("forge-ca.pem");
    std::fs::write(&path, pem).expect("write the CA file");
    path
}

/// Ping, register, then fetch the task queued before: every kind of call a runner starts with.
async fn ping_register_fetch(forge: &FakeForge, client: Client) {
    assert_eq!(
        client.ping("hearth").await.expect("ping").data,
        "Hello, hearth!"
    );
    let job = forge.queue_task(TaskSpec::new(
        "on: push\njobs:\n  j:\n    runs-on: linux\n    steps:\n      - run: true\n",
    ));
    let runner = client
        .register(&RegisterRequest {
            name: "r".into(),
            token: REG_TOKEN.into(),
            labels: vec!["linux".into()],
            ..Default::default()
        })
        .await
        .expect("register")
        .runner
        .expect("a runner");
    let client = client.with_credentials(Credentials {
        uuid: runner.uuid,
        token: runner.token.into(),
    });
    let task = client
        .fetch_task(
            &FetchTaskRequest { tasks_version: 0 },
            Duration::from_secs(10),
            "transport-test",
        )
        .await
        .expect("fetch")
        .task
        .expect("the queued task");
    assert_eq!(forge.task(job).map(|t| t.id), Some(task.id));
}

fn versions(forge: &FakeForge) -> Vec<HttpVersion> {
    forge.requests().iter().map(|r| r.http_version).collect()
}

#[tokio::test]
async fn a_ca_file_with_the_forge_s_certificate_is_trusted_and_https_is_http2() {
    let forge = start_forge(Some(Tls::SelfSigned)).await;
    let dir = tempfile::tempdir().unwrap();
    let pem = forge.certificate_pem().expect("an HTTPS forge");
    let client = Client::new(&ClientOptions {
        ca_file: Some(ca_file(dir.path(), &pem)),
        ..options(&forge)
    })
    .expect("client");
    ping_register_fetch(&forge, client).await;
    assert_eq!(versions(&forge), [HttpVersion::Http2; 3]);
}

#[tokio::test]
async fn insecure_accepts_any_certificate() {
    let forge = start_forge(Some(Tls::SelfSigned)).await;
    let client = Client::new(&ClientOptions {
        insecure: true,
        ..options(&forge)
    })
    .expect("client");
    ping_register_fetch(&forge, client).await;
    assert_eq!(versions(&forge), [HttpVersion::Http2; 3]);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_certificate_error_that_names_the_settings() {
    let forge = start_forge(Some(Tls::SelfSigned)).await;
    let client = Client::new(&options(&forge)).expect("client");
    let err = client
        .ping("x")
        .await
        .expect_err("an untrusted certificate");
    assert_eq!(err.wire_code, Code::Unavailable);
    assert_eq!(err.http_status, None);
    for words in [
        "certificate is not trusted",
        "runner.ca_file",
        "runner.insecure",
    ] {
        assert!(err.message.contains(words), "{words:?} not in {err}");
    }
    assert!(forge.requests().is_empty(), "{:?}", forge.requests());
}

#[tokio::test]
async fn a_ca_file_with_another_certificate_is_not_enough() {
    let forge = start_forge(Some(Tls::SelfSigned)).await;
    let other = start_forge(Some(Tls::SelfSigned)).await;
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(&ClientOptions {
        ca_file: Some(ca_file(dir.path(), &other.certificate_pem().unwrap())),
        ..options(&forge)
    })
    .expect("client");
    let err = client.ping("x").await.expect_err("the wrong certificate");
    assert!(err.message.contains("runner.ca_file"), "{err}");
}

#[tokio::test]
async fn a_missing_ca_file_is_named() {
    let forge = start_forge(Some(Tls::SelfSigned)).await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.pem");
    let err = Client::new(&ClientOptions {
        ca_file: Some(missing.clone()),
        ..options(&forge)
    })
    .expect_err("a missing CA file");
    assert!(
        matches!(&err, ClientError::CaFile { path, .. } if *path == missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("no-such-ca.pem"), "{err}");
}

#[tokio::test]
async fn a_ca_file_without_a_certificate_is_named() {
    let forge = start_forge(Some(Tls::SelfSigned)).await;
    let dir = tempfile::tempdir().unwrap();
    for text in [
        "",
        "not PEM at all\n",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        // A PEM block, but not a certificate rustls can read.
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        let path = ca_file(dir.path(), text);
        let err = Client::new(&ClientOptions {
            ca_file: Some(path.clone()),
            ..options(&forge)
        })
        .expect_err("a CA file without a certificate");
        assert!(
            matches!(&err, ClientError::CaCertificate { path: p, .. } if *p == path),
            "{text:?}: {err:?}"
        );
        assert!(err.to_string().contains("forge-ca.pem"), "{err}");
    }
}

#[tokio::test]
async fn plain_http_is_http1() {
    let forge = start_forge(None).await;
    let client = Client::new(&options(&forge)).expect("client");
    ping_register_fetch(&forge, client).await;
    assert_eq!(versions(&forge), [HttpVersion::Http11; 3]);
}
