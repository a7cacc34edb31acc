//! The part of Azure's Block Blob API that the toolkit's `BlockBlobClient` uploads with, to the
//! signed URL a service handed out:
//! - Put Blob: `PUT` with `x-ms-blob-type: BlockBlob` and the whole content (`uploadFile` of a
//!   file up to its single-shot size);
//! - Put Block: `PUT ?comp=block&blockid=<base64>` with one block (`uploadFile` of a larger
//!   file, `uploadStream` always), blocks in parallel and in any order;
//! - Put Block List: `PUT ?comp=blocklist` with `<BlockList><Latest>id</Latest>...` in XML:
//!   the blob is the listed blocks in that order.
//!
//! Each upload is staged in a folder of its own under the staging root (one file per block,
//! each written apart and renamed in whole) and made into one file when complete, which the
//! service then moves where it keeps it (on the same file system: a rename). Staged uploads an
//! hour old are removed on open.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::AsyncWriteExt;

use crate::{full, respond, Body};

/// How old a staged upload must be before `Staging::open` removes it.
const STALE: Duration = Duration::from_secs(3600);
/// The most bytes of a block list.
const MAX_BLOCK_LIST: usize = 4 << 20;
/// The most blocks of one blob, as Azure allows.
const MAX_BLOCKS: usize = 50_000;

/// What an upload request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    PutBlob,
    PutBlock(String),
    PutBlockList,
}

/// Why an upload request is refused, answered as Azure answers (`<Error><Code>`).
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the blob would be larger than {0} bytes")]
    TooLarge(u64),
    #[error("the block list names a block that was not uploaded")]
    MissingBlock,
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BlobError {
    /// The answer Azure gives for it.
    pub fn response(&self) -> Response<Body> {
        let (status, code) = match self {
            BlobError::BadRequest(_) => (StatusCode::BAD_REQUEST, "InvalidInput"),
            BlobError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "RequestBodyTooLarge"),
            BlobError::MissingBlock => (StatusCode::BAD_REQUEST, "InvalidBlockList"),
            BlobError::Io { .. } => {
                tracing::error!("blob upload: {self}");
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            }
        };
        error(status, code, &self.to_string())
    }
}

