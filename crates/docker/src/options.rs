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
                    .map_err(|_| format!("`--cpus` needs a number, not '{text}'"))?;
                parsed.nano_cpus = Some((cpus * 1e9) as i64);
            }
            "-m" | "--memory" => parsed.memory = Some(bytes(&value()?)?),
            "--network-alias" => parsed.aliases.push(value()?),
            other => {
                return Err(format!(
                    "the container option `{other}` is not one Hearth applies (it applies \
                     --health-*, -e, -u, -w, --hostname, --cpus, --memory, --network-alias)"
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

/// Docker's sizes: `512m`, `2g`, `1024k`, a plain number of bytes.
fn bytes(text: &str) -> Result<i64, String> {
    let lower = text.to_ascii_lowercase();
    let (number, factor) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 10),
        Some('m') => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (lower.trim_end_matches('b'), 1),
    };
    number
        .parse::<i64>()
        .map(|n| n * factor)
        .map_err(|_| format!("`--memory` needs a size such as 512m or 2g, not '{text}'"))
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
