//! Making the runner's side reachable from a job container (the user pain point #1): the
//! forge's address as the runner reaches it may mean nothing inside a container.
//!
//! - A forge on the runner machine's loopback (`http://127.0.0.1:3000`, `localhost`): inside the
//!   container that is the container itself. The backend listens on the job network's gateway
//!   (an address of this machine the container can reach) and forwards each connection to the
//!   forge; the job gets the gateway's address instead, in `github.server_url`, `api_url` and
//!   the runner's variables (`JobRuntime::address`).
//! - A forge behind a name only this machine resolves (`/etc/hosts`, a private DNS the
//!   container's resolver does not see): the name is resolved here and given to the container
//!   as a host entry.
//! - A forge on a Docker network of the same daemon (a runner in a container beside the forge,
//!   given the daemon's socket: the forge is a service name on a user network): Docker keeps
//!   bridge networks apart, so the job container joins that network too.
//! - Anything else reaches the forge as the runner does.

use std::net::IpAddr;

use hearth_backend::BackendError;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A URL's parts: scheme, host, port, and the rest (path and query, with its leading `/`).
struct Url<'a> {
    scheme: &'a str,
    host: &'a str,
    port: u16,
    rest: &'a str,
}

fn split(url: &str) -> Option<Url<'_>> {
    let (scheme, after) = url.split_once("://")?;
    let (authority, rest) = match after.find('/') {
        Some(at) => (&after[..at], &after[at..]),
        None => (after, ""),
    };
    let default = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            match port.parse() {
                Ok(port) => (host, port),
                Err(_) => (authority, default),
            }
        }
        _ => (authority, default),
    };
    Some(Url {
        scheme,
        host: host.trim_start_matches('[').trim_end_matches(']'),
        port,
        rest,
    })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Host entries (`name:ip`) for the URLs whose names resolve here to an address that is not
/// this machine's loopback (the container's resolver may not know them).
pub(crate) async fn host_entries(urls: &[String]) -> Vec<String> {
    let mut entries = Vec::new();
    for url in urls {
        let Some(url) = split(url) else { continue };
        if url.host.parse::<IpAddr>().is_ok() || is_loopback(url.host) {
            continue;
        }
        if let Ok(mut addresses) = tokio::net::lookup_host((url.host, url.port)).await {
            if let Some(address) = addresses.find(|a| a.is_ipv4() && !a.ip().is_loopback()) {
                entries.push(format!("{}:{}", url.host, address.ip()));
            }
        }
    }
    entries
}

/// Checks, inside the job container, that `$1:$2` accepts a connection: with bash's
/// `/dev/tcp`, else `nc -z`, else busybox's `nc HOST PORT -e true` (its `nc` has no `-z`);
/// exits 125 when the image has neither bash nor nc.
const PROBE: &str = r#"if command -v bash >/dev/null 2>&1; then exec bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2"; fi
if command -v nc >/dev/null 2>&1; then nc -z -w 5 "$1" "$2" 2>/dev/null && exit 0; exec nc -w 5 "$1" "$2" -e true; fi
exit 125"#;

/// What the probe exits with when the image cannot tell.
pub(crate) const PROBE_CANNOT_TELL: i32 = 125;

/// The command that checks from inside a container that `url`'s host and port accept a
/// connection; `None` for a URL that is not `http(s)://`.
pub(crate) fn probe(url: &str) -> Option<Vec<String>> {
    let url = split(url)?;
    Some(vec![
        "sh".into(),
        "-c".into(),
        PROBE.into(),
        "probe".into(),
        url.host.to_owned(),
        url.port.to_string(),
    ])
}

/// The addresses (IPv4, not loopback) the URLs' hosts have here.
async fn addresses(urls: &[String]) -> Vec<std::net::Ipv4Addr> {
    let mut found = Vec::new();
    for url in urls {
        let Some(url) = split(url) else { continue };
        if is_loopback(url.host) {
            continue;
        }
        let Ok(resolved) = tokio::net::lookup_host((url.host, url.port)).await else {
            continue;
        };
        for address in resolved {
            if let IpAddr::V4(ip) = address.ip() {
                if !ip.is_loopback() && !found.contains(&ip) {
                    found.push(ip);
                }
            }
        }
    }
    found
}