/// An error as Azure writes one.
pub fn error(status: StatusCode, code: &'static str, message: &str) -> Response<Body> {
    let escaped = quick_xml::escape::escape(message);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{escaped}</Message></Error>"
    );
    let mut response = respond(status, full(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    headers.insert("x-ms-error-code", HeaderValue::from_static(code));
    response
}

/// The answer to an upload request that succeeded.
pub fn created() -> Response<Body> {
    let mut response = respond(StatusCode::CREATED, full(Bytes::new()));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

/// The upload operation `request` asks for; `None` when it is no upload (a `GET`, ...).
pub fn operation<B>(request: &Request<B>) -> Result<Option<Operation>, BlobError> {
    if request.method() != Method::PUT {
        return Ok(None);
    }
    match crate::query_value(request, "comp").as_deref() {
        None => {
            let kind = request
                .headers()
                .get("x-ms-blob-type")
                .and_then(|v| v.to_str().ok());
            match kind {
                Some("BlockBlob") => Ok(Some(Operation::PutBlob)),
                _ => Err(BlobError::BadRequest(
                    "only block blobs (x-ms-blob-type: BlockBlob) are taken".into(),
                )),
            }
        }
        Some("block") => match crate::query_value(request, "blockid") {
            Some(id) if !id.is_empty() && id.len() <= 1024 => Ok(Some(Operation::PutBlock(id))),
            _ => Err(BlobError::BadRequest("a block needs a blockid".into())),
        },
        Some("blocklist") => Ok(Some(Operation::PutBlockList)),
        Some(other) => Err(BlobError::BadRequest(format!(
            "comp={other} is not supported"
        ))),
    }
}

/// The block ids of a Put Block List body, in order.
pub fn parse_block_list(xml: &[u8]) -> Result<Vec<String>, BlobError> {
    use quick_xml::events::Event;
    let bad = |why: String| BlobError::BadRequest(format!("the block list is not valid: {why}"));
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut ids = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(|e| bad(e.to_string()))? {
            Event::Start(start) => {
                path.push(start.name().as_ref().to_vec());
                text.clear();
            }
            Event::Text(content) => {
                text.push_str(&content.decode().map_err(|e| bad(e.to_string()))?);
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let in_list = path.last().is_some_and(|p| p == b"BlockList");
                if in_list && matches!(&name[..], b"Latest" | b"Uncommitted" | b"Committed") {
                    ids.push(text.trim().to_owned());
                    if ids.len() > MAX_BLOCKS {
                        return Err(bad(format!("more than {MAX_BLOCKS} blocks")));
                    }
                }
                text.clear();
            }
            Event::Eof if path.is_empty() => break,
            Event::Eof => return Err(bad("it ends inside an element".into())),
            _ => {}
        }
    }
    Ok(ids)
}

/// Where uploads are staged.
#[derive(Debug)]
pub struct Staging {
    root: PathBuf,
    /// Numbers the files being written, so that requests repeated or overlapping (a client's
    /// retry) never write into one file together: each writes its own, renamed when whole.
    next: std::sync::atomic::AtomicU64,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BlobError + 'a {
    move |source| BlobError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// A block's file name: its id in hex (ids are base64, whose `/` no file name holds).
fn block_file(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

impl Staging {
    /// The staging root `root` (made if missing), without what is left of uploads an hour
    /// old.
    pub fn open(root: &Path) -> Result<Staging, BlobError> {
        std::fs::create_dir_all(root).map_err(io("cannot create", root))?;
        let entries = std::fs::read_dir(root).map_err(io("cannot read", root))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE);
            if old {
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                if let Err(e) = removed {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a staged upload");
                }
            }
        }
        Ok(Staging {
            root: root.to_owned(),
            next: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn blocks(&self, upload: &str) -> PathBuf {
        self.root.join(format!("{upload}.blocks"))
    }

    /// A file of its own for one request on `upload`.
    fn fresh(&self, upload: &str) -> PathBuf {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.root
            .join(format!("{upload}.{}-{n}.part", std::process::id()))
    }

    /// Runs one upload request for `upload` (a name of letters, digits, `-` and `_`) of at
    /// most `limit` bytes: `Some((file, size))` once the blob is whole (Put Blob, Put Block
    /// List), for the caller to move away; `None` after a block.
    pub async fn apply(
        &self,
        upload: &str,
        operation: Operation,
        body: Incoming,
        limit: u64,
    ) -> Result<Option<(PathBuf, u64)>, BlobError> {
        if upload.is_empty()
            || !upload
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(BlobError::BadRequest("bad upload name".into()));
        }
        match operation {
            Operation::PutBlob => {
                let path = self.fresh(upload);
                let size = match receive(body, &path, limit).await {
                    Ok(size) => size,
                    Err(e) => {
                        let _ = tokio::fs::remove_file(&path).await;
                        return Err(e);
                    }
                };
                self.discard_blocks(upload).await;
                Ok(Some((path, size)))
            }
            Operation::PutBlock(id) => {
                let folder = self.blocks(upload);
                tokio::fs::create_dir_all(&folder)
                    .await
                    .map_err(io("cannot create", &folder))?;
                let part = self.fresh(upload);
                let received = receive(body, &part, limit).await;
                let block = folder.join(block_file(&id));
                let kept = match received {
                    Ok(_) => tokio::fs::rename(&part, &block)
                        .await
                        .map_err(io("cannot move", &part)),
                    Err(e) => Err(e),
                };
                if kept.is_err() {
                    let _ = tokio::fs::remove_file(&part).await;
                }
                kept.map(|()| None)
            }
            Operation::PutBlockList => {
                let xml = http_body_util::Limited::new(body, MAX_BLOCK_LIST)
                    .collect()
                    .await
                    .map_err(|e| BlobError::BadRequest(format!("cannot read the block list: {e}")))?
                    .to_bytes();
                let ids = parse_block_list(&xml)?;
                let made = self.assemble(upload, &ids, limit).await?;
                self.discard_blocks(upload).await;
                Ok(Some(made))
            }
        }
    }

    /// The blocks `ids` of `upload`, one after the other, in its blob file.
    async fn assemble(
        &self,
        upload: &str,
        ids: &[String],
        limit: u64,
    ) -> Result<(PathBuf, u64), BlobError> {
        let folder = self.blocks(upload);
        let path = self.fresh(upload);
        let made = self.concatenate(&folder, ids, &path, limit).await;
        if made.is_err() {
            let _ = tokio::fs::remove_file(&path).await;
        }
        made.map(|size| (path, size))
    }

    /// Writes the blocks `ids` of `folder` into `path`, one after the other; the size.
    async fn concatenate(
        &self,
        folder: &Path,
        ids: &[String],
        path: &Path,
        limit: u64,
    ) -> Result<u64, BlobError> {
        let mut out = tokio::fs::File::create(path)
            .await
            .map_err(io("cannot create", path))?;
        let mut size = 0u64;
        for id in ids {
            let block = folder.join(block_file(id));
            let mut file = match tokio::fs::File::open(&block).await {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(BlobError::MissingBlock)
                }
                Err(e) => return Err(io("cannot open", &block)(e)),
            };
            size += tokio::io::copy(&mut file, &mut out)
                .await
                .map_err(io("cannot copy", &block))?;
            if size > limit {
                return Err(BlobError::TooLarge(limit));
            }
        }
        out.sync_all().await.map_err(io("cannot sync", path))?;
        Ok(size)
    }

    async fn discard_blocks(&self, upload: &str) {
        let folder = self.blocks(upload);
        if let Err(e) = tokio::fs::remove_dir_all(&folder).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %folder.display(), error = %e, "cannot remove staged blocks");
            }
        }
    }

    /// Removes what is staged for `upload`, and `made`, the file [`Staging::apply`] gave
    /// back, when the service could not keep it.
    pub async fn discard(&self, upload: &str, made: &Path) {
        self.discard_blocks(upload).await;
        let _ = tokio::fs::remove_file(made).await;
    }
}

