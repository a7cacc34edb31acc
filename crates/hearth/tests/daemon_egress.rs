//! What of the runner's network set-up reaches its jobs: a private CA (`runner.ca_file`) in
//! container jobs, their services and host jobs, for OpenSSL, node and git; the runner's HTTP
//! proxy in container jobs, forwarded from their network when it listens on the runner's
//! loopback, with the forge and the job's own hosts kept off it.

#[path = "daemon/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use harness::{Harness, FAST};
use hearth_fake_forge::{Options, Status, TaskSpec};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LONG: Duration = Duration::from_secs(120);

/// A CA of the test's own and a server certificate for `localhost` it signed: (CA, cert, key).
fn private_ca() -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: with rcgen's default name for both, the server's certificate
    // would name itself as its issuer, and look self-signed.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Hearth test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer).expect("signed");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn a_private_ca_reaches_container_jobs_their_services_and_host_jobs() {
    let (ca, cert, key) = private_ca();
    let h = Harness::start(Options::gitea()).await;
    let ca_file = h.path("private-ca.pem");
    std::fs::write(&ca_file, &ca).expect("the CA written");
    h.config(&format!(
        "{FAST}  ca_file: {}\n  labels: [\"linux:docker://hearth-test/debian:1\", \"bare:host\"]\n",
        ca_file.display()
    ));
    h.registered().await;

    // A TLS server in the job container with the CA's certificate for `localhost`; OpenSSL
    // (SSL_CERT_FILE), node (NODE_EXTRA_CA_CERTS) and git (GIT_SSL_CAINFO) must trust it, and
    // OpenSSL with the image's own store must not (or the test proves nothing).
    let container_job = format!(
        r#"name: ci
on: push
jobs:
  tls:
    runs-on: linux
    env:
      CERT_B64: {cert}
      KEY_B64: {key}
    services:
      check:
        image: hearth-test/busybox:1
        entrypoint: sleep
        command: '300'
        options: --health-cmd 'grep -q "BEGIN CERTIFICATE" "$SSL_CERT_FILE"' --health-interval 200ms --health-retries 25
    steps:
      - run: |
          for name in SSL_CERT_FILE NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO REQUESTS_CA_BUNDLE; do
            echo "$name=$(printenv $name)"
          done
          grep -c "BEGIN CERTIFICATE" "$SSL_CERT_FILE" | sed 's/^/certificates: /'
      - run: |
          echo "$CERT_B64" | base64 -d > /tmp/cert.pem
          echo "$KEY_B64" | base64 -d > /tmp/key.pem
          node -e "require('https').createServer({{cert: require('fs').readFileSync('/tmp/cert.pem'), key: require('fs').readFileSync('/tmp/key.pem')}}, (q, r) => {{ r.writeHead(404); r.end() }}).listen(8443)" &
          for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/8443) 2>/dev/null && break; sleep 0.1; done
          if SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt openssl s_client -connect localhost:8443 -servername localhost -verify_return_error < /dev/null > /dev/null 2>&1; then
            echo "image store: trusted"
          else
            echo "image store: refused"
          fi
          openssl s_client -connect localhost:8443 -servername localhost -verify_return_error < /dev/null > /dev/null 2>&1 && echo "openssl: trusted"
          node -e "require('https').get('https://localhost:8443/', r => console.log('node: status ' + r.statusCode)).on('error', e => console.log('node: ' + e.message))"
          case "$(git ls-remote https://localhost:8443/x.git 2>&1)" in
            *"not found"*) echo "git: trusted" ;;
            *) echo "git: refused" ;;
          esac
