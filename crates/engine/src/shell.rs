//! The `shell:` of a `run:` step, turned into the command line GitHub's runner uses.
//!
//! GitHub writes the script to a file in `RUNNER_TEMP` (with the extension the interpreter
//! expects) and runs a command line built from a template with `{0}` for the file:
//!
//! | `shell:`    | command line                                  | file  |
//! |-------------|-----------------------------------------------|-------|
//! | (none)      | `bash -e {0}`, or `sh -e {0}` without bash     | `.sh` |
//! | `bash`      | `bash --noprofile --norc -eo pipefail {0}`    | `.sh` |
//! | `sh`        | `sh -e {0}`                                   | `.sh` |
//! | `python`    | `python {0}`                                  | `.py` |
//! | `pwsh`      | `pwsh -command ". '{0}'"`                      | `.ps1`|
//! | `powershell`| `powershell -command ". '{0}'"`                | `.ps1`|
//! | `cmd`       | `cmd /D /E:ON /V:OFF /S /C "CALL "{0}""`       | `.cmd`|
//! | other       | `COMMAND ARGS`, `{0}` replaced (or the file appended when there is no `{0}`; a bare known name takes its template) | none |
//!
//! A job without a shell on a container runs `sh -e {0}`: the runner cannot look for `bash`
//! inside the container beforehand, and neither does Hearth ([`Shell::resolve`] without a
//! lookup).

/// Why a `shell:` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// `shell: ''` or only spaces.
    #[error("the shell is empty")]
    Empty,
    /// A quote in the arguments is never closed.
    #[error("unterminated quote in shell arguments `{0}`")]
    UnterminatedQuote(String),
}

/// A resolved shell: the program and its argument template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shell {
    /// The program to run, e.g. `bash`.
    program: String,
    /// Which known shell it is, for the file extension and script fix-ups (`sh` for the
    /// default shell even when it runs with bash).
    kind: String,
    /// The argument template, with `{0}` for the script file (may be empty).
    arguments: String,
}

impl Shell {
    /// Resolves a step's `shell:` (after `defaults.run.shell` was applied). `find` says whether
    /// a program is on the job's `PATH`; `None` when that cannot be checked (a container),
    /// in which case a missing shell means `sh`.
    ///
    /// # Errors
    ///
    /// An empty shell.
    pub fn resolve(
        shell: Option<&str>,
        find: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<Shell, ShellError> {
        let Some(shell) = shell else {
            // GitHub: shell "sh" with sh's arguments, run by bash when there is one.
            let program = match find {
                Some(find) if find("bash") => "bash",
                _ => "sh",
            };
            return Ok(Shell {
                program: program.to_owned(),
                kind: "sh".to_owned(),
                arguments: default_arguments("sh").unwrap_or_default().to_owned(),
            });
        };
        let shell = shell.trim();
        if shell.is_empty() {
            return Err(ShellError::Empty);
        }
        let (program, arguments) = match shell.split_once(' ') {
            Some((program, arguments)) => (program, arguments.trim_start()),
            None => (shell, ""),
        };
        let arguments = if arguments.is_empty() {
            default_arguments(program).unwrap_or_default()
        } else {
            arguments
        };
        let shell = Shell {
            program: program.to_owned(),
            kind: program.to_owned(),
            arguments: arguments.to_owned(),
        };
        // Check the quoting now, so that a bad `shell:` fails before the script is written.
        shell.argv("x")?;
        Ok(shell)
    }

    /// The program to run.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The script file's extension, with its dot (`.sh`), or empty for unknown shells.
    pub fn extension(&self) -> &'static str {
        match self.kind.as_str() {
            "bash" | "sh" => ".sh",
            "pwsh" | "powershell" => ".ps1",
            "cmd" => ".cmd",
            "python" => ".py",
            _ => "",
        }
    }

    /// The script as the runner writes it: PowerShell gets `$ErrorActionPreference = 'stop'`
    /// before and an exit with `$LASTEXITCODE` after, `cmd` gets `@echo off`.
    pub fn script(&self, contents: &str) -> String {
        match self.kind.as_str() {
            "pwsh" | "powershell" => format!(
                "$ErrorActionPreference = 'stop'\n{contents}\nif ((Test-Path -LiteralPath variable:\\LASTEXITCODE)) {{ exit $LASTEXITCODE }}"
            ),
            "cmd" => format!("@echo off\n{contents}"),
            _ => contents.to_owned(),
        }
    }

    /// The command line for the script at `script_path`: the program, then the argument
    /// template (the path appended when it has no `{0}`) split as .NET splits a process's
    /// argument string (spaces separate, double quotes group), then `{0}` replaced in each
    /// argument — after splitting, so a path with spaces stays one argument.
    ///
    /// # Errors
    ///
    /// An unterminated quote in the arguments.
    pub fn argv(&self, script_path: &str) -> Result<Vec<String>, ShellError> {
        let template = if self.arguments.contains("{0}") {
            self.arguments.clone()
        } else {
            format!("{} {{0}}", self.arguments)
        };
        let arguments = split_arguments(&template)
            .ok_or_else(|| ShellError::UnterminatedQuote(self.arguments.clone()))?;
        let mut argv = Vec::with_capacity(arguments.len() + 1);
        argv.push(self.program.clone());
        argv.extend(arguments.iter().map(|a| a.replace("{0}", script_path)));
        Ok(argv)
    }
}

