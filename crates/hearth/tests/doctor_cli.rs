//! `hearth doctor`, the real binary, against the fake forge and the machine's Docker: every
//! check passes on a good set-up, and each way a set-up can be broken fails its check with the
//! advice that fixes it (and skips what depends on it).

#[allow(dead_code)]
#[path = "daemon/harness.rs"]
mod harness;

use std::process::Output;

use harness::Harness;
use hearth_fake_forge::Options;
use serde_json::Value;

/// A label whose jobs run in the test image every machine with the test environment has.
const DOCKER_LABEL: &str = "box:docker://hearth-test/busybox:1";

/// Registers with `labels` under a config of `yaml` (plus the harness's folders).
async fn registered(yaml: &str, labels: &str) -> Harness {
    let h = Harness::start(Options::gitea()).await;
    h.config(yaml);
    let output = h.register(&["--labels", labels]).await;
    assert!(output.status.success(), "{output:?}");
    h
}

async fn doctor(h: &Harness) -> Output {
    h.command(&["doctor", "--json"])
        .output()
        .await
        .expect("hearth doctor runs")
}

/// The report, by check name, and the exit code.
fn report(output: &Output) -> (Vec<(String, Value)>, Option<i32>) {
    let text = String::from_utf8_lossy(&output.stdout);
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let checks = json
        .as_array()
        .expect("an array of checks")
        .iter()
        .map(|check| {
            (
                check["name"].as_str().expect("a name").to_owned(),
                check.clone(),
            )
        })
        .collect();
    (checks, output.status.code())
}

fn check<'a>(checks: &'a [(String, Value)], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("no check {name}: {checks:#?}"))
}

