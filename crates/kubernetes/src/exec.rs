//! Running a process in a container of a job Pod through the exec API, its output streamed.
//!
//! The websocket subprotocol a 1.20 API server speaks (`v4.channel.k8s.io`) cannot close
//! stdin alone: closing it closes the whole stream. So a process fed on stdin is told how many
//! bytes to read (`head -c N`) and the stdin half is kept open until the process has ended.

use std::future::Future;
use std::time::Duration;

use futures_util::FutureExt;

use hearth_backend::Stream;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{AttachParams, AttachedProcess};
use kube::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a process run through exec ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    /// `stop` fired first, and the process was signalled.
    Stopped,
}

/// Why an exec failed (not the process's own failure, which is an exit code).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("the exec API refused: {0}")]
    Api(#[from] kube::Error),
    #[error("the exec stream broke: {0}")]
    Stream(String),
    /// The container runtime could not run the command (no such program, no container).
    #[error("{0}")]
    NotRun(String),
}

/// Big enough that a chatty step is not read 1 KiB at a time (the client's default).
const BUFFER: usize = 64 * 1024;

/// Starts `argv` in `container` of `pod`.
pub async fn start(
    api: &Api<Pod>,
    pod: &str,
    container: &str,
    argv: &[String],
    stdin: bool,
) -> Result<AttachedProcess, ExecError> {
    let mut params = AttachParams::default()
        .container(container)
        .stdin(stdin)
        .stdout(true)
        .stderr(true);
    params.max_stdout_buf_size = Some(BUFFER);
    params.max_stderr_buf_size = Some(BUFFER);
    params.max_stdin_buf_size = Some(BUFFER);
    // Each exec is a round trip through the API server and the kubelet: the count per job is
    // what the one-step benchmark's ratio is made of.
    tracing::debug!(pod, container, argv = ?argv, "exec");
    Ok(api.exec(pod, argv.to_vec(), &params).await?)
}

/// Streams the output of `process` to `sink` until it ends, feeding it `input` first when
/// given (the stdin half stays open until the end, see the module). When `stop` fires,
/// `signal` is run (it stops the process) while the output is drained, for `grace` at most.
pub async fn stream(
    mut process: AttachedProcess,
    input: Option<&[u8]>,
    sink: &mut (dyn FnMut(Stream, &[u8]) + Send),
    stop: impl Future<Output = ()>,
    signal: impl Future<Output = ()>,
    grace: Duration,
) -> Result<Ended, ExecError> {
    let status = process
        .take_status()
        .ok_or_else(|| ExecError::Stream("no status channel".to_owned()))?;
    let mut stdout = process.stdout();
    let mut stderr = process.stderr();
    let mut stdin = process.stdin();
    if let (Some(input), Some(writer)) = (input, stdin.as_mut()) {
        writer
            .write_all(input)
            .await
            .map_err(|e| ExecError::Stream(format!("writing stdin: {e}")))?;
        writer
            .flush()
            .await
            .map_err(|e| ExecError::Stream(format!("writing stdin: {e}")))?;
    }
    let signal = signal.fuse();
    let deadline = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(stop, status, signal, deadline);
    let (mut out_buf, mut err_buf) = (vec![0u8; BUFFER], vec![0u8; BUFFER]);
    let mut status_seen: Option<Option<Status>> = None;
    let mut stopping = false;
    loop {
        if status_seen.is_some() && stdout.is_none() && stderr.is_none() {
            break;
        }
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buf) => match read {
                Some(n) => sink(Stream::Stdout, &out_buf[..n]),
                None => stdout = None,
            },
            read = read_some(&mut stderr, &mut err_buf) => match read {
                Some(n) => sink(Stream::Stderr, &err_buf[..n]),
                None => stderr = None,
            },
            ended = &mut status, if status_seen.is_none() => status_seen = Some(ended),
            () = &mut stop, if !stopping => {
                stopping = true;
                deadline.as_mut().reset(tokio::time::Instant::now() + grace);
            }
            () = &mut signal, if stopping => {}
            () = &mut deadline, if stopping => break,
        }
    }
    drop(stdin);
    if stopping {
        return Ok(Ended::Stopped);
    }
    Ok(Ended::Exited(exit_code(status_seen.flatten())?))
}

/// Reads what is there; `None` at the end (or when there is no such stream).
async fn read_some(
    reader: &mut Option<tokio::io::ReadHalf<tokio::io::SimplexStream>>,
    buf: &mut [u8],
) -> Option<usize> {
    match reader {
        Some(reader) => match reader.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

/// The exit code the exec's status says.
fn exit_code(status: Option<Status>) -> Result<i32, ExecError> {
    let status = status.ok_or_else(|| {
        ExecError::Stream("the exec ended without an exit status (the Pod went away?)".to_owned())
    })?;
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    let code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.trim().parse().ok());
    match code {
        Some(code) => Ok(code),
        None => {
            Err(ExecError::NotRun(status.message.unwrap_or_else(|| {
                "the command could not be run".to_owned()
            })))
        }
    }
}

/// What a short command of the backend's own printed, and how it ended.
pub struct Captured {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs a short command of the backend's own (files, signals) to its end, collecting at most
/// `limit` bytes of its stdout (more is an error: the caller bounds what it reads).
pub async fn capture(
    api: &Api<Pod>,
    pod: &str,
    container: &str,
    argv: &[String],
    input: Option<&[u8]>,
    limit: usize,
) -> Result<Captured, ExecError> {
    let process = start(api, pod, container, argv, input.is_some()).await?;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut overflow = false;
    let mut sink = |stream: Stream, chunk: &[u8]| match stream {
        Stream::Stdout if stdout.len() + chunk.len() > limit => overflow = true,
        Stream::Stdout => stdout.extend_from_slice(chunk),
        Stream::Stderr if stderr.len() < 64 * 1024 => stderr.extend_from_slice(chunk),
        Stream::Stderr => {}
    };
    let never = std::future::pending::<()>;
    let ended = stream(process, input, &mut sink, never(), never(), Duration::ZERO).await?;
    if overflow {
        return Err(ExecError::Stream(format!(
            "the command printed more than {limit} bytes"
        )));
    }
    let code = match ended {
        Ended::Exited(code) => code,
        Ended::Stopped => return Err(ExecError::Stream("stopped".to_owned())),
    };
    Ok(Captured {
        code,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    fn failure(reason: &str, message: &str) -> Status {
        Status {
            status: Some("Failure".into()),
            message: Some("command terminated with non-zero exit code".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some(reason.into()),
                    message: Some(message.into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn exit_codes_come_from_the_status() {
        let success = Status {
            status: Some("Success".into()),
            ..Default::default()
        };
        assert_eq!(exit_code(Some(success)).unwrap(), 0);
        assert_eq!(exit_code(Some(failure("ExitCode", "42"))).unwrap(), 42);
        let not_run = exit_code(Some(failure("Other", "x"))).unwrap_err();
        assert!(matches!(not_run, ExecError::NotRun(_)), "{not_run}");
        assert!(matches!(exit_code(None), Err(ExecError::Stream(_))));
    }
}
