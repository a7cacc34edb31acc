//! The artifacts of a `hearth exec` run (act's `--artifact-server-path`): what
//! `@actions/artifact` 2 (artifacts v4, `actions/upload-artifact@v4` and later) speaks at
//! `ACTIONS_RESULTS_URL`.
//!
//! - Twirp `github.actions.results.api.v1.ArtifactService` (`hearth_blob::twirp`), under the
//!   job's runtime token: `CreateArtifact` (a signed upload link), `FinalizeArtifact` (size and
//!   digest), `ListArtifacts` (by name or id), `GetSignedArtifactURL` (a signed download
//!   link), `DeleteArtifact`;
//! - the zip uploaded to `/_blob/artifacts/<id>` with the Block Blob API
//!   (`hearth_blob::block`: the toolkit's `uploadStream` puts blocks of 8 MiB, then the list),
//!   and downloaded with a plain `GET` of the signed link.
//!
//! Artifacts are scoped to one run: the run backend id in the token's `scp` claim (see
//! [`RunTokens`]), which every call's `workflow_run_backend_id` must equal. A zip is kept as
//! `<folder>/<run>/<name>.zip`; the index is in memory, as the server lives as long as the run.

pub mod index;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hearth_blob::block::{self, Staging};
use hearth_blob::links::Key;
use hearth_blob::twirp::{self, Code};
use hearth_blob::{base_url, query_value, Answer, Body, Mounted};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::index::{check_name, check_run, Artifact, Index};

/// The Twirp service.
pub const SERVICE: &str = "github.actions.results.api.v1.ArtifactService";
const CALLS: &str = "/twirp/github.actions.results.api.v1.ArtifactService/";
/// Where zips are uploaded and downloaded: `/_blob/artifacts/<id>`.
const BLOBS: &str = "/_blob/artifacts/";
/// How long a link stays valid.
const LINK_VALIDITY: Duration = Duration::from_secs(3600);

