//! The record in a job's folder of whose job it is, for [`reap`](super::reap).
//!
//! `start` writes `<job folder>/.hearth-job` before any of the job's processes runs; the job
//! sees its `workspace/` and `temp/`, not this file beside them. It is a few lines of text:
//!
//! ```text
//! hearth-job 1
//! runner-pid 4242
//! runner-started 1234567          the runner's start, in clock ticks since boot
//! pid-namespace pid:[4026531836]  where runner-pid means that process
//! boot 0f1e...                    /proc/sys/kernel/random/boot_id
//! tracking-id hearth_0123...      RUNNER_TRACKING_ID of the job's processes
//! job-started 1234999             the job's start, in clock ticks since boot
//! owner hearth.runner=my-runner   one line per owner label, `%`, `=` and line ends as %XX
//! ```
//!
//! The runner is named by its pid *and* start time so that a later process given the same pid
//! is not taken for it, and by its boot so that ticks from before a restart are not compared
//! with today's. The file is written to a temporary name and renamed, so a reader sees all of
//! it or none; it is not synced to disk (a job start would wait for the disk), so after a power
//! loss a record may be empty, and its folder is then left alone (with a warning) like one
//! without a record.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

use super::procs;

/// The record's file name, in the job's folder.
pub(crate) const RECORD: &str = ".hearth-job";
/// The first line: the format and its version.
const MAGIC: &str = "hearth-job 1";
/// A record is a few hundred bytes; anything far larger is not one.
const MAX_RECORD: u64 = 64 * 1024;

/// A process, named so that it cannot be mistaken for a later one with the same pid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Runner {
    pub pid: i32,
    /// When it started, in clock ticks since boot.
    pub started: u64,
    /// Its pid namespace (`readlink /proc/self/ns/pid`): `pid` means that process only there.
    pub pid_namespace: String,
    /// The boot it ran in (`/proc/sys/kernel/random/boot_id`).
    pub boot: String,
}

/// What became of the runner that wrote a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunnerState {
    /// Gone: its jobs' leftovers are no one's.
    Dead,
    /// This very process.
    Us,
    /// Another process that is still running.
    Alive,
    /// It ran in another pid namespace (another container sharing the folder): no way to
    /// tell from here.
    Unknown,
}

impl Runner {
    /// This process (looked up once: it does not change).
    pub fn this_process() -> &'static Runner {
        static ME: OnceLock<Runner> = OnceLock::new();
        ME.get_or_init(|| {
            let pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
            Runner {
                pid,
                // Unreadable only without /proc, where nothing of the backend's tracking works.
                started: procs::stat(pid).map_or(0, |stat| stat.started),
                pid_namespace: fs::read_link("/proc/self/ns/pid")
                    .map(|link| link.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                boot: fs::read_to_string("/proc/sys/kernel/random/boot_id")
                    .map(|id| id.trim().to_owned())
                    .unwrap_or_default(),
            }
        })
    }

    /// Whether the process this names still runs, as `me` sees it.
    pub fn state(&self, me: &Runner) -> RunnerState {
        // Nothing survives a restart (ticks count from boot, so they could not be compared).
        if !self.boot.is_empty() && !me.boot.is_empty() && self.boot != me.boot {
            return RunnerState::Dead;
        }
        if self.pid_namespace != me.pid_namespace {
            return RunnerState::Unknown;
        }
        if self.pid == me.pid && self.started == me.started {
            return RunnerState::Us;
        }
        match procs::stat(self.pid) {
            Some(stat) if !stat.is_dead() && stat.started == self.started => RunnerState::Alive,
            // Gone, a zombie, or its pid now belongs to a younger process.
            _ => RunnerState::Dead,
        }
    }
}

/// Whose a job is, and how to find its processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// The runner process that started the job.
    pub runner: Runner,
    /// The value of `RUNNER_TRACKING_ID` in the job's processes.
    pub tracking_id: String,
    /// When the job started, in clock ticks since boot (its processes are younger).
    pub job_started: u64,
    /// The job's owner labels (`JobSpec::owner`).
    pub owner: Vec<(String, String)>,
}

impl Record {
    /// Whether the record carries every one of `labels` (and perhaps more).
    pub fn owned_by(&self, labels: &[(String, String)]) -> bool {
        labels.iter().all(|label| self.owner.contains(label))
    }

    /// Writes the record into `job_dir`, replacing one there, all at once.
    pub fn write(&self, job_dir: &Path) -> io::Result<()> {
        let temp = job_dir.join(format!("{RECORD}.new"));
        let mut file = fs::File::create(&temp)?;
        file.write_all(self.to_text().as_bytes())?;
        drop(file);
        fs::rename(&temp, job_dir.join(RECORD))
    }

