//! HTTPS mode: a certificate a client can trust, HTTP/2 or HTTP/1.1 as ALPN settles, and a
//! restart that keeps the certificate.

use std::io;
use std::time::Duration;

use hearth_fake_forge::{FakeForge, HttpVersion, Method, Options, Tls};
use hearth_forge::proto::ping::{PingRequest, PingResponse};
use hearth_forge::proto::runner::{RegisterRequest, RegisterResponse};
use reqwest::Certificate;

use crate::client::{Client, WireError};
use crate::REG_TOKEN;

async fn https_forge() -> FakeForge {
    FakeForge::start(
        Options::gitea()
            .with_registration_token(REG_TOKEN)
            .with_tls(Tls::SelfSigned),
    )
    .await
    .expect("start")
}

/// A reqwest builder that trusts only `pem` (not the system's roots).
fn trusting(pem: &str) -> reqwest::ClientBuilder {
    let certificates = Certificate::from_pem_bundle(pem.as_bytes()).expect("PEM");
    reqwest::Client::builder().tls_certs_only(certificates)
}

fn trusting_forge(forge: &FakeForge) -> reqwest::ClientBuilder {
    trusting(&forge.certificate_pem().expect("an HTTPS forge"))
}

async fn ping(client: &Client) -> Result<PingResponse, WireError> {
    client
        .call(Method::Ping, &PingRequest { data: "x".into() })
        .await
}

fn versions(forge: &FakeForge) -> Vec<HttpVersion> {
    forge.requests().iter().map(|r| r.http_version).collect()
}

#[tokio::test]
async fn https_is_http2_by_alpn_and_http1_for_a_client_that_offers_only_that() {
    let forge = https_forge().await;
    assert!(
        forge.url().starts_with("https://127.0.0.1:"),
        "{}",
        forge.url()
    );

    let h2 = Client::over(trusting_forge(&forge).build().unwrap(), &forge);
    let registered: RegisterResponse = h2
        .call(
            Method::Register,
            &RegisterRequest {
                name: "r".into(),
                token: REG_TOKEN.into(),
                labels: vec!["linux".into()],
                ..Default::default()
            },
        )
        .await
        .expect("register over HTTP/2");
    assert!(registered.runner.is_some());
    assert_eq!(ping(&h2).await.unwrap().data, "Hello, x!");
    assert_eq!(versions(&forge), [HttpVersion::Http2, HttpVersion::Http2]);

    let h1 = Client::over(trusting_forge(&forge).http1_only().build().unwrap(), &forge);
    ping(&h1).await.expect("ping over HTTP/1.1");
    assert_eq!(versions(&forge).last(), Some(&HttpVersion::Http11));
}

#[tokio::test]
async fn plain_http_is_http1() {
    let forge = crate::gitea().await;
    assert!(forge.url().starts_with("http://"));
    assert_eq!(forge.certificate_pem(), None);
    ping(&Client::new(&forge)).await.unwrap();
    assert_eq!(versions(&forge), [HttpVersion::Http11]);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_gets_no_answer() {
    let forge = https_forge().await;
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let client = Client::over(trusting(&other.cert.pem()).build().unwrap(), &forge);
    let err = ping(&client).await.unwrap_err();
    assert_eq!(err.code, "transport");
    assert!(forge.requests().is_empty());
}

#[tokio::test]
async fn down_and_up_keep_the_certificate() {
    let forge = https_forge().await;
    let pem = forge.certificate_pem();
    let client = Client::over(trusting_forge(&forge).build().unwrap(), &forge);
    ping(&client).await.unwrap();

    forge.go_down().await;
    assert_eq!(ping(&client).await.unwrap_err().code, "transport");
    forge.come_up().await.unwrap();

    assert_eq!(forge.certificate_pem(), pem);
    // The old HTTP/2 connection is gone; the new handshake trusts the same certificate.
    ping(&client).await.expect("ping after coming up");
    // The ping while down was refused before it reached the forge.
    assert_eq!(versions(&forge), [HttpVersion::Http2, HttpVersion::Http2]);
}

#[tokio::test]
async fn a_certificate_from_the_test_s_own_ca_is_served() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();

    let forge = FakeForge::start(Options::gitea().with_tls(Tls::Pem {
        certificate_chain: leaf.pem(),
        private_key: leaf_key.serialize_pem(),
    }))
    .await
    .expect("start");
    assert_eq!(forge.certificate_pem(), Some(leaf.pem()));
    let client = Client::over(trusting(&ca.pem()).build().unwrap(), &forge);
    ping(&client).await.expect("the CA's leaf is trusted");
}

#[tokio::test]
async fn an_unusable_certificate_fails_the_start() {
    for (chain, key) in [
        ("not a certificate", "not a key"),
        (
            "",
            "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
        ),
    ] {
        let err = FakeForge::start(Options::gitea().with_tls(Tls::Pem {
            certificate_chain: chain.into(),
            private_key: key.into(),
        }))
        .await
        .err()
        .expect("a bad certificate is refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("TLS"), "{err}");
    }
}

#[tokio::test]
async fn going_down_cuts_an_http2_request_in_flight() {
    let forge = https_forge().await;
    let client = Client::over(trusting_forge(&forge).build().unwrap(), &forge);
    forge.set_response_delay(Some(Method::Ping), Duration::from_secs(30));
    let in_flight = tokio::spawn(async move { ping(&client).await });
    forge
        .wait_until(Duration::from_secs(10), || {
            (forge.request_count(Method::Ping) == 1).then_some(())
        })
        .await
        .expect("the ping arrived");

    forge.go_down().await;
    let answer = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the client saw the connection close")
        .unwrap();
    assert_eq!(answer.unwrap_err().code, "transport");
}