/// Tells which run a job's runtime token belongs to, once it checked the token.
pub trait RunTokens: Send + Sync {
    /// The run backend id of `token`, or why it is refused (a message without the token).
    fn run_of(&self, token: &str) -> Result<String, String>;
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactsError {
    #[error("cannot make the artifacts folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot stage uploads: {0}")]
    Staging(#[from] block::BlobError),
    #[error("cannot make a signing key: {0}")]
    Key(String),
}

/// The artifact service: mount it in a server ([`Mounted`]).
pub struct Artifacts {
    folder: PathBuf,
    staging: Staging,
    key: Key,
    tokens: Arc<dyn RunTokens>,
    /// The most bytes one artifact may have.
    limit: u64,
    index: Mutex<Index>,
}

impl Artifacts {
    /// Artifacts kept under `folder` (made if missing), at most `limit` bytes each, for the
    /// tokens `tokens` accepts.
    pub fn open(
        folder: &Path,
        limit: u64,
        tokens: Arc<dyn RunTokens>,
    ) -> Result<Artifacts, ArtifactsError> {
        std::fs::create_dir_all(folder).map_err(|source| ArtifactsError::Folder {
            path: folder.to_owned(),
            source,
        })?;
        let staging = Staging::open(&folder.join(".staging"))?;
        let key = Key::random().map_err(|e| ArtifactsError::Key(e.to_string()))?;
        Ok(Artifacts {
            folder: folder.to_owned(),
            staging,
            key,
            tokens,
            limit,
            index: Mutex::default(),
        })
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let path = request.uri().path().to_owned();
        if let Some(id) = path.strip_prefix(BLOBS) {
            let Ok(id) = id.parse::<i64>() else {
                return block::error(StatusCode::NOT_FOUND, "BlobNotFound", "no such artifact");
            };
            return self.blob(request, id).await;
        }
        let Some(method) = twirp::method(&request, SERVICE).map(str::to_owned) else {
            return twirp::error(Code::NotFound, "no such method");
        };
        let Some(token) = twirp::bearer(&request) else {
            return denied(&method, Code::Unauthenticated, "no runtime token");
        };
        let run = match self.tokens.run_of(token) {
            Ok(run) => run,
            Err(why) => return denied(&method, Code::Unauthenticated, &why),
        };
        let base = base_url(&request);
        let call: Call = match twirp::read_json(request).await {
            Ok(call) => call,
            Err(answer) => return answer,
        };
        if call.workflow_run_backend_id != run {
            return denied(
                &method,
                Code::PermissionDenied,
                "the token is for another run",
            );
        }
        match method.as_str() {
            "CreateArtifact" => self.create(&call, &base),
            "FinalizeArtifact" => self.finalize(&call),
            "ListArtifacts" => self.list(&call),
            "GetSignedArtifactURL" => self.signed_url(&call, &base),
            "DeleteArtifact" => self.delete(&call).await,
            _ => twirp::error(Code::Unimplemented, "not supported here"),
        }
    }

    fn create(&self, call: &Call, base: &str) -> Response<Body> {
        if let Err(e) = check_name(&call.name).and(check_run(&call.workflow_run_backend_id)) {
            return twirp::error(Code::InvalidArgument, &e.to_string());
        }
        let mut index = self.index();
        let Some(artifact) = index.create(
            &call.workflow_run_backend_id,
            &call.workflow_job_run_backend_id,
            &call.name,
        ) else {
            return twirp::error(
                Code::AlreadyExists,
                &format!("an artifact named {:?} exists in this run", call.name),
            );
        };
        let id = artifact.id;
        let query = self
            .key
            .link_query(&format!("artifact-upload:{id}"), LINK_VALIDITY);
        twirp::ok(&json!({
            "ok": true,
            "signed_upload_url": format!("{base}{BLOBS}{id}?{query}"),
        }))
    }

    fn finalize(&self, call: &Call) -> Response<Body> {
        let mut index = self.index();
        let Some(id) = index
            .named(&call.workflow_run_backend_id, &call.name)
            .map(|a| a.id)
        else {
            return twirp::error(Code::NotFound, "no such artifact");
        };
        let Some(artifact) = index.get_mut(id) else {
            return twirp::error(Code::NotFound, "no such artifact");
        };
        let Some(uploaded) = artifact.uploaded else {
            return twirp::error(Code::FailedPrecondition, "nothing was uploaded");
        };
        if call.size.is_some_and(|size| size != uploaded as i64) {
            return twirp::error(
                Code::InvalidArgument,
                &format!("{uploaded} bytes were uploaded, not {:?}", call.size),
            );
        }
        artifact.finalized = true;
        artifact.digest = call.hash.clone();
        tracing::debug!(artifact = id, name = %artifact.name, size = uploaded, "artifact finalized");
        twirp::ok(&json!({ "ok": true, "artifact_id": id.to_string() }))
    }

    fn list(&self, call: &Call) -> Response<Body> {
        let index = self.index();
        let artifacts: Vec<serde_json::Value> = index
            .finalized(&call.workflow_run_backend_id)
            .filter(|a| call.name_filter.as_ref().is_none_or(|name| &a.name == name))
            .filter(|a| call.id_filter.is_none_or(|id| a.id == id))
            .map(listed)
            .collect();
        twirp::ok(&json!({ "artifacts": artifacts }))
    }

    fn signed_url(&self, call: &Call, base: &str) -> Response<Body> {
        let index = self.index();
        match index.named(&call.workflow_run_backend_id, &call.name) {
            Some(artifact) if artifact.finalized => {
                let id = artifact.id;
                let query = self
                    .key
                    .link_query(&format!("artifact-download:{id}"), LINK_VALIDITY);
                twirp::ok(&json!({ "signed_url": format!("{base}{BLOBS}{id}?{query}") }))
            }
            _ => twirp::error(Code::NotFound, "no such artifact"),
        }
    }

    async fn delete(&self, call: &Call) -> Response<Body> {
        let removed = {
            let mut index = self.index();
            let id = index
                .named(&call.workflow_run_backend_id, &call.name)
                .filter(|a| a.finalized)
                .map(|a| a.id);
            id.and_then(|id| index.remove(id))
        };
        let Some(artifact) = removed else {
            return twirp::error(Code::NotFound, "no such artifact");
        };
        let file = Index::file(&self.folder, &artifact);
        if let Err(e) = tokio::fs::remove_file(&file).await {
            tracing::warn!(path = %file.display(), error = %e, "cannot remove an artifact");
        }
        twirp::ok(&json!({ "ok": true, "artifact_id": artifact.id.to_string() }))
    }

    /// An upload (Block Blob `PUT`s) or a download (`GET`) of artifact `id` by its link.
    async fn blob(&self, request: Request<Incoming>, id: i64) -> Response<Body> {
        let download = matches!(*request.method(), Method::GET | Method::HEAD);
        let resource = if download {
            format!("artifact-download:{id}")
        } else {
            format!("artifact-upload:{id}")
        };
        let (expires, sig) = (
            query_value(&request, "expires"),
            query_value(&request, "sig"),
        );
        if let Err(e) = self
            .key
            .verify_link(&resource, expires.as_deref(), sig.as_deref())
        {
            tracing::warn!(request = %request.uri().path(), "artifact request refused: {e}");
            return block::error(
                StatusCode::FORBIDDEN,
                "AuthenticationFailed",
                &e.to_string(),
            );
        }
        let Some(artifact) = self.index().get(id).cloned() else {
            return block::error(StatusCode::NOT_FOUND, "BlobNotFound", "no such artifact");
        };
        if download {
            return self.download(&request, &artifact).await;
        }
        if artifact.finalized {
            return block::error(
                StatusCode::CONFLICT,
                "BlobImmutableDueToPolicy",
                "the artifact is finalized",
            );
        }
        let operation = match block::operation(&request) {
            Ok(Some(operation)) => operation,
            Ok(None) => {
                return block::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "UnsupportedHttpVerb",
                    "not allowed",
                )
            }
            Err(e) => return e.response(),
        };
        let upload = id.to_string();
        match self
            .staging
            .apply(&upload, operation, request.into_body(), self.limit)
            .await
        {
            Ok(None) => block::created(),
            Ok(Some((file, size))) => match self.keep(&artifact, &file).await {
                Ok(()) => {
                    if let Some(artifact) = self.index().get_mut(id) {
                        artifact.uploaded = Some(size);
                    }
                    block::created()
                }
                Err(e) => {
                    self.staging.discard(&upload, &file).await;
                    tracing::error!("cannot keep artifact {id}: {e}");
                    block::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalError",
                        "cannot keep the artifact",
                    )
                }
            },
            Err(e) => e.response(),
        }
    }

