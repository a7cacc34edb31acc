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

use std::collections::HashSet;
use std::fs;
use std::io;

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

/// What `/proc/<pid>/stat` says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    /// The one-letter state (`R`, `S`, `Z`, ...).
    pub state: char,
    /// The process group.
    pub pgid: i32,
}

impl Stat {
    /// Whether the process is dead and only waits to be reaped.
    pub fn is_dead(self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/<pid>/stat`; `None` if the process is gone or the line is unreadable.
pub(crate) fn stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a stat line: `pid (comm) state ppid pgrp ...`. The command name may contain spaces
/// and parentheses, so the fields are counted from the *last* `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(Stat { state, pgid })
}

/// Whether the environment of `pid` holds exactly the entry `needle` (`NAME=value`).
/// Unreadable environments (other users' processes, zombies) do not match.
fn carries(pid: i32, needle: &[u8]) -> bool {
    fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|entry| entry == needle))
        .unwrap_or(false)
}

/// The living processes that carry `needle` in their environment or belong to one of `groups`,
/// never including this process itself.
pub(crate) fn job_processes(needle: &[u8], groups: &HashSet<i32>) -> io::Result<Vec<i32>> {
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
        if groups.contains(&stat.pgid) || carries(pid, needle) {
            found.push(pid);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names() {
        let s = parse_stat("42 (a) b (c)) S 1 77 77 0 -1 4194560").unwrap();
        assert_eq!(
            s,
            Stat {
                state: 'S',
                pgid: 77
            }
        );
        assert!(parse_stat("42 (a").is_none());
        assert!(parse_stat("").is_none());
        assert!(parse_stat("42 (z) Z 1 x").is_none());
        assert!(parse_stat("42 (z) Z 1 5").unwrap().is_dead());
    }

    #[test]
    fn finds_nothing_for_an_unknown_id() {
        let none = job_processes(b"RUNNER_TRACKING_ID=nobody", &HashSet::new()).unwrap();
        assert!(none.is_empty());
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
