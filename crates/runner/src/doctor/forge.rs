//! The forge from this machine: its name, a connection, TLS and `Ping`; the runner's token
//! (`Declare`, as the daemon sends it); the clock against the forge's `Date`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hearth_forge::{Client, ClientOptions, Credentials};

use super::Check;
use crate::config::RunnerConfig;
use crate::runner_file::Registration;

/// How long a name lookup or a connection may take before the forge counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Clocks further apart than this get a warning: the forge's JWTs (`ACTIONS_RUNTIME_TOKEN`)
/// and signed URLs carry times checked against the clocks of both sides.
pub const MAX_SKEW: Duration = Duration::from_secs(30);

/// The forge as the daemon reaches it, when it answered `Ping`.
pub struct Reached {
    pub client: Client,
    /// The forge's clock, from its answer's `Date`, and this machine's when it came.
    pub clocks: Option<(SystemTime, SystemTime)>,
}

/// The host and port of an `http(s)://` address.
fn host_and_port(address: &str) -> Option<(String, u16)> {
    let (scheme, rest) = address.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let default = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None => default,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default)),
    }
}

/// Whether a proxy variable is set: the client then goes through the proxy, and a direct
/// lookup or connection says nothing of what the daemon does.
fn proxied() -> bool {
    ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"]
        .iter()
        .flat_map(|name| [name.to_string(), name.to_lowercase()])
        .any(|name| std::env::var(name).is_ok_and(|v| !v.is_empty()))
}

/// The advice when the forge cannot be reached at `address` as `.runner` gives it.
fn unreachable_advice(address: &str, file: &Path) -> String {
    format!(
        "start the forge, or fix its address: `address` in {} is {address}; to change it, \
         register again (hearth register --instance URL --token TOKEN)",
        file.display()
    )
}

/// The check `forge`: the name, a connection (not through a proxy), then `Ping` over the
/// client the daemon uses (`runner.insecure`, `runner.ca_file`, TLS).
pub async fn reach(
    registration: &Registration,
    file: &Path,
    runner: &RunnerConfig,
    version: &str,
) -> (Check, Option<Reached>) {
    const NAME: &str = "forge";
    let address = registration.address.trim_end_matches('/').to_owned();
    let Some((host, port)) = host_and_port(&address) else {
        return (
            Check::fail(
                NAME,
                format!("the forge address {address:?} is not an http:// or https:// URL"),
                format!(
                    "register again with the forge's URL (hearth register --instance \
                     https://...); {} holds the address",
                    file.display()
                ),
            ),
            None,
        );
    };
    let mut how = Vec::new();
    if proxied() {
        how.push("through the proxy the environment names".to_owned());
    } else {
        let found = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await;
        let addresses: Vec<SocketAddr> = match found {
            Ok(Ok(found)) => found.collect(),
            Ok(Err(e)) => {
                return (
                    Check::fail(
                        NAME,
                        format!("cannot resolve the forge's name {host}: {e}"),
                        format!(
                            "check this machine's DNS, or the address in {} ({address})",
                            file.display()
                        ),
                    ),
                    None,
                )
            }
            Err(_) => {
                return (
                    Check::fail(
                        NAME,
                        format!(
                        "no answer resolving the forge's name {host} within {CONNECT_TIMEOUT:?}"
                    ),
                        "check this machine's DNS (/etc/resolv.conf)",
                    ),
                    None,
                )
            }
        };
        let mut refused = Vec::new();
        let mut connected = None;
        for at in &addresses {
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(at)).await {
                Ok(Ok(_)) => {
                    connected = Some(*at);
                    break;
                }
                Ok(Err(e)) => refused.push(format!("{at}: {e}")),
                Err(_) => refused.push(format!("{at}: no answer within {CONNECT_TIMEOUT:?}")),
            }
        }
        match connected {
            Some(at) => how.push(format!("connected to {at}")),
            None => {
                return (
                    Check::fail(
                        NAME,
                        format!("nothing answers at {host}:{port} ({})", refused.join("; ")),
                        unreachable_advice(&address, file),
                    ),
                    None,
                )
            }
        }
    }
    let client = match Client::new(&ClientOptions {
        address: address.clone(),
        insecure: runner.insecure,
        ca_file: runner.ca_file.clone(),
        request_timeout: runner.request_timeout.min(Duration::from_secs(30)),
        version: version.to_owned(),
    }) {
        Ok(client) => client,
        Err(e) => {
            return (
                Check::fail(
                    NAME,
                    e.to_string(),
                    "set runner.ca_file to a readable PEM file of the CA that signed the \
                     forge's certificate",
                ),
                None,
            )
        }
    };
    match client.ping_dated("hearth doctor").await {
        Ok((_, date)) => {
            let now = SystemTime::now();
            if address.starts_with("https://") {
                how.push(if runner.insecure {
                    "TLS without certificate checks (runner.insecure)".to_owned()
                } else {
                    "TLS certificate verified".to_owned()
                });
            }
            let check = Check::pass(NAME, format!("{address} answers Ping ({})", how.join(", ")));
            let clocks = date.map(|date| (date, now));
            (check, Some(Reached { client, clocks }))
        }
        Err(e) => {
            // The forge crate names the settings that fix a refused certificate.
            let certificate = e.message.contains("runner.ca_file");
            let advice = if certificate {
                "set runner.ca_file to the CA certificate that signed the forge's (PEM), or \
                 runner.insecure: true to skip the checks"
                    .to_owned()
            } else if e.http_status.is_some() {
                format!(
                    "{address} answers, but not as a forge: check that it is the forge's root \
                     URL (ROOT_URL), and any proxy in front of it"
                )
            } else {
                unreachable_advice(&address, file)
            };
            (
                Check::fail(NAME, format!("Ping to {address} failed: {e}"), advice),
                None,
            )
        }
    }
}