    /// Reads the record in `job_dir`: `None` when there is none (a folder of an older
    /// Hearth's, or not a job's), an `InvalidData` error when it is not one this code wrote.
    /// A symlink in its place is not followed.
    pub fn read(job_dir: &Path) -> io::Result<Option<Record>> {
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(job_dir.join(RECORD));
        let file = match file {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut text = String::new();
        file.take(MAX_RECORD).read_to_string(&mut text)?;
        Record::parse(&text)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    fn to_text(&self) -> String {
        let runner = &self.runner;
        let mut text = format!(
            "{MAGIC}\nrunner-pid {}\nrunner-started {}\npid-namespace {}\nboot {}\n\
             tracking-id {}\njob-started {}\n",
            runner.pid,
            runner.started,
            escape(&runner.pid_namespace),
            escape(&runner.boot),
            self.tracking_id,
            self.job_started,
        );
        for (name, value) in &self.owner {
            text.push_str(&format!("owner {}={}\n", escape(name), escape(value)));
        }
        text
    }

    fn parse(text: &str) -> Result<Record, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(format!("it does not start with `{MAGIC}`"));
        }
        let mut record = Record {
            runner: Runner {
                pid: 0,
                started: 0,
                pid_namespace: String::new(),
                boot: String::new(),
            },
            tracking_id: String::new(),
            job_started: 0,
            owner: Vec::new(),
        };
        let number = |key: &str, value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("`{key}` is not a number: {value:?}"))
        };
        for line in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "runner-pid" => {
                    record.runner.pid = value
                        .parse()
                        .ok()
                        .filter(|pid| *pid > 0)
                        .ok_or_else(|| format!("`runner-pid` is not a pid: {value:?}"))?;
                }
                "runner-started" => record.runner.started = number(key, value)?,
                "pid-namespace" => record.runner.pid_namespace = unescape(value)?,
                "boot" => record.runner.boot = unescape(value)?,
                "tracking-id" => record.tracking_id = value.to_owned(),
                "job-started" => record.job_started = number(key, value)?,
                "owner" => {
                    let (name, value) = value
                        .split_once('=')
                        .ok_or_else(|| format!("an owner label without `=`: {value:?}"))?;
                    record.owner.push((unescape(name)?, unescape(value)?));
                }
                // Later versions may add lines; what this version needs is checked below.
                _ => {}
            }
        }
        if record.runner.pid == 0 {
            return Err("it names no runner".to_owned());
        }
        // The id goes into the environment entry processes are searched for: an empty or odd
        // one could match processes that are not the job's.
        let id = &record.tracking_id;
        if !id.starts_with("hearth_")
            || id.len() < 16
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!("its tracking id is not one of Hearth's: {id:?}"));
        }
        Ok(record)
    }
}

/// `text` with `%`, `=`, line ends and other control characters as `%XX`, so that a label
/// cannot break the record's lines or its `name=value` split.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '%' || c == '=' || c.is_ascii_control() {
            escaped.push_str(&format!("%{:02X}", u32::from(c)));
        } else {
            escaped.push(c);
        }
    }
    escaped
}

fn unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("a bad escape in {text:?}"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8 once unescaped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            runner: Runner::this_process().clone(),
            tracking_id: "hearth_0123456789abcdef0123456789abcdef".into(),
            job_started: 42,
            owner: vec![
                ("hearth.runner".into(), "my runner=50% \n\r\t ünï".into()),
                ("hearth.task".into(), "7".into()),
            ],
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Record::read(dir.path()).unwrap(), None);
        let record = record();
        record.write(dir.path()).unwrap();
        assert_eq!(Record::read(dir.path()).unwrap(), Some(record.clone()));
        let text = fs::read_to_string(dir.path().join(RECORD)).unwrap();
        assert!(
            text.contains("owner hearth.runner=my runner%3D50%25 %0A%0D%09 ünï\n"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 9);
        assert!(!dir.path().join(format!("{RECORD}.new")).exists());
    }

    #[test]
    fn labels_must_all_be_carried() {
        let record = record();
        let label = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        assert!(record.owned_by(&[]));
        assert!(record.owned_by(&[label("hearth.task", "7")]));
        assert!(record.owned_by(&record.owner.clone()));
        assert!(!record.owned_by(&[label("hearth.task", "7"), label("hearth.task", "8")]));
        assert!(!record.owned_by(&[label("hearth.runner", "my runner")]));
    }

    #[test]
    fn what_is_not_a_record_is_refused() {
        let good = record().to_text();
        assert!(Record::parse(&good).is_ok());
        for bad in [
            String::new(),
            "hearth-job 2\n".to_owned(),
            good.replace(MAGIC, "something else"),
            good.replace("runner-pid ", "runner-pid -"),
            good.replace("runner-pid ", "runner-pid x"),
            good.replace("job-started 42", "job-started soon"),
            good.replace("tracking-id hearth_", "tracking-id "),
            good.replace("tracking-id hearth_", "tracking-id a=b c hearth_"),
            good.replace("hearth.task=7", "hearth.task"),
            good.replace("%3D", "%G1"),
            good.replace("%3D", "%FF"),
        ] {
            assert!(Record::parse(&bad).is_err(), "{bad}");
        }
        // Lines of a later version are skipped.
        assert!(Record::parse(&format!("{good}shiny new\n")).is_ok());
    }

    #[test]
    fn a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        record().write(&elsewhere).unwrap();
        let job = dir.path().join("job");
        fs::create_dir(&job).unwrap();
        std::os::unix::fs::symlink(elsewhere.join(RECORD), job.join(RECORD)).unwrap();
        assert!(Record::read(&job).is_err());
    }

    #[test]
    fn runners_are_told_apart() {
        let me = Runner::this_process();
        assert!(me.pid > 1 && me.started > 0, "{me:?}");
        assert_eq!(me.state(me), RunnerState::Us);

        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let started = procs::stat(pid).unwrap().started;
        let other = Runner {
            pid,
            started,
            ..me.clone()
        };
        assert_eq!(other.state(me), RunnerState::Alive);
        // The same pid, started at another time: another process.
        let reused = Runner {
            started: started + 1,
            ..other.clone()
        };
        assert_eq!(reused.state(me), RunnerState::Dead);
        let elsewhere = Runner {
            pid_namespace: "pid:[1]".into(),
            ..other.clone()
        };
        assert_eq!(elsewhere.state(me), RunnerState::Unknown);
        let before_a_restart = Runner {
            boot: "another boot".into(),
            ..other.clone()
        };
        assert_eq!(before_a_restart.state(me), RunnerState::Dead);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(other.state(me), RunnerState::Dead);
    }
}
