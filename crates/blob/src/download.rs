//! A file served to `GET` or `HEAD`, whole or by the `Range` asked for, streamed in 1 MiB
//! chunks.

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::{full, json_response, respond, Body};

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` of a `size`-byte file: the first and last byte.
pub fn byte_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let (start, end) = value.trim().strip_prefix("bytes=")?.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (size.checked_sub(n.min(size))?, size.checked_sub(1)?)
        }
        (start, "") => (start.parse().ok()?, size.checked_sub(1)?),
        (start, end) => (
            start.parse().ok()?,
            end.parse::<u64>().ok()?.min(size.checked_sub(1)?),
        ),
    };
    (start <= end && end < size).then_some((start, end))
}

/// What a ranged read yields: the bytes in chunks (`Sync`, as an HTTP body must be).
pub type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<Bytes>> + Send + Sync>>;

/// Answers `request` (a `GET` or `HEAD`) with `file` of `size` bytes.
pub async fn serve_file<B>(
    request: &Request<B>,
    mut file: tokio::fs::File,
    size: u64,
) -> Response<Body> {
    serve_ranges(request, size, |start, end| async move {
        file.seek(std::io::SeekFrom::Start(start)).await?;
        let chunks = tokio_util::io::ReaderStream::with_capacity(file.take(end - start), 1 << 20);
        Ok(Box::pin(chunks) as ByteStream)
    })
    .await
}

/// Answers `request` (a `GET` or `HEAD`) with `size` bytes that `read(start, end)` streams
/// from a range of, wherever they are (a file, an object in a bucket); `read` is called only
/// when there are bytes to send.
pub async fn serve_ranges<B, Read, Reading>(
    request: &Request<B>,
    size: u64,
    read: Read,
) -> Response<Body>
where
    Read: FnOnce(u64, u64) -> Reading,
    Reading: std::future::Future<Output = std::io::Result<ByteStream>>,
{
    let head = request.method() == Method::HEAD;
    if !(head || request.method() == Method::GET) {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"message": "not allowed"}),
        );
    }
    let range = request
        .headers()
        .get(header::RANGE)
        .and_then(|r| r.to_str().ok());
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, size),
        Some(value) => match byte_range(value, size) {
            Some((start, last)) => (StatusCode::PARTIAL_CONTENT, start, last + 1),
            None => {
                let mut response = json_response(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    &serde_json::json!({"message": "bad range"}),
                );
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                return response;
            }
        },
    };
    let body = if head || start == end {
        full(bytes::Bytes::new())
    } else {
        let chunks = match read(start, end).await {
            Ok(chunks) => chunks,
            Err(e) => {
                return json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &serde_json::json!({"message": e.to_string()}),
                )
            }
        };
        StreamBody::new(chunks.map_ok(Frame::data)).boxed()
    };
    let mut response = respond(status, body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1)) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges_read_as_rfc_9110_says() {
        for (value, size, expected) in [
            ("bytes=0-9", 100, Some((0, 9))),
            ("bytes=90-", 100, Some((90, 99))),
            ("bytes=-10", 100, Some((90, 99))),
            ("bytes=-200", 100, Some((0, 99))),
            ("bytes=50-500", 100, Some((50, 99))),
            ("bytes=100-", 100, None),
            ("bytes=9-0", 100, None),
            ("bytes=0-0", 0, None),
            ("items=0-1", 100, None),
        ] {
            assert_eq!(byte_range(value, size), expected, "{value} of {size}");
        }
    }
}