/// Writes a request body into the file `path`, refusing more than `limit` bytes; its size.
async fn receive(mut body: Incoming, path: &Path, limit: u64) -> Result<u64, BlobError> {
    let mut file = tokio::io::BufWriter::with_capacity(
        1 << 20,
        tokio::fs::File::create(path)
            .await
            .map_err(io("cannot create", path))?,
    );
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| BlobError::BadRequest(format!("the upload broke off: {e}")))?;
        if let Some(data) = frame.data_ref() {
            size += data.len() as u64;
            if size > limit {
                return Err(BlobError::TooLarge(limit));
            }
            file.write_all(data)
                .await
                .map_err(io("cannot write", path))?;
        }
    }
    file.flush().await.map_err(io("cannot write", path))?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_list_gives_its_ids_in_order() {
        let xml = br#"<?xml version="1.0" encoding="utf-8"?>
<BlockList><Latest>AAA=</Latest><Uncommitted>Ym/+</Uncommitted><Latest> CCC= </Latest></BlockList>"#;
        assert_eq!(parse_block_list(xml).unwrap(), ["AAA=", "Ym/+", "CCC="]);
        assert!(parse_block_list(b"<BlockList><Latest>A</Latest>").is_err());
        assert_eq!(
            parse_block_list(b"<Other><Latest>A</Latest></Other>").unwrap(),
            Vec::<String>::new()
        );
    }

    fn put(query: &str, blob_type: Option<&str>) -> Request<()> {
        let mut builder = Request::builder()
            .method(Method::PUT)
            .uri(format!("/b/c/1{query}"));
        if let Some(kind) = blob_type {
            builder = builder.header("x-ms-blob-type", kind);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn uploads_are_told_apart_by_their_query() {
        assert_eq!(
            operation(&put("", Some("BlockBlob"))).unwrap(),
            Some(Operation::PutBlob)
        );
        assert!(operation(&put("", Some("AppendBlob"))).is_err());
        assert_eq!(
            operation(&put("?sig=x&comp=block&blockid=QUJD%2B", None)).unwrap(),
            Some(Operation::PutBlock("QUJD+".into()))
        );
        assert!(operation(&put("?comp=block", None)).is_err());
        assert_eq!(
            operation(&put("?comp=blocklist", None)).unwrap(),
            Some(Operation::PutBlockList)
        );
        assert!(operation(&put("?comp=appendblock", None)).is_err());
        let get = Request::builder().uri("/b/c/1").body(()).unwrap();
        assert_eq!(operation(&get).unwrap(), None);
    }

    #[test]
    fn block_files_hold_no_slash() {
        assert_eq!(block_file("a/+="), "612f2b3d");
    }
}
