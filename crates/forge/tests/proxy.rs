//! `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`, as the reference runners honour them (spec
//! §1.7), through a real forwarding proxy.
//!
//! The variables are process-wide, so this binary holds a single test, on a current-thread
//! runtime: no other thread reads the environment while it changes. reqwest reads the
//! variables when a client is built, so each phase builds its own client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_fake_forge::{FakeForge, HttpVersion, Options, Tls};
use hearth_forge::proto::runner::RegisterRequest;
use hearth_forge::{Client, ClientOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every variable that could route the client elsewhere (hyper-util reads both spellings).
const PROXY_VARIABLES: [&str; 9] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    // In a CGI environment HTTP_PROXY is ignored (it could come from a request header).
    "REQUEST_METHOD",
];

/// The longest request head the proxy reads.
const MAX_HEAD_BYTES: usize = 64 * 1024;

#[test]
fn proxy_variables_route_the_client_through_the_proxy_unless_no_proxy_covers_the_forge() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for name in PROXY_VARIABLES {
            std::env::remove_var(name);
        }
        let proxy = Proxy::start().await;
        let https_forge = FakeForge::start(
            Options::gitea()
                .with_registration_token("reg")
                .with_tls(Tls::SelfSigned),
        )
        .await
        .expect("https forge");
        let http_forge = FakeForge::start(Options::gitea().with_registration_token("reg"))
            .await
            .expect("http forge");

        // https:// through HTTPS_PROXY: a CONNECT tunnel, TLS (and ALPN) end to end.
        std::env::set_var("HTTPS_PROXY", proxy.url());
        register(&https_forge).await;
        assert_eq!(
            proxy.requests(),
            [format!("CONNECT {}", https_forge.addr())],
            "the https client did not tunnel through the proxy"
        );
        assert!(https_forge
            .requests()
            .iter()
            .all(|r| r.http_version == HttpVersion::Http2));

        // http:// through HTTP_PROXY: requests in absolute form.
        std::env::set_var("HTTP_PROXY", proxy.url());
        register(&http_forge).await;
        let ping = format!(
            "POST {}/api/actions/ping.v1.PingService/Ping",
            http_forge.url()
        );
        assert!(
            proxy.requests().contains(&ping),
            "the http client did not go through the proxy: {:?}",
            proxy.requests()
        );

        // NO_PROXY naming the forge's address: straight there, for both schemes.
        std::env::set_var("NO_PROXY", "localhost,127.0.0.1");
        let seen = proxy.requests().len();
        register(&https_forge).await;
        register(&http_forge).await;
        assert_eq!(
            proxy.requests().len(),
            seen,
            "NO_PROXY was ignored: {:?}",
            proxy.requests()
        );

        for name in PROXY_VARIABLES {
            std::env::remove_var(name);
        }
    });
}

/// Builds a client (which reads the proxy variables now), pings and registers.
async fn register(forge: &FakeForge) {
    let pem_dir = tempfile::tempdir().expect("tempdir");
    let ca_file = forge.certificate_pem().map(|pem| {
        let path = pem_dir.path().join("ca.pem");
        std::fs::write(&path, pem).expect("CA file");
        path
    });
    let client = Client::new(&ClientOptions {
        address: forge.url(),
        insecure: false,
        ca_file,
        request_timeout: Duration::from_secs(10),
        version: "test".into(),
    })
    .expect("client");
    client.ping("x").await.expect("ping");
    client
        .register(&RegisterRequest {
            name: "r".into(),
            token: "reg".into(),
            ..Default::default()
        })
        .await
        .expect("register");
}

/// A forwarding HTTP proxy on 127.0.0.1 that knows just enough: `CONNECT host:port` tunnels,
/// and absolute-form requests (`POST http://host:port/path`) forwarded in origin form. It
/// records the first request line of each connection.
struct Proxy {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        // Ends with the runtime, at the end of the test.
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(proxy_connection(client, log.clone()));
            }
        });
        Proxy { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `CONNECT host:port` or `METHOD absolute-url`, one per connection, in order.
    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn proxy_connection(mut client: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let Some((head, rest)) = read_head(&mut client).await else {
        return;
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    seen.lock().unwrap().push(format!("{method} {target}"));

    let mut upstream;
    if method == "CONNECT" {
        upstream = match TcpStream::connect(target).await {
            Ok(stream) => stream,
            Err(_) => {
                let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                return;
            }
        };
        if client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    } else {
        // http://host:port/path → connect to host:port, send `METHOD /path`.
        let Some(without_scheme) = target.strip_prefix("http://") else {
            let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            return;
        };
        let (authority, path) = match without_scheme.find('/') {
            Some(slash) => without_scheme.split_at(slash),
            None => (without_scheme, "/"),
        };
        upstream = match TcpStream::connect(authority).await {
            Ok(stream) => stream,
            Err(_) => {
                let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                return;
            }
        };
        let headers: Vec<&str> = lines
            .filter(|line| !line.to_ascii_lowercase().starts_with("proxy-"))
            .collect();
        let forwarded = format!("{method} {path} {version}\r\n{}", headers.join("\r\n"));
        if upstream.write_all(forwarded.as_bytes()).await.is_err() {
            return;
        }
    }
    // Whatever the client sent past the head, then both directions until either side closes.
    // (Later requests on a kept-alive http connection pass through unrecorded, in absolute
    // form, which the forge accepts.)
    if upstream.write_all(&rest).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// The request head up to and including the blank line, and any bytes read past it.
async fn read_head(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Some((String::from_utf8(buffer).ok()?, rest));
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return None;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}
