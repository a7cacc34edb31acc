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

use std::net::{IpAddr, SocketAddr};

use futures_util::future::join_all;
use futures_util::StreamExt as _;
use hearth_backend::{BackendError, Reach};
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

/// Checks, inside the job container, that each `HOST PORT URL` triple of its arguments accepts
/// a connection, all side by side, with what the image has: bash's `/dev/tcp`, `nc` (busybox's
/// has no `-z`: `nc HOST PORT -e true`), `curl`, `wget` (an HTTP error is an answer), `perl`,
/// `python3` or `node`. Says one line per triple, `INDEX STATUS WHY`: 0 reached, 125 the image
/// cannot tell, anything else not reached (and why, as the tool said it).
const PROBE: &str = r#"set -f
have() { command -v "$1" >/dev/null 2>&1; }
reach() {
if have bash; then
  if have timeout; then timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' bash "$1" "$2"; return; fi
  bash -c 'exec 3<>"/dev/tcp/$1/$2"' bash "$1" "$2"; return
fi
if have nc; then nc -z -w 5 "$1" "$2" 2>/dev/null && return 0; nc -w 5 "$1" "$2" -e true; return; fi
if have curl; then curl -sSk -o /dev/null -m 5 "$3"; case $? in 6|7|28) return 1;; esac; return 0; fi
if have wget; then
  case $3 in http://*) ;; *) return 125;; esac
  said=$(wget -T 5 -O /dev/null "$3" 2>&1); code=$?
  if [ $code = 0 ] || [ $code = 8 ]; then return 0; fi
  case $said in *HTTP/*) return 0;; esac
  echo "$said"; return 1
fi
if have perl; then perl -MIO::Socket::INET -e 'IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => $ARGV[1], Timeout => 5) or die "$@\n"' "$1" "$2"; return; fi
if have python3; then python3 -c 'import socket, sys
try: socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)
except OSError as e: sys.exit(str(e))' "$1" "$2"; return; fi
if have node; then node -e 'require("net").connect({ host: process.argv[1], port: Number(process.argv[2]), timeout: 5000 }).on("connect", () => process.exit(0)).on("timeout", () => { console.log("no answer within 5 s"); process.exit(1); }).on("error", (e) => { console.log(e.message); process.exit(1); })' "$1" "$2"; return; fi
return 125
}
i=0
while [ $# -ge 3 ]; do
  (said=$(reach "$1" "$2" "$3" 2>&1 </dev/null); code=$?; echo "$i $code" $said) &
  i=$((i + 1)); shift 3
done
wait"#;

/// The same in JavaScript, for the node the runner lends an image that has none of the above:
/// its arguments are the same triples.
const NODE_PROBE: &str = r#"const net = require("net");
const args = process.argv.slice(1);
for (let i = 0; 3 * i + 2 < args.length; i++) {
  const socket = net.connect({ host: args[3 * i], port: Number(args[3 * i + 1]), timeout: 5000 });
  socket.on("connect", () => { console.log(`${i} 0`); socket.destroy(); });
  socket.on("timeout", () => { console.log(`${i} 1 no answer within 5 s`); socket.destroy(); });
  socket.on("error", (e) => console.log(`${i} 1 ${e.message}`));
}"#;

/// Where a job container is to connect: the host and port of a URL as the job sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    pub url: String,
}

/// The target of `url` (as the job sees it); `None` for a URL that is not `http(s)://`.
pub(crate) fn target(url: &str) -> Option<Target> {
    let parts = split(url)?;
    Some(Target {
        host: parts.host.to_owned(),
        port: parts.port,
        url: url.to_owned(),
    })
}

fn triples(targets: &[Target]) -> impl Iterator<Item = String> + '_ {
    targets
        .iter()
        .flat_map(|t| [t.host.clone(), t.port.to_string(), t.url.clone()])
}

/// The command that checks `targets` from inside a container with a POSIX shell.
pub(crate) fn probe(targets: &[Target]) -> Vec<String> {
    ["sh", "-c", PROBE, "probe"]
        .into_iter()
        .map(str::to_owned)
        .chain(triples(targets))
        .collect()
}

/// The arguments after a `node` command line that check `targets`.
pub(crate) fn node_probe(targets: &[Target]) -> Vec<String> {
    ["-e", NODE_PROBE]
        .into_iter()
        .map(str::to_owned)
        .chain(triples(targets))
        .collect()
}

/// What the probe found for one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Reached,
    /// Not reached, and why (as the tool said it; may be empty).
    Failed(String),
    /// The image has nothing to connect with.
    CannotTell,
}

/// The longest reason kept from what a tool said.
const WHY_LIMIT: usize = 200;

/// The answers in the probe's output for `count` targets; `None` for a target it said nothing
/// of (it ran out of time).
pub(crate) fn answers(said: &str, count: usize) -> Vec<Option<Answer>> {
    let mut found = vec![None; count];
    for line in said.lines() {
        let mut words = line.trim_end().splitn(3, ' ');
        let (Some(index), Some(status)) = (words.next(), words.next()) else {
            continue;
        };
        let (Ok(index), Ok(status)) = (index.parse::<usize>(), status.parse::<i32>()) else {
            continue;
        };
        let Some(slot) = found.get_mut(index) else {
            continue;
        };
        let why: String = words
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .take(WHY_LIMIT)
            .collect();
        *slot = Some(match status {
            0 => Answer::Reached,
            PROBE_CANNOT_TELL => Answer::CannotTell,
            _ => Answer::Failed(why),
        });
    }
    found
}

/// What the probe says for a target when the image cannot tell.
pub(crate) const PROBE_CANNOT_TELL: i32 = 125;

/// Whether `url` (the runner's side, on this machine's loopback) answers here: a forwarder
/// accepts the job's connections whether or not anything listens behind it, so a check from
/// inside the container alone would take a dead target for a live one.
pub(crate) async fn answers_here(url: &str) -> Result<(), String> {
    let Some(url) = split(url) else {
        return Ok(());
    };
    let connect = TcpStream::connect((url.host, url.port));
    match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 5 s".to_owned()),
    }
}

/// How long the check from inside the job container may take.
const REACH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One thing the job must reach: what the runner gave, and the URL the job is given for it.
pub(crate) struct Check {
    pub reach: Reach,
    pub seen: String,
}

/// The job container, as the check needs it.
#[derive(Clone, Copy)]
pub(crate) struct Container<'a> {
    pub id: &'a str,
    /// Its main process on the daemon's machine, when the daemon said.
    pub pid: Option<i64>,
    pub network: &'a str,
    /// Its host entries (`name:ip`, from [`host_entries`]): a name there resolves to that
    /// address in the container, whatever its resolver says.
    pub hosts: &'a [String],
}

/// The address `host` has in a container with the host entries `hosts`: itself when it is an
/// address, the entry's when it has one; `None` for a name only the container's resolver
/// knows.
fn address_in(host: &str, hosts: &[String]) -> Option<IpAddr> {
    if let Ok(ip) = host.parse() {
        return Some(ip);
    }
    hosts.iter().find_map(|entry| {
        let (name, ip) = entry.split_once(':')?;
        name.eq_ignore_ascii_case(host).then(|| ip.parse().ok())?
    })
}

/// Checks, before the first step, that each of `checks` answers from inside the job container
/// at the address the job is given. Addresses (and names the container's host entries hold)
/// are connected to from a thread of the runner's that enters the container's network
/// namespace, when it can (the daemon on this machine, the runner allowed to: root): no
/// process in the container at all. What is left (names, which only the container's resolver
/// may resolve; a runner that cannot enter) is one exec of [`PROBE`] (not a step's: no pid file, no shell around it; its lines say
/// all), then, for targets the image cannot tell, one of the node the runner lends
/// (`lent_node`, its command line), when it lends one. An address forwarded from the
/// network's gateway is also connected to here, behind the forwarder. Returns the warnings
/// for the optional ones that do not answer; one that is not optional and does not answer is
/// [`BackendError::Unreachable`], saying what to change.
pub(crate) async fn check(
    docker: &bollard::Docker,
    container: Container<'_>,
    checks: &[Check],
    lent_node: Option<Vec<String>>,
) -> Result<Vec<String>, BackendError> {
    let started = std::time::Instant::now();
    let network = container.network;
    let checked: Vec<(&Check, Target)> = checks
        .iter()
        .filter_map(|c| Some((c, target(&c.seen)?)))
        .collect();
    if checked.is_empty() {
        return Ok(Vec::new());
    }
    let targets: Vec<Target> = checked.iter().map(|(_, t)| t.clone()).collect();
    let behind_forwarders = join_all(checked.iter().map(|(c, _)| async move {
        if c.seen == c.reach.url {
            Ok(())
        } else {
            answers_here(&c.reach.url).await
        }
    }));
    let inside = async {
        let mut found: Vec<Option<Answer>> = vec![Some(Answer::CannotTell); targets.len()];
        if let Some(pid) = container.pid {
            let addresses: Vec<(usize, SocketAddr)> = targets
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    let ip = address_in(&t.host, container.hosts)?;
                    Some((i, SocketAddr::new(ip, t.port)))
                })
                .collect();
            if !addresses.is_empty() {
                if let Some(answered) = in_namespace(pid, container.id.to_owned(), addresses).await
                {
                    for (i, answer) in answered {
                        found[i] = Some(answer);
                    }
                }
            }
        }
        // The rest from inside the container: the image's tools, then the lent node.
        for lent in [None, lent_node] {
            let left: Vec<usize> = (0..found.len())
                .filter(|&i| found[i] == Some(Answer::CannotTell))
                .collect();
            if left.is_empty() {
                break;
            }
            let again: Vec<Target> = left.iter().map(|&i| targets[i].clone()).collect();
            let argv = match lent {
                None => probe(&again),
                Some(mut argv) => {
                    argv.extend(node_probe(&again));
                    argv
                }
            };
            let answered = answers(&said(docker, container.id, argv).await?, again.len());
            for (i, answer) in left.into_iter().zip(answered) {
                found[i] = answer;
            }
        }
        Ok::<_, BackendError>(found)
    };
    let (here, inside) = tokio::join!(behind_forwarders, inside);
    let mut warnings = Vec::new();
    for (((check, _), here), inside) in checked.iter().zip(here).zip(inside?) {
        let (reach, seen) = (&check.reach, &check.seen);
        let why = match (inside, here) {
            (Some(Answer::Failed(why)), _) if why.is_empty() => "the connection failed".to_owned(),
            (Some(Answer::Failed(why)), _) => why,
            (None, _) => format!("no answer within {} s", REACH_TIMEOUT.as_secs()),
            (_, Err(why)) => format!(
                "nothing answers at {} on the runner's machine: {why}",
                reach.url
            ),
            (Some(Answer::Reached), Ok(())) => {
                tracing::debug!(address = %seen, "{} answers from the job container", reach.what);
                continue;
            }
            (Some(Answer::CannotTell), Ok(())) => {
                tracing::debug!(
                    address = %seen,
                    "the job image has nothing to connect with: {} is not checked",
                    reach.what
                );
                continue;
            }
        };
        let via = if *seen == reach.url {
            String::new()
        } else {
            format!(" (forwarded to {}, as the runner reaches it)", reach.url)
        };
        let message = format!(
            "{} at {seen}{via} cannot be reached from the job container on the network \
             {network}: {why}; {}",
            reach.what, reach.fix
        );
        if !reach.optional {
            return Err(BackendError::Unreachable(message));
        }
        warnings.push(format!(
            "{}. The job runs without it.",
            capitalised(&message)
        ));
    }
    tracing::debug!(elapsed = ?started.elapsed(), "checked what the job must reach");
    Ok(warnings)
}

/// Connects to `addresses` from inside the network namespace of the process `pid`, on a
/// thread of its own that ends after (a thread of a pool would stay in the container's
/// namespace for whatever it runs next), when the process is the container's (its cgroup
/// names the container's id: a daemon elsewhere, or in another PID namespace, has its
/// containers' pids mean nothing here) and the runner may enter its namespace. `None` when it
/// cannot.
async fn in_namespace(
    pid: i64,
    container: String,
    addresses: Vec<(usize, SocketAddr)>,
) -> Option<Vec<(usize, Answer)>> {
    let (send, receive) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("hearth-reach".to_owned())
        .spawn(move || {
            let _ = send.send(connect_in_namespace(pid, &container, &addresses));
        })
        .ok()?;
    receive.await.ok()?
}

/// How long a connection from inside the namespace may take to be accepted.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

fn connect_in_namespace(
    pid: i64,
    container: &str,
    addresses: &[(usize, SocketAddr)],
) -> Option<Vec<(usize, Answer)>> {
    use std::os::fd::AsRawFd as _;
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    if container.len() < 12 || !cgroup.contains(container) {
        return None;
    }
    let namespace = std::fs::File::open(format!("/proc/{pid}/ns/net")).ok()?;
    // SAFETY: `setns` takes a file descriptor, valid while `namespace` lives, and changes only
    // the network namespace of this thread, which is the probe's own and ends after it.
    if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return None;
    }
    Some(
        addresses
            .iter()
            .map(|(i, address)| {
                let answer = match std::net::TcpStream::connect_timeout(address, CONNECT_TIMEOUT) {
                    Ok(_) => Answer::Reached,
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        Answer::Failed(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))
                    }
                    Err(e) => Answer::Failed(e.to_string()),
                };
                (*i, answer)
            })
            .collect(),
    )
}

/// What `argv`, run in `container`, says on its standard output within [`REACH_TIMEOUT`]
/// (what it said so far when the time is up).
async fn said(
    docker: &bollard::Docker,
    container: &str,
    argv: Vec<String>,
) -> Result<String, BackendError> {
    use bollard::container::LogOutput;
    use bollard::exec::{CreateExecOptions, StartExecResults};
    let options = CreateExecOptions {
        attach_stdout: Some(true),
        cmd: Some(argv),
        ..Default::default()
    };
    let created = docker
        .create_exec(container, options)
        .await
        .map_err(super::failed("cannot check what the job must reach"))?;
    let started = docker
        .start_exec(&created.id, None)
        .await
        .map_err(super::failed("cannot check what the job must reach"))?;
    let StartExecResults::Attached { mut output, .. } = started else {
        return Ok(String::new());
    };
    let mut said = Vec::new();
    let read = async {
        while let Some(Ok(chunk)) = output.next().await {
            if let LogOutput::StdOut { message } | LogOutput::Console { message } = chunk {
                if said.len() < 64 * 1024 {
                    said.extend_from_slice(&message);
                }
            }
        }
    };
    let _ = tokio::time::timeout(REACH_TIMEOUT, read).await;
    Ok(String::from_utf8_lossy(&said).into_owned())
}

/// `text` with its first letter upper-case, to start a line.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
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
    reach: &[Reach],
    gateway: IpAddr,
) -> Result<Vec<Forwarder>, BackendError> {
    let mut forwarders = Vec::new();
    for wanted in reach {
        let original = &wanted.url;
        let Some(url) = split(original) else { continue };
        if !is_loopback(url.host) {
            continue;
        }
        let listener = match TcpListener::bind((gateway, 0)).await {
            Ok(listener) => listener,
            // The gateway is not this machine's (a daemon in another network namespace, a
            // runner in a container beside it): what the job can do without is left as it
            // is, and the check before the first step says it is unreachable, with its fix.
            Err(e) if wanted.optional => {
                tracing::debug!("cannot forward {original} from {gateway}: {e}");
                continue;
            }
            Err(e) => {
                return Err(BackendError::Unsupported(format!(
                    "{original} is on this machine's loopback, which a job container cannot \
                     reach, and forwarding to it from the job network's gateway {gateway} \
                     failed: {e}"
                )))
            }
        };
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

    #[tokio::test]
    async fn a_gateway_that_is_not_this_machines_leaves_an_optional_url_unforwarded() {
        // TEST-NET-1: no interface of this machine has it, so nothing can listen there.
        let elsewhere: IpAddr = "192.0.2.1".parse().unwrap();
        let cache = Reach::optional("http://127.0.0.1:9/", "the cache", "set cache.host");
        let forwarded = forward(std::slice::from_ref(&cache), elsewhere).await;
        assert!(forwarded.is_ok_and(|f| f.is_empty()));
        let forge = Reach::required("http://127.0.0.1:9/", "the forge", "");
        let refused = forward(&[forge], elsewhere).await.err().expect("refused");
        assert!(
            refused.to_string().contains("forwarding to it"),
            "{refused}"
        );
    }

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

    /// A process whose cgroup does not name the container (a pid that means another process
    /// here: a daemon elsewhere, another PID namespace) is never entered.
    #[test]
    fn a_process_that_is_not_the_containers_is_not_entered() {
        let address: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let not_ours = "f".repeat(64);
        let pid = i64::from(std::process::id());
        assert!(connect_in_namespace(pid, &not_ours, &[(0, address)]).is_none());
        assert!(connect_in_namespace(pid, "", &[(0, address)]).is_none());
        assert!(connect_in_namespace(-1, &not_ours, &[(0, address)]).is_none());
    }

    #[test]
    fn a_name_the_containers_hosts_hold_has_their_address() {
        let hosts = ["git.example.com:10.1.2.3".to_owned()];
        let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        assert_eq!(address_in("Git.Example.com", &hosts), ip("10.1.2.3"));
        assert_eq!(address_in("172.17.0.1", &hosts), ip("172.17.0.1"));
        assert_eq!(address_in("cache.internal", &hosts), None);
    }

    /// The probe's lines, in any order, some missing (it ran out of time), some not its own.
    #[test]
    fn the_probes_answers_are_read_per_target() {
        let said = "2 125\n0 1 bash: connect: Connection refused \nnoise\n9 0\n1 0\n";
        assert_eq!(
            answers(said, 4),
            [
                Some(Answer::Failed("bash: connect: Connection refused".into())),
                Some(Answer::Reached),
                Some(Answer::CannotTell),
                None
            ]
        );
        let long = format!("0 1 {}", "x".repeat(500));
        assert_eq!(
            answers(&long, 1),
            [Some(Answer::Failed("x".repeat(WHY_LIMIT)))]
        );
        let targets = [target("http://172.17.0.1:4000/base").unwrap()];
        assert_eq!(
            node_probe(&targets)[2..],
            ["172.17.0.1", "4000", "http://172.17.0.1:4000/base"]
        );
        assert!(target("ftp://x").is_none());
    }
}
