//! The environment variables that configured act_runner before it had a config file.
//!
//! They count only when no config file is given, as in act_runner; with a file they are
//! ignored, and either way their use is warned about so that people move to the file.

use super::raw::RawConfig;
use super::{Environment, Warning};

/// Applies `GITEA_DEBUG`, `GITEA_TRACE`, `GITEA_RUNNER_CAPACITY`, `GITEA_RUNNER_FILE`,
/// `GITEA_RUNNER_ENVIRON` and `GITEA_RUNNER_ENV_FILE` to `raw` unless `file_used`.
pub(super) fn apply(
    raw: &mut RawConfig,
    file_used: bool,
    env: Environment<'_>,
    warnings: &mut Vec<Warning>,
) {
    let mut read = |name: &str, setting: &str| -> Option<String> {
        let value = env(name)?;
        let message = if file_used {
            format!("{name} is ignored because a config file is given; set {setting} there")
        } else {
            format!("{name} is deprecated; set {setting} in a config file (hearth generate-config)")
        };
        warnings.push(Warning::general(message));
        (!file_used).then_some(value)
    };

    // Both only ever raise the level; TRACE is read second so it wins over DEBUG.
    if read("GITEA_DEBUG", "log.level").is_some_and(|v| go_bool(&v)) {
        raw.log_level = "debug".to_owned();
    }
    if read("GITEA_TRACE", "log.level").is_some_and(|v| go_bool(&v)) {
        raw.log_level = "trace".to_owned();
    }
    let capacity = read("GITEA_RUNNER_CAPACITY", "runner.capacity");
    if let Some(file) = read("GITEA_RUNNER_FILE", "runner.file") {
        raw.runner.file = file;
    }
    if let Some(pairs) = read("GITEA_RUNNER_ENVIRON", "runner.envs") {
        raw.runner.envs.extend(parse_environ(&pairs));
    }
    if let Some(file) = read("GITEA_RUNNER_ENV_FILE", "runner.env_file") {
        raw.runner.env_file = file;
    }
    // After the closure's last use, so the warning about a bad value can be pushed.
    if let Some(text) = capacity {
        match text.trim().parse::<i64>() {
            Ok(capacity) => raw.runner.capacity = capacity,
            Err(_) => warnings.push(Warning::general(format!(
                "GITEA_RUNNER_CAPACITY={text:?} is not an integer and is ignored"
            ))),
        }
    }
}

/// Go's `strconv.ParseBool` truth values; anything else (including errors) is false.
fn go_bool(text: &str) -> bool {
    matches!(text, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// `GITEA_RUNNER_ENVIRON`'s `name:value,name:value`. A pair without `:` or with an empty
/// name is skipped; a value keeps any further `:`.
fn parse_environ(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    text.split(',').filter_map(|pair| {
        let (name, value) = pair.split_once(':')?;
        (!name.is_empty()).then(|| (name.to_owned(), value.to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn environ_pairs() {
        let pairs: Vec<_> = parse_environ("A:1,B:x:y,bad,:empty,C:").collect();
        assert_eq!(
            pairs,
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "x:y".to_owned()),
                ("C".to_owned(), String::new()),
            ]
        );
    }

    #[test]
    fn applied_without_a_file() {
        let vars = [
            ("GITEA_DEBUG", "true"),
            ("GITEA_TRACE", "1"),
            ("GITEA_RUNNER_CAPACITY", "3"),
            ("GITEA_RUNNER_FILE", "/data/.runner"),
            ("GITEA_RUNNER_ENVIRON", "A:1,B:2"),
            ("GITEA_RUNNER_ENV_FILE", "/data/.env"),
        ];
        let env = env_of(&vars);
        let mut raw = RawConfig::default();
        let mut warnings = Vec::new();
        apply(&mut raw, false, &env, &mut warnings);
        assert_eq!(raw.log_level, "trace");
        assert_eq!(raw.runner.capacity, 3);
        assert_eq!(raw.runner.file, "/data/.runner");
        assert_eq!(raw.runner.envs.get("B").map(String::as_str), Some("2"));
        assert_eq!(raw.runner.env_file, "/data/.env");
        assert_eq!(warnings.len(), 6);
        assert!(warnings[0]
            .to_string()
            .contains("GITEA_DEBUG is deprecated"));
    }

    #[test]
    fn debug_only_and_false_values() {
        let vars = [("GITEA_DEBUG", "T"), ("GITEA_TRACE", "no")];
        let mut raw = RawConfig::default();
        apply(&mut raw, false, &env_of(&vars), &mut Vec::new());
        assert_eq!(raw.log_level, "debug");
    }

    #[test]
    fn bad_capacity_is_warned_and_ignored() {
        let vars = [("GITEA_RUNNER_CAPACITY", "many")];
        let mut raw = RawConfig::default();
        let mut warnings = Vec::new();
        apply(&mut raw, false, &env_of(&vars), &mut warnings);
        assert_eq!(raw.runner.capacity, 0);
        assert!(warnings
            .iter()
            .any(|w| w.message.contains("not an integer")));
    }

    #[test]
    fn ignored_with_a_file() {
        let vars = [("GITEA_RUNNER_CAPACITY", "3"), ("GITEA_RUNNER_FILE", "x")];
        let mut raw = RawConfig::default();
        let mut warnings = Vec::new();
        apply(&mut raw, true, &env_of(&vars), &mut warnings);
        assert_eq!(raw.runner.capacity, 0);
        assert_eq!(raw.runner.file, "");
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0]
            .message
            .contains("ignored because a config file is given"));
    }
}