/// The check `token`: the daemon's own `Declare`, its labels and version (so nothing changes
/// on the forge).
pub async fn token(
    reached: &Reached,
    registration: &Registration,
    file: &Path,
    label_names: &[String],
    version: &str,
) -> Check {
    const NAME: &str = "token";
    let client = reached.client.clone().with_credentials(Credentials {
        uuid: registration.uuid.clone(),
        token: registration.token.clone(),
    });
    let request = crate::daemon::declare_request(label_names, version);
    match client.declare(&request).await {
        Ok(_) => Check::pass(
            NAME,
            format!(
                "the forge knows runner {} ({}) and took its labels {}",
                registration.name,
                registration.uuid,
                label_names.join(", ")
            ),
        ),
        Err(e) if e.is_unimplemented() => Check::warn(
            NAME,
            "the forge is too old for Declare: the token is not checked until the first fetch",
            "upgrade the forge to check the token here; the daemon works without Declare",
        ),
        Err(e) if e.is_unregistered() => Check::fail(
            NAME,
            format!(
                "the forge does not know runner {} with the token in {} ({e})",
                registration.uuid,
                file.display()
            ),
            format!(
                "register again: hearth register --instance {} --token TOKEN (a registration \
                 token from the forge's runner settings)",
                registration.address.trim_end_matches('/')
            ),
        ),
        Err(e) => Check::fail(
            NAME,
            format!("Declare failed: {e}"),
            "look at the forge's log for why it refused the runner's declaration",
        ),
    }
}

/// The check `clock`: this machine's clock against the forge's.
pub fn clock(clocks: (SystemTime, SystemTime)) -> Check {
    const NAME: &str = "clock";
    let (forge, here) = clocks;
    let (skew, side) = match here.duration_since(forge) {
        Ok(ahead) => (ahead, "ahead of"),
        Err(behind) => (behind.duration(), "behind"),
    };
    // The forge's Date has whole seconds.
    let seconds = skew.as_secs();
    if skew > MAX_SKEW {
        Check::warn(
            NAME,
            format!(
                "this machine's clock is {seconds} s {side} the forge's (more than {} s): \
                 tokens and signed URLs may be refused",
                MAX_SKEW.as_secs()
            ),
            "synchronise the clocks of both machines with NTP (timedatectl set-ntp true, chrony)",
        )
    } else {
        Check::pass(NAME, format!("within {seconds} s of the forge's"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_give_their_host_and_port() {
        let cases = [
            ("http://127.0.0.1:3000", Some(("127.0.0.1", 3000))),
            (
                "https://git.example.com/gitea",
                Some(("git.example.com", 443)),
            ),
            ("http://forge", Some(("forge", 80))),
            ("http://[::1]:8080/", Some(("::1", 8080))),
            ("https://[::1]", Some(("::1", 443))),
            ("git.example.com", None),
            ("ftp://x", None),
            ("http://x:port", None),
        ];
        for (address, expected) in cases {
            let got = host_and_port(address);
            let expected = expected.map(|(h, p)| (h.to_owned(), p));
            assert_eq!(got, expected, "{address}");
        }
    }

    #[test]
    fn a_clock_off_by_more_than_the_limit_is_a_warning_either_way() {
        let forge = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let near = clock((forge, forge + Duration::from_secs(3)));
        assert!(near.passed(), "{near:?}");
        assert!(near.detail.contains("within 3 s"), "{near:?}");
        let ahead = clock((forge, forge + Duration::from_secs(95)));
        assert_eq!(ahead.status, super::super::Status::Warn);
        assert!(ahead.detail.contains("95 s ahead of"), "{ahead:?}");
        let behind = clock((forge, forge - Duration::from_secs(31)));
        assert!(behind.detail.contains("31 s behind"), "{behind:?}");
        assert!(behind.advice.unwrap().contains("NTP"));
    }
}