/// Whether `ip` is in `cidr` (`172.18.0.0/16`).
fn in_subnet(ip: std::net::Ipv4Addr, cidr: &str) -> bool {
    let Some((base, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(base), Ok(bits)) = (base.parse::<std::net::Ipv4Addr>(), bits.parse::<u32>()) else {
        return false;
    };
    if bits > 32 {
        return false;
    }
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(base) & mask
}

/// The daemon's user networks (not `bridge`, `host`, `none`, nor `except`) whose subnets hold
/// an address of the URLs' hosts: the networks the forge is on.
pub(crate) async fn forge_networks(
    docker: &bollard::Docker,
    urls: &[String],
    except: &str,
) -> Vec<String> {
    let wanted = addresses(urls).await;
    if wanted.is_empty() {
        return Vec::new();
    }
    let Ok(networks) = docker
        .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
        .await
    else {
        return Vec::new();
    };
    networks
        .into_iter()
        .filter_map(|network| {
            let name = network.name?;
            if matches!(name.as_str(), "bridge" | "host" | "none") || name == except {
                return None;
            }
            let subnets = network
                .ipam
                .and_then(|ipam| ipam.config)
                .unwrap_or_default();
            subnets
                .iter()
                .filter_map(|config| config.subnet.as_deref())
                .any(|subnet| wanted.iter().any(|ip| in_subnet(*ip, subnet)))
                .then_some(name)
        })
        .collect()
}

/// A forwarder from the job network's gateway to a loopback address of this machine.
pub(crate) struct Forwarder {
    /// The URL as the runner has it, and as the job reaches it.
    pub from: String,
    pub to: String,
    task: JoinHandle<()>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwarders for the loopback URLs, listening on `gateway` (an address of this machine on
/// the job's network).
pub(crate) async fn forward(
    urls: &[String],
    gateway: IpAddr,
) -> Result<Vec<Forwarder>, BackendError> {
    let mut forwarders = Vec::new();
    for original in urls {
        let Some(url) = split(original) else { continue };
        if !is_loopback(url.host) {
            continue;
        }
        let listener = TcpListener::bind((gateway, 0)).await.map_err(|e| {
            BackendError::Unsupported(format!(
                "the forge at {original} is on this machine's loopback, which a job container \
                 cannot reach, and forwarding to it from the job network's gateway {gateway} \
                 failed: {e}; register the runner with an address containers can reach"
            ))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| BackendError::Unsupported(format!("forwarding to {original}: {e}")))?
            .port();
        let target = (url.host.to_owned(), url.port);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        TcpStream::connect((target.0.as_str(), target.1)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        let host = match gateway {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        forwarders.push(Forwarder {
            from: original.clone(),
            to: format!("{}://{host}:{port}{}", url.scheme, url.rest),
            task,
        });
    }
    Ok(forwarders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_with_their_default_ports() {
        let url = split("http://127.0.0.1:3000/gitea").unwrap();
        assert_eq!(
            (url.scheme, url.host, url.port, url.rest),
            ("http", "127.0.0.1", 3000, "/gitea")
        );
        let url = split("https://git.example.com").unwrap();
        assert_eq!((url.host, url.port, url.rest), ("git.example.com", 443, ""));
        let url = split("http://[::1]:8080/").unwrap();
        assert_eq!((url.host, url.port), ("::1", 8080));
        assert!(is_loopback("localhost") && is_loopback("127.0.0.5") && is_loopback("::1"));
        assert!(!is_loopback("10.0.0.1"));
        let ip = |text: &str| text.parse::<std::net::Ipv4Addr>().unwrap();
        assert!(in_subnet(ip("172.18.0.2"), "172.18.0.0/16"));
        assert!(!in_subnet(ip("172.19.0.2"), "172.18.0.0/16"));
        assert!(in_subnet(ip("10.1.2.3"), "0.0.0.0/0"));
        assert!(!in_subnet(ip("10.1.2.3"), "10.1.2.0/33") && !in_subnet(ip("10.1.2.3"), "x"));
        assert!(split("ftp://x").is_none());
    }
}