    /// Moves an uploaded zip where the artifact is kept.
    async fn keep(&self, artifact: &Artifact, file: &Path) -> std::io::Result<()> {
        let kept = Index::file(&self.folder, artifact);
        if let Some(parent) = kept.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(file, &kept).await
    }

    async fn download(&self, request: &Request<Incoming>, artifact: &Artifact) -> Response<Body> {
        if !artifact.finalized {
            return block::error(StatusCode::NOT_FOUND, "BlobNotFound", "no such artifact");
        }
        let path = Index::file(&self.folder, artifact);
        let opened = match tokio::fs::File::open(&path).await {
            Ok(file) => file.metadata().await.map(|m| (file, m.len())),
            Err(e) => Err(e),
        };
        match opened {
            Ok((file, size)) => hearth_blob::download::serve_file(request, file, size).await,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot read an artifact");
                block::error(
                    StatusCode::NOT_FOUND,
                    "BlobNotFound",
                    "the artifact is gone",
                )
            }
        }
    }
}

impl Mounted for Artifacts {
    fn prefixes(&self) -> &[&'static str] {
        &[CALLS, BLOBS]
    }

    fn handle(&self, request: Request<Incoming>) -> Answer<'_> {
        Box::pin(Artifacts::handle(self, request))
    }
}

/// Refuses a call, logging why (never the token).
fn denied(method: &str, code: Code, why: &str) -> Response<Body> {
    tracing::warn!(method, "artifact request refused: {why}");
    twirp::error(code, why)
}

/// An artifact as `ListArtifacts` gives it.
fn listed(artifact: &Artifact) -> serde_json::Value {
    let created = time::OffsetDateTime::from(artifact.created)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut value = json!({
        "workflow_run_backend_id": artifact.run,
        "workflow_job_run_backend_id": artifact.job,
        "database_id": artifact.id.to_string(),
        "name": artifact.name,
        "size": artifact.uploaded.unwrap_or(0).to_string(),
        "created_at": created,
    });
    if let Some(digest) = &artifact.digest {
        value["digest"] = json!(digest);
    }
    value
}

/// The fields of every call that this service reads (proto names; wrappers as their values).
#[derive(Deserialize)]
struct Call {
    #[serde(default)]
    workflow_run_backend_id: String,
    #[serde(default)]
    workflow_job_run_backend_id: String,
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "optional_int64")]
    size: Option<i64>,
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    name_filter: Option<String>,
    #[serde(default, deserialize_with = "optional_int64")]
    id_filter: Option<i64>,
}

fn optional_int64<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    twirp::int64(deserializer).map(Some)
}