/// Asserts that `name` failed, its detail holding `detail` and its advice `advice`, that the
/// run exited 1, and that each of `skipped` was skipped.
fn assert_failed(output: &Output, name: &str, detail: &str, advice: &str, skipped: &[&str]) {
    let (checks, code) = report(output);
    let failed = check(&checks, name);
    assert_eq!(failed["status"], "fail", "{checks:#?}");
    let said = failed["detail"].as_str().unwrap_or_default();
    assert!(said.contains(detail), "{name}: {said}");
    let fix = failed["advice"].as_str().unwrap_or_default();
    assert!(fix.contains(advice), "{name}: {fix}");
    for name in skipped {
        assert_eq!(check(&checks, name)["status"], "skip", "{checks:#?}");
    }
    assert_eq!(code, Some(1), "{checks:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_on_a_good_set_up() {
    let h = registered("", &format!("linux:host,{DOCKER_LABEL}")).await;
    let output = doctor(&h).await;
    let (checks, code) = report(&output);
    let names: Vec<&str> = checks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "config",
            "runner-file",
            "forge",
            "token",
            "clock",
            "docker",
            "image:box",
            "job-network",
            "disk:work",
            "disk:docker"
        ]
    );
    for (name, check) in &checks {
        assert_eq!(check["status"], "pass", "{name}: {check:#}");
        assert_eq!(check["advice"], Value::Null, "{name}");
    }
    assert_eq!(code, Some(0));
    let network = check(&checks, "job-network")["detail"].as_str().unwrap();
    assert!(network.contains(&h.forge.url()), "{network}");
    // The token check is the daemon's Declare: the forge has the same labels as before.
    assert_eq!(h.forge.runners()[0].labels, ["linux", "box"]);
    // Nothing of the throw-away job is left.
    let uuid = h.runner_uuid();
    for kind in ["container", "network"] {
        let listed = std::process::Command::new("docker")
            .args([
                kind,
                "ls",
                "-q",
                "--filter",
                &format!("label=hearth.runner={uuid}"),
            ])
            .args(if kind == "container" {
                &["-a"][..]
            } else {
                &[][..]
            })
            .output()
            .expect("docker runs");
        assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "", "{kind}");
    }

    // The text form: one line per check, and no colour codes outside a terminal.
    let text = h.command(&["doctor"]).output().await.expect("doctor runs");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("pass  job-network"), "{text}");
    assert!(
        text.ends_with("10 passed, 0 warning(s), 0 failed, 0 skipped\n"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[tokio::test]
async fn a_forge_that_is_down_says_to_start_it_or_fix_the_address() {
    let h = registered("", "linux:host").await;
    h.forge.go_down().await;
    let output = doctor(&h).await;
    assert_failed(
        &output,
        "forge",
        "nothing answers at 127.0.0.1:",
        "start the forge, or fix its address",
        &["token", "clock"],
    );
}

#[tokio::test]
async fn a_runner_the_forge_does_not_know_is_told_to_register_again() {
    let h = registered("", "linux:host").await;
    let id = h.forge.runners()[0].id;
    assert!(h.forge.delete_runner(id));
    let output = doctor(&h).await;
    assert_failed(
        &output,
        "token",
        "the forge does not know runner",
        "register again: hearth register --instance",
        &[],
    );
}

/// (The docker label given as the daemon takes it, `--labels`, over the registration's.)
#[tokio::test]
async fn docker_that_does_not_answer_names_container_docker_host() {
    let h = registered(
        "container:\n  docker_host: unix:///nonexistent.sock\n",
        "linux:host",
    )
    .await;
    let labels = format!("linux:host,{DOCKER_LABEL}");
    let output = h
        .command(&["doctor", "--json", "--labels", &labels])
        .output()
        .await
        .expect("hearth doctor runs");
    assert_failed(
        &output,
        "docker",
        "/nonexistent.sock",
        "start Docker, or set container.docker_host",
        &["image:box", "job-network", "disk:docker"],
    );
}

#[tokio::test]
async fn an_image_neither_here_nor_pullable_names_the_registry_and_credentials() {
    // A registry on the loopback where nothing listens.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = free.local_addr().unwrap().port();
    drop(free);
    let image = format!("127.0.0.1:{port}/hearth-test/absent:1");
    let h = registered("", &format!("gone:docker://{image}")).await;
    let output = doctor(&h).await;
    assert_failed(
        &output,
        "image:gone",
        &format!("{image} is not here and cannot be pulled from 127.0.0.1:{port}"),
        &format!("docker pull {image}"),
        &["job-network"],
    );
}

/// A name this machine resolves to its loopback through /etc/hosts, which a container's
/// resolver does not know (the hostname, on most machines).
fn name_only_this_machine_resolves() -> String {
    let hosts = std::fs::read_to_string("/etc/hosts").expect("/etc/hosts");
    hosts
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let ip: std::net::IpAddr = words.next()?.parse().ok()?;
            ip.is_loopback().then(|| words.map(str::to_owned).collect::<Vec<_>>())
        })
        .flatten()
        .find(|name| !name.starts_with("localhost") && !name.contains("ip6"))
        .expect("/etc/hosts names this machine's loopback other than localhost (add 127.0.0.1 forge.test)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forge_the_job_network_cannot_reach_fails_with_container_network_advice() {
    let h = registered("", DOCKER_LABEL).await;
    // The forge's address as a name only this machine knows: the runner reaches it, a job
    // container cannot even resolve it.
    let name = name_only_this_machine_resolves();
    let file = h.path(".runner");
    let text = std::fs::read_to_string(&file).unwrap();
    let url = h.forge.url();
    let renamed = url.replace("127.0.0.1", &name);
    std::fs::write(&file, text.replace(&url, &renamed)).unwrap();
    let output = doctor(&h).await;
    let (checks, _) = report(&output);
    assert_eq!(check(&checks, "forge")["status"], "pass", "{checks:#?}");
    assert_eq!(check(&checks, "token")["status"], "pass", "{checks:#?}");
    assert_failed(
        &output,
        "job-network",
        &format!("the forge at {renamed} cannot be reached from the job container"),
        "set container.network",
        &[],
    );
}

#[tokio::test]
async fn a_nearly_full_work_disk_fails_naming_host_workdir_parent() {
    let h = registered("", "linux:host").await;
    // A 16 MiB filesystem as the work folder: under the daemon's default guard, 1 GiB.
    let work = h.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&work)
        .status()
        .expect("mount runs");
    assert!(mounted.success(), "mounting a tmpfs needs root");
    let output = doctor(&h).await;
    // The daemon's own threshold, where the config sets one: 16 MiB is then enough.
    h.config("health_check:\n  min_free_disk_space_mb: 8\n");
    let guarded = doctor(&h).await;
    let unmounted = std::process::Command::new("umount").arg(&work).status();
    assert_failed(
        &output,
        "disk:work",
        "only 16 MiB free on the filesystem of the work folder",
        "set host.workdir_parent to a folder on a larger disk",
        &[],
    );
    let (checks, _) = report(&guarded);
    assert_eq!(check(&checks, "disk:work")["status"], "pass", "{checks:#?}");
    assert!(unmounted.expect("umount runs").success());
}

/// The test registry of `scripts/docker-test-env` (basic auth), holding the busybox image.
const PRIVATE_IMAGE: &str = "127.0.0.1:5999/private/busybox:1";

/// A private image is pullable with the configured credentials and not without, asked of the
/// registry without a pull (`force_pull` makes the registry count even where the image is
/// here, as a job's pull would).
#[tokio::test]
async fn a_private_image_is_pullable_only_with_the_configured_credentials() {
    let with_credentials = "container:\n  force_pull: true\n  registries:\n    \
         - host: 127.0.0.1:5999\n      username: hearth\n      password_env: HEARTH_TEST_REGISTRY_PASSWORD\n";
    let h = registered(
        with_credentials,
        &format!("private:docker://{PRIVATE_IMAGE}"),
    )
    .await;
    h.env("HEARTH_TEST_REGISTRY_PASSWORD", "hearth-registry-test");
    let (checks, _) = report(&doctor(&h).await);
    let image = check(&checks, "image:private");
    assert_eq!(image["status"], "pass", "{checks:#?}");
    let detail = image["detail"].as_str().unwrap();
    assert!(
        detail.contains("127.0.0.1:5999 has it with credentials from container.registries"),
        "{detail}"
    );

    h.config("container:\n  force_pull: true\n");
    let output = doctor(&h).await;
    assert_failed(
        &output,
        "image:private",
        &format!(
            "{PRIVATE_IMAGE} (pulled at every job: container.force_pull) cannot be pulled from \
             127.0.0.1:5999: "
        ),
        "add credentials for 127.0.0.1:5999 (container.registries",
        &[],
    );
}
