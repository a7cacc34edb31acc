//! A container's `options:` (the `docker create` flags a workflow writes), read against an
//! allow-list: what is everyday in workflows (health checks, env, user, working directory,
//! hostname, resources, extra network aliases) is applied; what would reach outside the job's
//! sandbox (`--privileged`, `--cap-add`, `--device`, `--pid`, `--network`, `-v`, ...) is refused
//! with a message naming the flag, as are flags Hearth does not know, rather than silently
//! dropped.

use std::time::Duration;

/// What `options:` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerOptions {
    /// `--health-cmd` (run through the image's shell, as Docker's `CMD-SHELL`).
    pub health_cmd: Option<String>,
    pub health_interval: Option<Duration>,
    pub health_timeout: Option<Duration>,
    pub health_start_period: Option<Duration>,
    pub health_retries: Option<i64>,
    /// `-e NAME=VALUE` / `--env`.
    pub env: Vec<(String, String)>,
    /// `-u` / `--user`.
    pub user: Option<String>,
    /// `-w` / `--workdir`.
    pub workdir: Option<String>,
    pub hostname: Option<String>,
    /// `--cpus`, in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    /// `-m` / `--memory`, in bytes.
    pub memory: Option<i64>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--add-host NAME:ADDRESS` (Docker's `host-gateway` included): a line of the
    /// container's `/etc/hosts`, as act_runner's example config suggests for reaching the forge.
    pub extra_hosts: Vec<String>,
}

impl ContainerOptions {
    /// These options written after `base` (the runner's own, as Gitea's act puts
    /// `container.options` before a job container's `options:`): a flag given in both takes
    /// this one's value, lists (`-e`, `--network-alias`) hold `base`'s entries first.
    pub fn over(self, base: &ContainerOptions) -> ContainerOptions {
        let list = |first: &[(String, String)], then: Vec<(String, String)>| {
            let mut all = first.to_vec();
            all.extend(then);
            all
        };
        let mut aliases = base.aliases.clone();
        aliases.extend(self.aliases);
        let mut extra_hosts = base.extra_hosts.clone();
        extra_hosts.extend(self.extra_hosts);
        ContainerOptions {
            health_cmd: self.health_cmd.or_else(|| base.health_cmd.clone()),
            health_interval: self.health_interval.or(base.health_interval),
            health_timeout: self.health_timeout.or(base.health_timeout),
            health_start_period: self.health_start_period.or(base.health_start_period),
            health_retries: self.health_retries.or(base.health_retries),
            env: list(&base.env, self.env),
            user: self.user.or_else(|| base.user.clone()),
            workdir: self.workdir.or_else(|| base.workdir.clone()),
            hostname: self.hostname.or_else(|| base.hostname.clone()),
            nano_cpus: self.nano_cpus.or(base.nano_cpus),
            memory: self.memory.or(base.memory),
            aliases,
            extra_hosts,
        }
    }
}

/// Flags that reach outside the job's sandbox.
const REFUSED: &[&str] = &[
    "--privileged",
    "--cap-add",
    "--device",
    "--pid",
    "--ipc",
    "--uts",
    "--userns",
    "--network",
    "--net",
    "-v",
    "--volume",
    "--mount",
    "--security-opt",
    "--cgroupns",
    "--volumes-from",
];

/// Reads `options`; on a privileged runner (`container.privileged`) `--privileged` is
/// accepted (the container is privileged anyway).
pub fn parse(options: &str, privileged: bool) -> Result<ContainerOptions, String> {
    let words = shell_words::split(options)
        .map_err(|e| format!("the container options are not shell words: {e}"))?;
    let mut parsed = ContainerOptions::default();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (word.clone(), None),
        };
        if privileged && flag == "--privileged" {
            continue;
        }
        if REFUSED.contains(&flag.as_str()) {
            return Err(format!(
                "the container option `{flag}` reaches outside the job's sandbox; Hearth refuses it"
            ));
        }
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(value) => Ok(value.clone()),
                None => words
                    .next()
                    .ok_or_else(|| format!("the container option `{flag}` needs a value")),
            }
        };
        match flag.as_str() {
            "--health-cmd" => parsed.health_cmd = Some(value()?),
            "--health-interval" => parsed.health_interval = Some(duration(&flag, &value()?)?),
            "--health-timeout" => parsed.health_timeout = Some(duration(&flag, &value()?)?),
            "--health-start-period" => {
                parsed.health_start_period = Some(duration(&flag, &value()?)?)
            }
            "--health-retries" => {
                let text = value()?;
                parsed.health_retries = Some(
                    text.parse()
                        .map_err(|_| format!("`{flag}` needs a whole number, not '{text}'"))?,
                );
            }
            "-e" | "--env" => {
                let pair = value()?;
                let (name, value) = pair.split_once('=').unwrap_or((&pair, ""));
                parsed.env.push((name.to_owned(), value.to_owned()));
            }
            "-u" | "--user" => parsed.user = Some(value()?),
            "-w" | "--workdir" => parsed.workdir = Some(value()?),
            "-h" | "--hostname" => parsed.hostname = Some(value()?),
            "--cpus" => {
                let text = value()?;
                let cpus: f64 = text
                    .parse()
                    .ok()
                    .filter(|cpus: &f64| cpus.is_finite() && *cpus >= 0.0)
                    .ok_or_else(|| format!("`--cpus` needs a number of CPUs, not '{text}'"))?;
                parsed.nano_cpus = Some((cpus * 1e9) as i64);
            }
            "-m" | "--memory" => parsed.memory = Some(bytes(&value()?)?),
            "--network-alias" => parsed.aliases.push(value()?),
            "--add-host" => {
                let entry = value()?;
                let Some((name, address)) = entry.split_once([':', '=']) else {
                    return Err(format!(
                        "`--add-host` needs NAME:ADDRESS (or NAME:host-gateway), not '{entry}'"
                    ));
                };
                parsed.extra_hosts.push(format!("{name}:{address}"));
            }
            other => {
                return Err(format!(
                    "the container option `{other}` is not one Hearth applies (it applies \
                     --health-*, -e, -u, -w, --hostname, --cpus, --memory, --network-alias, \
                     --add-host)"
                ))
            }
        }
    }
    Ok(parsed)
}

/// Docker's durations: `10s`, `1m30s`, `500ms`, `2h`.
fn duration(flag: &str, text: &str) -> Result<Duration, String> {
    let bad = || format!("`{flag}` needs a duration such as 10s or 1m30s, not '{text}'");
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(number * seconds);
        rest = &rest[unit_end..];
    }
    Ok(total)
}

/// Docker's sizes: `512m`, `2g`, `1.5g`, `1024k`, a plain number of bytes.
fn bytes(text: &str) -> Result<i64, String> {
    let lower = text.to_ascii_lowercase();
    let (number, factor) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 10),
        Some('m') => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (lower.trim_end_matches('b'), 1),
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| (n * f64::from(factor)) as i64)
        .ok_or_else(|| format!("`--memory` needs a size such as 512m or 2g, not '{text}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyday_options_are_applied() {
        let parsed = parse(
            "--health-cmd \"pg_isready -U postgres\" --health-interval=2s --health-retries 5 \
             -e A=1 --memory 512m --cpus 1.5 --network-alias db2",
            false,
        )
        .unwrap();
        assert_eq!(parsed.health_cmd.as_deref(), Some("pg_isready -U postgres"));
        assert_eq!(parsed.health_interval, Some(Duration::from_secs(2)));
        assert_eq!(parsed.health_retries, Some(5));
        assert_eq!(parsed.env, [("A".to_owned(), "1".to_owned())]);
        assert_eq!(parsed.memory, Some(512 << 20));
        assert_eq!(parsed.nano_cpus, Some(1_500_000_000));
        assert_eq!(parsed.aliases, ["db2"]);
        assert_eq!(duration("x", "1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(bytes("1.5g"), Ok(3 << 29));
        assert!(parse("--cpus -1", false).is_err() && parse("--memory -1g", false).is_err());
        // act_runner's example config suggests it for reaching the forge.
        let hosts = parse(
            "--add-host=gitea.local:host-gateway --add-host db=10.0.0.5",
            false,
        );
        assert_eq!(
            hosts.unwrap().extra_hosts,
            ["gitea.local:host-gateway", "db:10.0.0.5"]
        );
        assert!(parse("--add-host nohost", false).is_err());
    }

    #[test]
    fn a_jobs_options_come_after_the_runners() {
        let runners = parse(
            "-e A=runner -e B=runner -u 1000 --memory 1g --network-alias r",
            false,
        )
        .unwrap();
        let merged = parse("-e B=job --memory 2g --network-alias j", false)
            .unwrap()
            .over(&runners);
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        // Docker takes the last of a repeated -e: the job's.
        assert_eq!(
            merged.env,
            [pair("A", "runner"), pair("B", "runner"), pair("B", "job")]
        );
        assert_eq!(merged.user.as_deref(), Some("1000"));
        assert_eq!(merged.memory, Some(2 << 30));
        assert_eq!(merged.aliases, ["r", "j"]);
        assert_eq!(ContainerOptions::default().over(&runners), runners);
    }

    #[test]
    fn options_that_escape_the_sandbox_or_are_unknown_are_refused_by_name() {
        for (options, flag) in [
            ("--privileged", "--privileged"),
            ("--cap-add SYS_ADMIN", "--cap-add"),
            ("-v /:/host", "-v"),
            ("--network=host", "--network"),
            ("--frobnicate", "--frobnicate"),
        ] {
            let error = parse(options, false).unwrap_err();
            assert!(error.contains(&format!("`{flag}`")), "{options}: {error}");
        }
        assert!(parse("--health-cmd", false)
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse("--privileged", true).is_ok());
        assert!(parse("--cap-add SYS_ADMIN", true).is_err());
    }
}