/// GitHub's argument templates for the shells it knows.
fn default_arguments(program: &str) -> Option<&'static str> {
    Some(match program {
        "bash" => "--noprofile --norc -eo pipefail {0}",
        "sh" => "-e {0}",
        "python" => "{0}",
        "pwsh" | "powershell" => "-command \". '{0}'\"",
        "cmd" => "/D /E:ON /V:OFF /S /C \"CALL \"{0}\"\"",
        _ => return None,
    })
}

/// Splits an argument string: whitespace separates arguments, double quotes group (and are
/// removed), `\"` is a literal quote. `None` for an unterminated quote.
fn split_arguments(s: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_argument = false;
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
                in_argument = true;
            }
            '"' => {
                quoted = !quoted;
                in_argument = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_argument {
                    args.push(std::mem::take(&mut current));
                    in_argument = false;
                }
            }
            c => {
                current.push(c);
                in_argument = true;
            }
        }
    }
    if quoted {
        return None;
    }
    if in_argument {
        args.push(current);
    }
    Some(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(shell: Option<&str>, has_bash: bool) -> Vec<String> {
        let find = move |p: &str| p != "bash" || has_bash;
        Shell::resolve(shell, Some(&find))
            .expect("resolves")
            .argv("/tmp/t/s.sh")
            .expect("argv")
    }

    #[test]
    fn command_lines_are_githubs() {
        assert_eq!(argv(None, true), ["bash", "-e", "/tmp/t/s.sh"]);
        assert_eq!(argv(None, false), ["sh", "-e", "/tmp/t/s.sh"]);
        assert_eq!(
            argv(Some("bash"), true),
            [
                "bash",
                "--noprofile",
                "--norc",
                "-eo",
                "pipefail",
                "/tmp/t/s.sh"
            ]
        );
        assert_eq!(argv(Some("sh"), true), ["sh", "-e", "/tmp/t/s.sh"]);
        assert_eq!(argv(Some("python"), true), ["python", "/tmp/t/s.sh"]);
        assert_eq!(
            argv(Some("pwsh"), true),
            ["pwsh", "-command", ". '/tmp/t/s.sh'"]
        );
        assert_eq!(argv(Some("perl {0}"), true), ["perl", "/tmp/t/s.sh"]);
        assert_eq!(
            argv(Some("bash -x {0} extra"), true),
            ["bash", "-x", "/tmp/t/s.sh", "extra"]
        );
        assert_eq!(
            argv(Some("node --no-warnings"), true),
            ["node", "--no-warnings", "/tmp/t/s.sh"]
        );
        assert_eq!(argv(Some("ruby"), true), ["ruby", "/tmp/t/s.sh"]);
        // Without a lookup (a container), no shell means sh.
        let shell = Shell::resolve(None, None).unwrap();
        assert_eq!(shell.argv("/s.sh").unwrap(), ["sh", "-e", "/s.sh"]);
    }

    #[test]
    fn extensions_and_fix_ups_follow_the_shell() {
        let ext = |s: Option<&str>| Shell::resolve(s, None).unwrap().extension();
        assert_eq!(ext(None), ".sh");
        assert_eq!(ext(Some("bash")), ".sh");
        assert_eq!(ext(Some("python")), ".py");
        assert_eq!(ext(Some("pwsh")), ".ps1");
        assert_eq!(ext(Some("perl {0}")), "");
        let pwsh = Shell::resolve(Some("pwsh"), None).unwrap();
        assert!(pwsh
            .script("Write-Host hi")
            .starts_with("$ErrorActionPreference = 'stop'\nWrite-Host hi\n"));
        assert_eq!(
            Shell::resolve(Some("bash"), None).unwrap().script("echo"),
            "echo"
        );
    }

    #[test]
    fn paths_with_spaces_stay_one_argument() {
        let bash = Shell::resolve(Some("bash"), None).unwrap();
        assert_eq!(bash.argv("/a b/s.sh").unwrap().last().unwrap(), "/a b/s.sh");
        let custom = Shell::resolve(Some("perl -w"), None).unwrap();
        assert_eq!(custom.argv("/a b/s").unwrap(), ["perl", "-w", "/a b/s"]);
    }

    #[test]
    fn bad_shells_are_errors() {
        assert_eq!(Shell::resolve(Some("  "), None), Err(ShellError::Empty));
        assert!(matches!(
            Shell::resolve(Some("bash \"-c {0}"), None),
            Err(ShellError::UnterminatedQuote(_))
        ));
    }
}
