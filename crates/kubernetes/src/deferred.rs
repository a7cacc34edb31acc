//! Small file writes held back until the next exec in the job container, which does them in a
//! preamble before its own work. Every exec is a round trip through the API server and the
//! kubelet; the engine writes the event file, empties the file-command files and writes each
//! step's script just before it runs, so a one-step job would spend five of its eight execs on
//! files. Held back, they ride along with the step's own exec.
//!
//! The contents travel as arguments of `sh -c` (in the exec request's URL), so only small
//! UTF-8 text without NUL bytes is held back; anything else is written at once, after what is
//! held back (the preamble of that write's exec).

use std::sync::Mutex;

use hearth_backend::JobPath;

/// What is held back in all (a file of more is written at once): the exec request's URL
/// carries it, each byte percent-encoded as up to three, and the client refuses a URL of more
/// than 64 KiB.
const MAX_TOTAL: usize = 16 * 1024;
const MAX_FILE: usize = MAX_TOTAL;

/// The preamble's exit code when it could not do the writes.
pub const PREAMBLE_FAILED: i32 = 197;

/// Reads its operations from the positional parameters (a count, then each as `w PATH TEXT` or
/// `e PATH`) and shifts them away, leaving the parameters of the script that follows.
const PREAMBLE: &str = r#"hearth_n=$1; shift
while [ "$hearth_n" -gt 0 ]; do
  hearth_n=$((hearth_n - 1))
  mkdir -p "${2%/*}" || exit 197
  case $1 in
  w) printf '%s' "$3" > "$2" && chmod 0666 "$2" || exit 197; shift 3 ;;
  *) if [ -s "$2" ] || [ ! -e "$2" ]; then : > "$2" && chmod 0666 "$2" || exit 197; fi; shift 2 ;;
  esac
done
"#;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// Write the text to the path (its folder made), open to any user.
    Write { path: String, text: String },
    /// Make the path an empty file unless it is one.
    Empty { path: String },
}

impl Op {
    fn path(&self) -> &str {
        match self {
            Op::Write { path, .. } | Op::Empty { path } => path,
        }
    }
}

/// The writes held back for one job container.
#[derive(Default)]
pub struct Deferred {
    ops: Mutex<Vec<Op>>,
}

impl Deferred {
    /// Holds back writing `contents` to `path`; false (nothing held) when it must be written
    /// at once: too large, or not text an argument can carry.
    pub fn write(&self, path: &JobPath, contents: &[u8]) -> bool {
        if contents.len() > MAX_FILE || contents.contains(&0) {
            return false;
        }
        let Ok(text) = std::str::from_utf8(contents) else {
            return false;
        };
        let Ok(mut ops) = self.ops.lock() else {
            return false;
        };
        // A later write of the same path replaces what was held for it.
        ops.retain(|op| op.path() != path.as_str());
        let held: usize = ops.iter().map(op_size).sum();
        if held + path.as_str().len() + text.len() > MAX_TOTAL {
            return false;
        }
        ops.push(Op::Write {
            path: path.as_str().to_owned(),
            text: text.to_owned(),
        });
        true
    }

    /// Holds back making `paths` empty files.
    pub fn empty(&self, paths: &[JobPath]) -> bool {
        let Ok(mut ops) = self.ops.lock() else {
            return false;
        };
        ops.retain(|op| !paths.iter().any(|p| p.as_str() == op.path()));
        ops.extend(paths.iter().map(|p| Op::Empty {
            path: p.as_str().to_owned(),
        }));
        true
    }

    /// Takes what is held back as `sh -c` script text to put before a script, and the
    /// parameters to put before that script's own. Empty when nothing is held back.
    pub fn take(&self) -> (String, Vec<String>) {
        let ops = match self.ops.lock() {
            Ok(mut ops) => std::mem::take(&mut *ops),
            Err(_) => Vec::new(),
        };
        preamble(ops)
    }
}

fn op_size(op: &Op) -> usize {
    match op {
        Op::Write { path, text } => path.len() + text.len(),
        Op::Empty { path } => path.len(),
    }
}

fn preamble(ops: Vec<Op>) -> (String, Vec<String>) {
    if ops.is_empty() {
        return (String::new(), Vec::new());
    }
    let mut args = vec![ops.len().to_string()];
    for op in ops {
        match op {
            Op::Write { path, text } => args.extend(["w".to_owned(), path, text]),
            Op::Empty { path } => args.extend(["e".to_owned(), path]),
        }
    }
    (PREAMBLE.to_owned(), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs the preamble with the host's `sh`, then `script`, in a scratch folder.
    fn run(deferred: &Deferred, script: &str, args: &[&str]) -> (i32, String) {
        let (prefix, mut argv) = deferred.take();
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{prefix}{script}"))
            .arg("test")
            .args(&argv)
            .output()
            .expect("sh runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    #[test]
    fn held_writes_are_done_before_the_script_and_leave_its_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| JobPath::new(format!("{}/{name}", dir.path().display()));
        let deferred = Deferred::default();
        let tricky = "a 'quoted' \"line\" with $HOME, `ticks`, \\n and\n%s%d\n";
        assert!(deferred.write(&at("sub/script.sh"), tricky.as_bytes()));
        assert!(deferred.write(&at("event.json"), b"{}"));
        std::fs::write(dir.path().join("full"), "left over").unwrap();
        assert!(deferred.empty(&[at("full"), at("cmd/new")]));
        // Replaced by a later write: only the last one is done.
        assert!(deferred.write(&at("event.json"), b"{\"a\":1}"));
        let (code, out) = run(&deferred, r#"printf '%s|' "$#" "$@""#, &["x", "y z"]);
        assert_eq!((code, out.as_str()), (0, "2|x|y z|"));
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("sub/script.sh"), tricky);
        assert_eq!(read("event.json"), "{\"a\":1}");
        assert_eq!(read("full"), "");
        assert_eq!(read("cmd/new"), "");
        // Taken: the next exec has no preamble.
        assert_eq!(deferred.take(), (String::new(), Vec::new()));
    }

    #[test]
    fn a_failed_write_ends_the_preamble_with_its_code() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let deferred = Deferred::default();
        let below_a_file = JobPath::new(format!("{}/file/x", dir.path().display()));
        assert!(deferred.write(&below_a_file, b"text"));
        let (code, out) = run(&deferred, "echo ran", &[]);
        assert_eq!((code, out.as_str()), (PREAMBLE_FAILED, ""));
    }

    #[test]
    fn what_an_argument_cannot_carry_is_not_held() {
        let deferred = Deferred::default();
        let path = JobPath::new("/__w/temp/x");
        assert!(!deferred.write(&path, b"nul\0byte"));
        assert!(!deferred.write(&path, &[0xff, 0xfe]));
        assert!(!deferred.write(&path, &vec![b'a'; MAX_FILE + 1]));
        let half = vec![b'a'; MAX_TOTAL / 2];
        assert!(deferred.write(&JobPath::new("/a"), &half));
        assert!(
            !deferred.write(&JobPath::new("/b"), &half),
            "past the total"
        );
        assert_eq!(deferred.take().1[0], "1");
    }
}
