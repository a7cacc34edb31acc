//! `hearth exec -c FILE` gives a local run's jobs what the daemon gives its own: the bundle of
//! `runner.ca_file` (host and container jobs) and this process's proxy (container jobs, with
//! a proxy on the loopback forwarded from the job's network).

#[path = "common/action_repos.rs"]
#[allow(dead_code)] // only `make_repo`
mod action_repos;

use std::process::Command;

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBdGVzdA==\n-----END CERTIFICATE-----\n";

#[test]
fn a_local_runs_jobs_get_the_ca_bundle_and_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = r#"on: push
jobs:
  boxed:
    runs-on: boxed
    steps:
      - run: |
          printf 'boxed %s=%s node=%s\n' bundle "$SSL_CERT_FILE" "$NODE_EXTRA_CA_CERTS"
          tail -c 200 "$SSL_CERT_FILE" | grep -q MIIBdGVzdA && printf '%s has the CA\n' boxed
          printf 'boxed %s=%s\n' proxy "$HTTPS_PROXY"
  plain:
    runs-on: linux
    steps:
      - run: |
          printf 'plain %s=%s\n' bundle "$GIT_SSL_CAINFO"
          tail -c 200 "$GIT_SSL_CAINFO" | grep -q MIIBdGVzdA && printf '%s has the CA\n' plain
"#;
    action_repos::make_repo(
        dir.path(),
        "project",
        &[(".forgejo/workflows/ci.yml", workflow)],
        "start",
    );
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, CA).unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!("runner:\n  ca_file: {}\n", ca_file.display()),
    )
    .unwrap();
    // Nothing listens there: the job is only given the address (its check is a warning).
    let proxy = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("-c")
        .arg(&config)
        .args(["exec", "--no-cache-server", "-C"])
        .arg(dir.path().join("project"))
        .args([
            "--label",
            "linux:host",
            "--label",
            "boxed:docker://hearth-test/busybox:1",
        ])
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{proxy}"))
        .env("NO_PROXY", "localhost")
        .output()
        .expect("hearth exec runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest.to_owned()))
            .unwrap_or_else(|| panic!("no {prefix}: {stdout}"))
    };
    assert_eq!(
        line("boxed bundle="),
        "/__e/ca-certificates.crt node=/__e/ca-certificates.crt"
    );
    line("boxed has the CA");
    line("plain has the CA");
    assert!(
        line("plain bundle=").contains("ca-certificates-"),
        "{stdout}"
    );
    let boxed_proxy = line("boxed proxy=");
    assert!(
        boxed_proxy.starts_with("http://") && !boxed_proxy.contains("127.0.0.1"),
        "a loopback proxy is forwarded from the job's network: {boxed_proxy}"
    );
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("warning: The proxy"))
        .collect();
    assert_eq!(warnings.len(), 1, "nothing listens at the proxy: {stdout}");
}
