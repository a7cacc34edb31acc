//! A container's `options:` (the `docker create` flags a workflow writes) as far as a Pod can
//! express them: health checks become a readiness probe, `--env`, `--user`, `--workdir`,
//! `--cpus` and `--memory` their container fields. Every other flag is refused by name: a Pod
//! has no `--privileged`, `-v` or `--network`, and a flag silently dropped would be a surprise.

use std::time::Duration;

/// The options a container of a job Pod takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerOptions {
    pub env: Vec<(String, String)>,
    pub health: Option<HealthCheck>,
    /// `--user`: a numeric uid (a Pod cannot name a user of the image).
    pub user: Option<(i64, Option<i64>)>,
    pub workdir: Option<String>,
    /// `--cpus`, as a quantity (`1500m`).
    pub cpu: Option<String>,
    /// `--memory`, as a quantity (`512Mi`).
    pub memory: Option<String>,
}

/// `--health-*`: what the readiness probe runs and how often.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthCheck {
    /// Run by `/bin/sh -c`, as Docker runs a `--health-cmd`.
    pub command: String,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub start_period: Option<Duration>,
}

/// Reads `options`, the flags as written in the workflow.
pub fn parse(options: &str) -> Result<ContainerOptions, String> {
    let words = shell_words::split(options)
        .map_err(|e| format!("cannot read the container options {options:?}: {e}"))?;
    let mut parsed = ContainerOptions::default();
    let mut health = HealthCheck::default();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (word.clone(), None),
        };
        let value = |words: &mut std::vec::IntoIter<String>| match inline.clone() {
            Some(value) => Ok(value),
            None => words
                .next()
                .ok_or_else(|| format!("the container option {flag} needs a value")),
        };
        match flag.as_str() {
            "-e" | "--env" => {
                let pair = value(&mut words)?;
                let (name, val) = match pair.split_once('=') {
                    Some((name, val)) => (name.to_owned(), val.to_owned()),
                    // `-e NAME` passes the runner's own value in Docker; a Pod has none to pass.
                    None => (pair.clone(), String::new()),
                };
                parsed.env.push((name, val));
            }
            "--health-cmd" => health.command = value(&mut words)?,
            "--health-interval" => health.interval = Some(duration(&flag, &value(&mut words)?)?),
            "--health-timeout" => health.timeout = Some(duration(&flag, &value(&mut words)?)?),
            "--health-start-period" => {
                health.start_period = Some(duration(&flag, &value(&mut words)?)?)
            }
            "--health-retries" => {
                let text = value(&mut words)?;
                health.retries = Some(
                    text.parse()
                        .map_err(|_| format!("{flag} takes a number, not {text:?}"))?,
                );
            }
            "-u" | "--user" => parsed.user = Some(user(&value(&mut words)?)?),
            "-w" | "--workdir" => parsed.workdir = Some(value(&mut words)?),
            "--cpus" => parsed.cpu = Some(cpus(&value(&mut words)?)?),
            "-m" | "--memory" => parsed.memory = Some(memory(&value(&mut words)?)?),
            // Names a Pod gives itself; harmless to accept and ignore.
            "--hostname" | "-h" | "--name" => {
                value(&mut words)?;
            }
            "--rm" | "--init" => {}
            other => {
                return Err(format!(
                    "the container option {other} cannot be given to a Kubernetes Pod (it takes \
                     --env, --health-cmd/-interval/-timeout/-retries/-start-period, --user UID, \
                     --workdir, --cpus and --memory); set Pod fields through the runner's \
                     kubernetes.pod_template instead"
                ))
            }
        }
    }
    if !health.command.is_empty() {
        parsed.health = Some(health);
    }
    Ok(parsed)
}

/// A Go duration (`10s`, `1m30s`, `500ms`).
fn duration(flag: &str, text: &str) -> Result<Duration, String> {
    let bad = || format!("{flag} takes a duration like 10s or 1m30s, not {text:?}");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(number * seconds);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

fn user(text: &str) -> Result<(i64, Option<i64>), String> {
    let bad = || {
        format!(
            "--user {text:?}: a Kubernetes Pod takes a numeric user id (and group id, UID:GID), \
             not a name"
        )
    };
    let (uid, gid) = match text.split_once(':') {
        Some((uid, gid)) => (uid, Some(gid)),
        None => (text, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = gid.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

/// `--cpus 1.5` as the quantity `1500m`.
fn cpus(text: &str) -> Result<String, String> {
    let cpus: f64 = text
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite() && *c > 0.0)
        .ok_or_else(|| format!("--cpus takes a number of CPUs like 1.5, not {text:?}"))?;
    Ok(format!("{}m", (cpus * 1000.0).round() as u64))
}

/// `--memory 512m` (Docker's binary units, `b`/`k`/`m`/`g`) as the quantity `512Mi`.
fn memory(text: &str) -> Result<String, String> {
    let bad = || format!("--memory takes a size like 512m or 2g, not {text:?}");
    let lower = text.trim().to_ascii_lowercase();
    let (number, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit.trim_end_matches('b') {
        "" => "",
        "k" => "Ki",
        "m" => "Mi",
        "g" => "Gi",
        "t" => "Ti",
        _ => return Err(bad()),
    };
    Ok(format!("{number}{unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_checks_env_and_limits_are_read() {
        let options = parse(
            "--health-cmd 'redis-cli ping' --health-interval=2s --health-timeout 1s \
             --health-retries 5 --health-start-period 1m30s -e A=1 --env B --cpus 1.5 -m 512m \
             --user 1000:1000 -w /src --hostname x",
        )
        .unwrap();
        assert_eq!(
            options.health,
            Some(HealthCheck {
                command: "redis-cli ping".into(),
                interval: Some(Duration::from_secs(2)),
                timeout: Some(Duration::from_secs(1)),
                retries: Some(5),
                start_period: Some(Duration::from_secs(90)),
            })
        );
        assert_eq!(
            options.env,
            vec![("A".into(), "1".into()), ("B".into(), String::new())]
        );
        assert_eq!(options.cpu.as_deref(), Some("1500m"));
        assert_eq!(options.memory.as_deref(), Some("512Mi"));
        assert_eq!(options.user, Some((1000, Some(1000))));
        assert_eq!(options.workdir.as_deref(), Some("/src"));
    }

    #[test]
    fn flags_a_pod_cannot_take_are_refused_by_name() {
        for flag in [
            "--privileged",
            "-v /:/host",
            "--network host",
            "--cap-add SYS_ADMIN",
        ] {
            let error = parse(flag).unwrap_err();
            let name = flag.split(' ').next().unwrap();
            assert!(error.contains(name), "{error}");
            assert!(error.contains("kubernetes.pod_template"), "{error}");
        }
        assert!(parse("--user runner").unwrap_err().contains("numeric"));
        assert!(parse("--health-interval soon")
            .unwrap_err()
            .contains("duration"));
        assert!(parse("--memory lots").unwrap_err().contains("512m"));
        assert!(parse("--env").unwrap_err().contains("needs a value"));
    }
}
