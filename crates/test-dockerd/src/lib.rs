//! Test support: a second `dockerd` on 127.0.0.1, reached over TCP with TLS as
//! `DOCKER_HOST=tcp://…`, `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` would reach it. Its
//! certificates (a CA, a server certificate for 127.0.0.1, a client certificate) are made
//! here. It leaves iptables alone and has a default bridge of its own, made for it and
//! deleted after it, so it does not disturb the machine's own daemon: started with
//! `--bridge none` (or with the default), a second daemon deletes `docker0`, the first one's,
//! and `docker run` without `--network` then fails until that daemon restarts.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};

/// The second daemon, stopped (and its bridge and folders removed) when dropped.
pub struct TlsDockerd {
    child: Child,
    bridge: String,
    dir: tempfile::TempDir,
    /// `tcp://127.0.0.1:PORT`.
    pub address: String,
    /// The client's `ca.pem`, `cert.pem` and `key.pem` (`DOCKER_CERT_PATH`).
    pub client_certs: PathBuf,
}

impl TlsDockerd {
    /// Starts the daemon (it answers some seconds later: clients wait for it). Panics, saying
    /// so, where `dockerd` is not installed (`scripts/docker-test-env` installs it).
    pub fn start() -> TlsDockerd {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (client, server, data) = (
            dir.path().join("client"),
            dir.path().join("server"),
            dir.path().join("d"),
        );
        for folder in [&client, &server, &data] {
            std::fs::create_dir_all(folder).expect("a folder");
        }
        certificates(&client, &server);
        let address = format!("tcp://127.0.0.1:{}", free_port());
        let bridge = make_bridge();
        let child = spawn(dir.path(), &address, &bridge);
        TlsDockerd {
            child,
            bridge,
            dir,
            address,
            client_certs: client,
        }
    }

    /// Stops the daemon as a service manager restarts it (SIGTERM: its containers are
    /// stopped), waits for it to exit, and starts it again on the same address, folders and
    /// certificates. Like [`start`](Self::start), it answers some seconds later.
    pub fn restart(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.child = spawn(self.dir.path(), &self.address, &self.bridge);
    }

    /// What the daemon logged so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// The Docker CLI, speaking to this daemon.
    pub fn cli(&self) -> Command {
        let mut command = Command::new("docker");
        command
            .args(["--tlsverify", "-H", &self.address])
            .env("DOCKER_CERT_PATH", &self.client_certs)
            .env_remove("DOCKER_HOST");
        command
    }

    /// Copies `image` from the machine's own daemon into this one.
    pub fn load(&self, image: &str) {
        let saved = Command::new("docker")
            .args(["save", image])
            .output()
            .expect("docker save");
        assert!(
            saved.status.success(),
            "{image} is missing: run scripts/docker-test-env first"
        );
        let mut load = self
            .cli()
            .arg("load")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("docker load");
        {
            use std::io::Write as _;
            let mut stdin = load.stdin.take().expect("stdin");
            stdin.write_all(&saved.stdout).expect("the image written");
        }
        assert!(load.wait().expect("docker load").success());
    }
}

impl Drop for TlsDockerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .status();
    }
}

/// Starts `dockerd` over the folders in `dir`, logging to `dir/dockerd.log`.
fn spawn(dir: &Path, address: &str, bridge: &str) -> Child {
    let (server, data) = (dir.join("server"), dir.join("d"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("dockerd.log"))
        .expect("a log file");
    Command::new("dockerd")
        .args([
            "--tlsverify",
            "-H",
            address,
            "--bridge",
            bridge,
            "--iptables=false",
            // A job container's `tail -f /dev/null` ignores SIGTERM: a restart need not
            // wait Docker's 15 s for it.
            "--shutdown-timeout",
            "2",
        ])
        .arg("--tlscacert")
        .arg(server.join("ca.pem"))
        .arg("--tlscert")
        .arg(server.join("cert.pem"))
        .arg("--tlskey")
        .arg(server.join("key.pem"))
        .arg("--data-root")
        .arg(data.join("data"))
        .arg("--exec-root")
        .arg(data.join("exec"))
        .arg("--pidfile")
        .arg(data.join("pid"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("a log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs dockerd (scripts/docker-test-env): {e}"))
}

/// A bridge for one second daemon, named after this process and a counter (interface names
/// have at most 15 characters).
fn make_bridge() -> String {
    static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let count = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("hth{}x{count}", std::process::id() % 1_000_000);
    let made = Command::new("ip")
        .args(["link", "add", &name, "type", "bridge"])
        .status()
        .unwrap_or_else(|e| panic!("the second dockerd needs `ip` (iproute2): {e}"));
    assert!(made.success(), "cannot make the bridge {name}");
    name
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("written");
}

/// `ca.pem`, `cert.pem`, `key.pem` (the client's) in `client`; the server's in `server`.
fn certificates(client: &Path, server: &Path) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("key");
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server");

    let client_key = KeyPair::generate().expect("key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params
        .signed_by(&client_key, &issuer)
        .expect("client");

    for dir in [client, server] {
        write(dir, "ca.pem", &ca.pem());
    }
    write(server, "cert.pem", &server_cert.pem());
    write(server, "key.pem", &server_key.serialize_pem());
    write(client, "cert.pem", &client_cert.pem());
    write(client, "key.pem", &client_key.serialize_pem());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
