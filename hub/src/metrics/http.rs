//! A tiny HTTP/1.1 responder for Prometheus: `GET /metrics` (and `HEAD`),
//! one request per connection (`Connection: close`).
//!
//! Bounded by construction: a request head larger than [`MAX_HEAD`] is
//! refused, each exchange must finish within [`EXCHANGE_TIMEOUT`], and at
//! most [`MAX_CONNECTIONS`] are served at once (further ones wait in the
//! listen backlog).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::debug;

/// Largest request head accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time allowed for reading a request and writing the answer.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// The Prometheus text format content type.
const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";

/// An HTTP response, before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code and reason phrase, e.g. `200 OK`.
    pub status: &'static str,
    /// Content-Type header value.
    pub content_type: &'static str,
    /// The body (its length is sent even for HEAD).
    pub body: String,
    /// True for HEAD: headers only.
    pub head_only: bool,
    /// Extra header line (without CRLF), e.g. `Allow: GET, HEAD`.
    pub extra: Option<&'static str>,
}

/// Serves until `shutdown` resolves. `metrics` renders the body.
pub async fn serve<F>(
    listener: TcpListener,
    metrics: Arc<F>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    F: Fn() -> String + Send + Sync + 'static,
{
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return Ok(());
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut shutdown => return Ok(()),
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let exchange =
                tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(stream, metrics.as_ref()));
            if let Ok(Err(e)) | Err(e) = exchange.await.map_err(std::io::Error::from) {
                debug!(%peer, cause = %e, "metrics request failed");
            }
            drop(permit);
        });
    }
}

async fn exchange<F: Fn() -> String>(mut stream: TcpStream, metrics: &F) -> std::io::Result<()> {
    let head = read_head(&mut stream).await?;
    let response = match head {
        Some(head) => respond(&head, metrics),
        None => plain(
            "431 Request Header Fields Too Large",
            "request head too large\n",
        ),
    };
    stream.write_all(&response.to_bytes()).await?;
    stream.shutdown().await
}

/// Reads until the blank line ending the head; `None` if it grows too big.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(Some(buf));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Some(buf));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// The answer to a request head.
pub fn respond<F: Fn() -> String>(head: &[u8], metrics: &F) -> Response {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return plain("400 Bad Request", "malformed request line\n");
    };
    if !version.starts_with("HTTP/1.") {
        return plain("400 Bad Request", "HTTP/1.x only\n");
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let mut r = plain("405 Method Not Allowed", "use GET\n");
            r.extra = Some("Allow: GET, HEAD");
            return r;
        }
    };
    let path = target.split('?').next().unwrap_or_default();
    let mut response = match path {
        "/metrics" => Response {
            status: "200 OK",
            content_type: METRICS_TYPE,
            body: metrics(),
            head_only: false,
            extra: None,
        },
        "/" => plain("200 OK", "hl7edge-hub: metrics are at /metrics\n"),
        _ => plain("404 Not Found", "not found; metrics are at /metrics\n"),
    };
    response.head_only = head_only;
    response
}

fn plain(status: &'static str, body: &str) -> Response {
    Response {
        status,
        content_type: TEXT_TYPE,
        body: body.to_owned(),
        head_only: false,
        extra: None,
    }
}

impl Response {
    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        if let Some(extra) = self.extra {
            head.push_str(extra);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> String {
        "hl7edge_queue_depth 3\n".into()
    }

    #[test]
    fn get_metrics_answers_with_the_prometheus_content_type() {
        let r = respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &body);
        assert_eq!(r.status, "200 OK");
        assert_eq!(r.content_type, METRICS_TYPE);
        let bytes = String::from_utf8(r.to_bytes()).unwrap();
        assert!(bytes.contains("Content-Length: 22\r\n"), "{bytes}");
        assert!(
            bytes.ends_with("\r\n\r\nhl7edge_queue_depth 3\n"),
            "{bytes}"
        );
    }

    #[test]
    fn head_sends_the_length_but_no_body() {
        let r = respond(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n", &body);
        let bytes = String::from_utf8(r.to_bytes()).unwrap();
        assert!(
            bytes.contains("Content-Length: 22") && bytes.ends_with("\r\n\r\n"),
            "{bytes}"
        );
    }

    #[test]
    fn other_paths_methods_and_garbage_get_their_status_codes() {
        assert_eq!(
            respond(b"GET /nope HTTP/1.1\r\n\r\n", &body).status,
            "404 Not Found"
        );
        let post = respond(b"POST /metrics HTTP/1.1\r\n\r\n", &body);
        assert_eq!(post.status, "405 Method Not Allowed");
        assert!(
            String::from_utf8(post.to_bytes())
                .unwrap()
                .contains("Allow: GET, HEAD\r\n")
        );
        assert_eq!(respond(b"\x00\x01", &body).status, "400 Bad Request");
        assert_eq!(
            respond(b"GET / SPDY/3\r\n\r\n", &body).status,
            "400 Bad Request"
        );
    }

    #[tokio::test]
    async fn the_server_answers_get_metrics_on_an_ephemeral_port() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::new(body), async {
            let _ = stopped.await;
        }));
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("hl7edge_queue_depth 3\n"), "{answer}");
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn an_oversized_request_head_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::new(body), std::future::pending()));
        let mut conn = TcpStream::connect(addr).await.unwrap();
        // Exactly one byte too many and no end of head: the server reads
        // all of it before answering, so the answer is not lost to a reset.
        let big = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        conn.write_all(&big.as_bytes()[..=MAX_HEAD]).await.unwrap();
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    }
}
