//! Finding and signalling a job's processes.
//!
//! A job's processes are found two ways, because each misses some:
//!
//! - by the `RUNNER_TRACKING_ID=<id>` entry in `/proc/<pid>/environ` (what GitHub's runner
//!   does): environments are inherited, so this finds processes that left the step's process
//!   group with `setsid` or a double fork;
//! - by process group: every step runs in a group of its own, so this finds processes that
//!   cleared or rewrote their environment (`env -i ...`) but stayed in the group.
//!
//! Zombies are ignored: they are already dead and only wait for their parent (or init) to reap
//! them; signalling them does nothing.
//!
//! Reading a process's environment is the costly part of a survey (the kernel copies it out
//! of the other process's memory), so it is only read for processes started since the job
//! began: an older one cannot have inherited the job's tracking id, made afresh for the job.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};

pub(crate) use libc::{SIGINT, SIGKILL, SIGTERM};

/// Sends `signal` to process `pid`. A process that is already gone is not an error.
pub(crate) fn kill(pid: i32, signal: libc::c_int) -> io::Result<()> {
    // Never 0 or negative: those address our own group or every process we may signal.
    if pid <= 1 {
        return Ok(());
    }
    // SAFETY: kill(2) takes plain integers and has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, signal) };
    check(rc)
}

/// Sends `signal` to every member of process group `pgid`. An empty group is not an error.
pub(crate) fn kill_group(pgid: i32, signal: libc::c_int) -> io::Result<()> {
    // 0 would be our own group, 1 init's; the groups we create are neither.
    if pgid <= 1 {
        return Ok(());
    }
    // SAFETY: killpg(3) takes plain integers and has no memory-safety preconditions.
    let rc = unsafe { libc::killpg(pgid, signal) };
    check(rc)
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// The time since boot in clock ticks, the unit of a process's start time in
/// `/proc/<pid>/stat`; `0` (before everything) should the clock not answer.
pub(crate) fn ticks_since_boot() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    // SAFETY: sysconf takes a plain integer.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let (Ok(secs), Ok(nanos), Ok(per_second)) = (
        u64::try_from(now.tv_sec),
        u64::try_from(now.tv_nsec),
        u64::try_from(per_second),
    ) else {
        return 0;
    };
    if rc != 0 || per_second == 0 {
        return 0;
    }
    // Rounded down, as the kernel rounds start times: a process started at or after this
    // instant never shows an earlier tick.
    secs * per_second + nanos * per_second / 1_000_000_000
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    /// The one-letter state (`R`, `S`, `Z`, ...).
    pub state: char,
    /// The process group.
    pub pgid: i32,
    /// When it started, in clock ticks since boot.
    pub started: u64,
}

impl Stat {
    /// Whether the process is dead and only waits to be reaped.
    pub fn is_dead(self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/<pid>/stat`; `None` if the process is gone or the line is unreadable.
///
/// One `read` into a buffer larger than any stat line (the kernel hands the line over whole)
/// rather than `fs::read`, which also asks the file's size and reads again until the end: a
/// survey reads this for every process on the machine. The command name may be any bytes (a
/// process names itself), so the line is not required to be UTF-8.
pub(crate) fn stat(pid: i32) -> Option<Stat> {
    let path = format!("/proc/{pid}/stat");
    let mut buf = [0u8; 1024];
    let n = fs::File::open(&path).ok()?.read(&mut buf).ok()?;
    if n < buf.len() {
        parse_stat(&String::from_utf8_lossy(&buf[..n]))
    } else {
        parse_stat(&String::from_utf8_lossy(&fs::read(&path).ok()?))
    }
}

/// Parses a stat line: `pid (comm) state ppid pgrp ... starttime ...` (`starttime` is the
/// 22nd field). The command name may contain spaces and parentheses, so the fields are counted
/// from the *last* `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgid = fields.next()?.parse().ok()?;
    // Fields 6 to 21 (session ... itrealvalue) lie between the group and the start time.
    let started = fields.nth(16)?.parse().ok()?;
    Some(Stat {
        state,
        pgid,
        started,
    })
}

/// Whether the environment of `pid` holds exactly the entry `needle` (`NAME=value`).
/// Unreadable environments (other users' processes, zombies) do not match.
fn carries(pid: i32, needle: &[u8]) -> bool {
    fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|entry| entry == needle))
        .unwrap_or(false)
}

/// The living processes that carry `needle` in their environment or belong to one of `groups`,
/// never including this process itself. Only processes started at or after `since` (clock
/// ticks since boot, see [`ticks_since_boot`]) can carry `needle`: it must be made after then.
pub(crate) fn job_processes(
    needle: &[u8],
    groups: &HashSet<i32>,
    since: u64,
) -> io::Result<Vec<i32>> {
    let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc")? {
        // Processes come and go while we list them; a vanished entry is no error.
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Some(stat) = stat(pid) else { continue };
        if stat.is_dead() {
            continue;
        }
        if groups.contains(&stat.pgid) || (stat.started >= since && carries(pid, needle)) {
            found.push(pid);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields after the group up to the start time: session ... itrealvalue, then
    /// starttime 12345 and a few more.
    const TAIL: &str = "77 0 -1 4194560 116 0 0 0 0 0 0 0 20 0 1 0 12345 8675328 225";

    #[test]
    fn stat_lines_with_odd_names() {
        let s = parse_stat(&format!("42 (a) b (c)) S 1 77 {TAIL}")).unwrap();
        assert_eq!(
            s,
            Stat {
                state: 'S',
                pgid: 77,
                started: 12345,
            }
        );
        let odd = b"42 (\xff\xfe) S 1 77 77 0 -1 4194560 116 0 0 0 0 0 0 0 20 0 1 0 12345 1 2";
        assert_eq!(
            parse_stat(&String::from_utf8_lossy(odd)).map(|s| s.pgid),
            Some(77)
        );
        assert!(parse_stat("42 (a").is_none());
        assert!(parse_stat("").is_none());
        assert!(parse_stat(&format!("42 (z) Z 1 x {TAIL}")).is_none());
        assert!(parse_stat("42 (z) Z 1 5 6").is_none());
        assert!(parse_stat(&format!("42 (z) Z 1 5 {TAIL}"))
            .unwrap()
            .is_dead());
    }

    #[test]
    fn reads_this_process() {
        let me = i32::try_from(std::process::id()).unwrap();
        let stat = stat(me).unwrap();
        assert!(!stat.is_dead());
        assert!(stat.started <= ticks_since_boot());
    }

    #[test]
    fn finds_nothing_for_an_unknown_id() {
        let none = job_processes(b"RUNNER_TRACKING_ID=nobody", &HashSet::new(), 0).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn finds_a_new_process_by_its_environment_only_when_new() {
        let since = ticks_since_boot();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("HEARTH_PROCS_TEST", "a-fresh-id")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let needle = b"HEARTH_PROCS_TEST=a-fresh-id";
        // Just after the spawn, the kernel may still be setting up the new program's
        // environment: look a few times.
        let mut found = Vec::new();
        for _ in 0..100 {
            found = job_processes(needle, &HashSet::new(), since).unwrap();
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let later = job_processes(needle, &HashSet::new(), ticks_since_boot() + 1000).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found, [pid]);
        assert!(later.is_empty());
    }

    #[test]
    fn refuses_dangerous_targets() {
        // Must not signal our own group or everything: these are no-ops.
        kill(0, 0).unwrap();
        kill(-1, 0).unwrap();
        kill_group(0, 0).unwrap();
        kill_group(1, 0).unwrap();
    }
}
