//! The job container's main process. It keeps the container alive while steps run through
//! `docker exec` (`tail -f /dev/null`, as act does), and first says on the container's log
//! whether the image has `bash`, a step's default shell then (as on GitHub). Asking that
//! through an exec of its own cost ~0.09 s per job on the project's machine (Docker starts a
//! process in the container); reading the answer from the log costs one request. Where the
//! log cannot be read (a logging driver that keeps nothing), the caller asks through an exec.

use std::time::Duration;

use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

/// What the sleeper writes before it sleeps.
const SAYS_BASH: &str = "hearth-bash=1";
const SAYS_NO_BASH: &str = "hearth-bash=0";
/// How long the answer may take (it comes within milliseconds of the start).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The job container's entrypoint.
pub(crate) fn entrypoint() -> Vec<String> {
    vec![
        "sh".to_owned(),
        "-c".to_owned(),
        format!(
            "if command -v bash >/dev/null 2>&1; then echo {SAYS_BASH}; else echo {SAYS_NO_BASH}; \
             fi; exec tail -f /dev/null"
        ),
    ]
}

/// Whether the started container's image has `bash`, as its sleeper said; `None` when its log
/// did not tell.
pub(crate) async fn has_bash(docker: &Docker, container: &str) -> Option<bool> {
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .build();
    let mut log = docker.logs(container, Some(options));
    let mut said = Vec::new();
    let read = async {
        // The first line, however the stream cuts it.
        while let Some(Ok(chunk)) = log.next().await {
            said.extend_from_slice(&chunk.into_bytes());
            if said.contains(&b'\n') {
                break;
            }
        }
    };
    tokio::time::timeout(ANSWER_TIMEOUT, read).await.ok()?;
    let line = said.split(|&b| b == b'\n').next()?;
    match std::str::from_utf8(line).ok()?.trim() {
        SAYS_BASH => Some(true),
        SAYS_NO_BASH => Some(false),
        _ => None,
    }
}