"#,
        cert = b64(&cert),
        key = b64(&key),
    );
    let host_job = "name: ci\non: push\njobs:\n  bare:\n    runs-on: bare\n    steps:\n      - run: |\n          \
                    echo \"bundle=$SSL_CERT_FILE git=$GIT_SSL_CAINFO\"\n";

    let container_id = h.forge.queue_task(TaskSpec::new(container_job));
    let host_id = h.forge.queue_task(TaskSpec::new(host_job.to_owned()));
    let daemon = h.daemon(&[]);
    let container_task = h.done(container_id, LONG).await;
    let host_task = h.done(host_id, LONG).await;
    let log = daemon.stop().await;
    let rows = h.forge.log_lines(container_id);
    assert_eq!(container_task.status, Status::Success, "{rows:#?}\n{log}");
    for name in [
        "SSL_CERT_FILE",
        "NODE_EXTRA_CA_CERTS",
        "GIT_SSL_CAINFO",
        "REQUESTS_CA_BUNDLE",
    ] {
        let expected = format!("{name}=/__e/ca-certificates.crt");
        assert!(rows.iter().any(|r| r == &expected), "{expected}: {rows:#?}");
    }
    // The system store of the runner and the private CA.
    let certificates: usize = rows
        .iter()
        .find_map(|r| r.strip_prefix("certificates: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("a count of the bundle's certificates");
    assert!(certificates > 1, "{certificates} certificates");
    for line in [
        "image store: refused",
        "openssl: trusted",
        "node: status 404",
        "git: trusted",
    ] {
        assert!(rows.iter().any(|r| r == line), "{line}: {rows:#?}");
    }

    assert_eq!(host_task.status, Status::Success, "{log}");
    let host_rows = h.forge.log_lines(host_id);
    let line = host_rows
        .iter()
        .find_map(|r| r.strip_prefix("bundle="))
        .expect("the host job's bundle");
    let (bundle, git) = line.split_once(" git=").expect("both variables");
    assert_eq!(bundle, git);
    assert!(
        bundle.starts_with(&h.path("work").display().to_string()),
        "{bundle}"
    );
    let text = std::fs::read_to_string(bundle).expect("the host jobs' bundle is there");
    assert!(text.ends_with(&ca), "the private CA is in the bundle");
}

/// A proxy that answers every request `200 proxied` and notes its request line.
async fn recording_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the proxy listens");
    let port = listener.local_addr().expect("an address").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let noted = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let noted = noted.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let n = stream.read(&mut buffer).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..n]);
                if let Some(line) = request.lines().next() {
                    noted
                        .lock()
                        .expect("the proxy's notes")
                        .push(line.to_owned());
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nproxied\n")
                    .await;
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn container_jobs_get_the_runners_proxy_with_the_forge_and_their_services_off_it() {
    let (port, seen) = recording_proxy().await;
    let h = Harness::start(Options::gitea()).await;
    h.config(&format!(
        "{FAST}  labels: [\"linux:docker://hearth-test/debian:1\"]\n"
    ));
    h.registered().await;
    // The harness's NO_PROXY (127.0.0.1,localhost) keeps the runner's own forge traffic off it.
    h.env("HTTP_PROXY", &format!("http://127.0.0.1:{port}"));
    let payload = r#"name: ci
on: push
jobs:
  fetch:
    runs-on: linux
    services:
      db:
        image: hearth-test/busybox:1
        entrypoint: sleep
        command: '300'
    steps:
      - run: |
          echo "proxy=$HTTP_PROXY lower=$http_proxy"
          echo "no_proxy=$NO_PROXY"
          echo "server=$GITHUB_SERVER_URL"
          git ls-remote http://example.invalid/x.git > /dev/null 2>&1 || true
"#;
    let id = h.forge.queue_task(TaskSpec::new(payload.to_owned()));
    let daemon = h.daemon(&[]);
    let task = h.done(id, LONG).await;
    let log = daemon.stop().await;
    let rows = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{rows:#?}\n{log}");

    let value = |prefix: &str| {
        rows.iter()
            .find_map(|r| r.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix}: {rows:#?}"))
            .to_owned()
    };
    let proxies = value("proxy=");
    let (upper, lower) = proxies.split_once(" lower=").expect("both spellings");
    assert_eq!(upper, lower);
    // On the runner's loopback: forwarded from the job network's gateway.
    assert!(!upper.contains("127.0.0.1"), "{upper}");
    assert!(
        upper.ends_with(&format!(":{}", port)) || upper.starts_with("http://"),
        "{upper}"
    );
    let server = value("server=");
    let server_host = server
        .trim_start_matches("http://")
        .split(':')
        .next()
        .expect("a host")
        .to_owned();
    let no_proxy = value("no_proxy=");
    let hosts: Vec<&str> = no_proxy.split(',').collect();
    for host in ["127.0.0.1", "localhost", "db", server_host.as_str()] {
        assert!(hosts.contains(&host), "{host} not in {no_proxy}");
    }
    let requests = seen.lock().expect("the proxy's notes").clone();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET http://example.invalid/x.git/")),
        "the job's request went through the proxy: {requests:?}"
    );
}
