//! One virtual user's HTTP/1.1 keep-alive connection to the gateway, as a browser tab or
//! a mobile app holds one: opened on first use, reused for every request, opened again
//! after the server closes it.
//!
//! goose gives each user a reqwest client, whose connection pool, middleware stack and
//! per-request URL parsing cost more CPU than the request itself at thousands of requests
//! per second (`./dev.sh bench-load` compares with wrk). A user sends one request at a
//! time, so it needs one connection, no pool and no task of its own: the request is
//! written and its response read in the user's own task, into buffers the connection
//! keeps (hyper's client connection runs beside the user as a second task, and every
//! request then crosses two channels and two wake-ups, a fifth of the generator's CPU
//! under perf).
//!
//! It speaks the HTTP/1.1 a gateway answers with: `Content-Length` or chunked bodies,
//! `Connection: close`, interim 1xx responses skipped, no body for 1xx/204/304.

use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use http::Method;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A response: status and whole body.
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// What went wrong, as the `error.type` of the request's CLIENT span.
pub type Failure = &'static str;

/// The most a response head may take; past it the response is refused.
const MAX_HEAD: usize = 64 * 1024;
/// The most headers a response head may have.
const MAX_HEADERS: usize = 64;

pub struct Conn {
    /// `host:port` to connect to, and the `Host` header.
    addr: String,
    timeout: Duration,
    stream: Option<TcpStream>,
    /// Bytes read and not yet consumed (the start of the next response, if any).
    buf: BytesMut,
    /// The request being written, reused between requests.
    out: Vec<u8>,
}

impl Clone for Conn {
    /// A copy shares the address, never the connection: it opens its own.
    fn clone(&self) -> Self {
        Conn {
            addr: self.addr.clone(),
            timeout: self.timeout,
            stream: None,
            buf: BytesMut::new(),
            out: Vec::new(),
        }
    }
}

/// A request as the workload builds it.
pub struct Outgoing<'a> {
    pub method: Method,
    pub path: &'a str,
    pub bearer: Option<&'a str>,
    /// The body and its content type.
    pub body: Option<(&'static str, Bytes)>,
    /// The W3C trace context to send, when the request has a span.
    pub traceparent: Option<&'a str>,
}

enum ConnError {
    Connect,
    /// The connection ended (or failed) before any byte of the response arrived.
    ClosedEarly,
    /// It ended, or failed, in the middle of the response.
    Incomplete,
    /// The response is not HTTP/1.1 this client understands.
    Malformed,
}

impl Conn {
    /// A connection to `host:port`, not opened yet; each request (connecting included)
    /// fails with `timeout` after `timeout`.
    pub fn new(host: &str, port: u16, timeout: Duration) -> anyhow::Result<Conn> {
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        anyhow::ensure!(
            !addr.contains(['\r', '\n', ' ']),
            "bad host {host:?} for an HTTP connection"
        );
        Ok(Conn {
            addr,
            timeout,
            stream: None,
            buf: BytesMut::with_capacity(16 * 1024),
            out: Vec::with_capacity(1024),
        })
    }

    /// Sends one request and reads the whole response.
    pub async fn send(&mut self, out: Outgoing<'_>) -> Result<Response, Failure> {
        if out.path.contains(['\r', '\n', ' ']) || !out.path.starts_with('/') {
            return Err("invalid_request");
        }
        match tokio::time::timeout(self.timeout, self.exchange(&out)).await {
            Ok(r) => r,
            Err(_) => {
                // The connection may still carry the late response: never reuse it.
                self.stream = None;
                Err("timeout")
            }
        }
    }

    async fn exchange(&mut self, out: &Outgoing<'_>) -> Result<Response, Failure> {
        self.encode(out);
        let reused = self.drop_if_closed();
        let mut result = self.once().await;
        // A kept-alive connection the server closed as the request went out, with no
        // byte of an answer: a GET is sent again on a new connection, as browsers do.
        // Anything else may have been acted on, so it fails.
        if reused && out.method == Method::GET && matches!(result, Err(ConnError::ClosedEarly)) {
            self.stream = None;
            result = self.once().await;
        }
        result.map_err(|e| {
            self.stream = None;
            match e {
                ConnError::Connect => "connect",
                ConnError::ClosedEarly | ConnError::Incomplete => "connection_closed",
                ConnError::Malformed => "request_failed",
            }
        })
    }

    /// Whether a connection is kept from an earlier request; one the server has closed
    /// since (end of stream already seen) is dropped first, so the request goes out on
    /// a new one. This looks only at what the event loop already knows: no system call.
    fn drop_if_closed(&mut self) -> bool {
        let Some(s) = &self.stream else {
            return false;
        };
        let mut probe = [0u8; 1];
        match s.try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            // End of stream, an error, or a byte nobody asked for: not reusable.
            _ => {
                self.stream = None;
                false
            }
        }
    }

    /// The request's bytes, into the reused buffer.
    fn encode(&mut self, out: &Outgoing<'_>) {
        let b = &mut self.out;
        b.clear();
        b.extend_from_slice(out.method.as_str().as_bytes());
        b.push(b' ');
        b.extend_from_slice(out.path.as_bytes());
        b.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        b.extend_from_slice(self.addr.as_bytes());
        if let Some(tp) = out.traceparent {
            b.extend_from_slice(b"\r\ntraceparent: ");
            b.extend_from_slice(tp.as_bytes());
        }
        if let Some(t) = out.bearer {
            b.extend_from_slice(b"\r\nauthorization: Bearer ");
            b.extend_from_slice(t.as_bytes());
        }
        match &out.body {
            Some((content_type, body)) => {
                b.extend_from_slice(b"\r\ncontent-type: ");
                b.extend_from_slice(content_type.as_bytes());
                b.extend_from_slice(
                    format!("\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes(),
                );
                b.extend_from_slice(body);
            }
            None if out.method == Method::POST || out.method == Method::PUT => {
                b.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
            }
            None => b.extend_from_slice(b"\r\n\r\n"),
        }
    }

    async fn once(&mut self) -> Result<Response, ConnError> {
        if self.stream.is_none() {
            let tcp = TcpStream::connect(&self.addr)
                .await
                .map_err(|_| ConnError::Connect)?;
            let _ = tcp.set_nodelay(true);
            self.stream = Some(tcp);
            self.buf.clear();
        }
        let stream = self.stream.as_mut().expect("connected just above");
        if stream.write_all(&self.out).await.is_err() {
            return Err(ConnError::ClosedEarly);
        }
        let (status, framing, close) = loop {
            let (status, framing, close, head) = read_head(stream, &mut self.buf).await?;
            self.buf.advance(head);
            // Interim answers (100 Continue, 103 Early Hints) precede the real one.
            if !(100..200).contains(&status) || status == 101 {
                break (status, framing, close);
            }
        };
        let is_head = self.out.starts_with(b"HEAD ");
        let body = if is_head || status == 204 || status == 304 || (100..200).contains(&status) {
            Bytes::new()
        } else {
            match framing {
                Framing::Length(n) => read_exact(stream, &mut self.buf, n).await?,
                Framing::Chunked => read_chunked(stream, &mut self.buf).await?,
                Framing::UntilClose => {
                    while read_more(stream, &mut self.buf).await? {}
                    self.buf.split().freeze()
                }
            }
        };
        if close || matches!(framing, Framing::UntilClose) {
            self.stream = None;
        }
        Ok(Response { status, body })
    }
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Reads more bytes into `buf`; false at end of stream.
async fn read_more(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<bool, ConnError> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    match stream.read_buf(buf).await {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(_) => Err(ConnError::Incomplete),
    }
}

/// Reads until a whole response head is in `buf`: its status, how its body is framed,
/// whether the server closes after it, and the head's length.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<(u16, Framing, bool, usize), ConnError> {
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut res = httparse::Response::new(&mut headers);
            match res.parse(buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = res.code.ok_or(ConnError::Malformed)?;
                    let mut framing = Framing::UntilClose;
                    let mut close = res.version == Some(0);
                    for h in res.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let n = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse().ok())
                                .ok_or(ConnError::Malformed)?;
                            if !matches!(framing, Framing::Chunked) {
                                framing = Framing::Length(n);
                            }
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            if h.value.to_ascii_lowercase().ends_with(b"chunked") {
                                framing = Framing::Chunked;
                            }
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            let v = h.value.to_ascii_lowercase();
                            if v.windows(5).any(|w| w == b"close") {
                                close = true;
                            }
                        }
                    }
                    return Ok((status, framing, close, n));
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                _ => return Err(ConnError::Malformed),
            }
        }
        // Nothing of the answer yet: a connection reset or closed now never answered.
        let nothing_yet = buf.is_empty();
        match read_more(stream, buf).await {
            Ok(true) => {}
            Ok(false) | Err(_) if nothing_yet => return Err(ConnError::ClosedEarly),
            Ok(false) => return Err(ConnError::Incomplete),
            Err(e) => return Err(e),
        }
    }
}

/// The next `n` bytes of the stream (some may be in `buf` already).
async fn read_exact(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    n: usize,
) -> Result<Bytes, ConnError> {
    if buf.capacity() < n {
        buf.reserve(n - buf.len());
    }
    while buf.len() < n {
        if !read_more(stream, buf).await? {
            return Err(ConnError::Incomplete);
        }
    }
    Ok(buf.split_to(n).freeze())
}

/// A chunked body, decoded: size lines, data, and the trailer section after the last.
async fn read_chunked(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<Bytes, ConnError> {
    let mut body = BytesMut::new();
    loop {
        let line = read_line(stream, buf).await?;
        let size = line.split(|&c| c == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or(ConnError::Malformed)?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            while !read_line(stream, buf).await?.is_empty() {}
            return Ok(body.freeze());
        }
        let data = read_exact(stream, buf, size + 2).await?;
        if &data[size..] != b"\r\n" {
            return Err(ConnError::Malformed);
        }
        body.extend_from_slice(&data[..size]);
    }
}

/// One CRLF-terminated line, without its CRLF.
async fn read_line(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<Bytes, ConnError> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf.split_to(i).freeze();
            buf.advance(2);
            return Ok(line);
        }
        if buf.len() > MAX_HEAD {
            return Err(ConnError::Malformed);
        }
        if !read_more(stream, buf).await? {
            return Err(ConnError::Incomplete);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server on loopback that answers each connection's requests with the given raw
    /// responses in turn (one per request head it reads), then closes the connection;
    /// it reports each request head it read.
    async fn server(
        per_conn: Vec<Vec<&'static [u8]>>,
    ) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for answers in per_conn {
                let (mut s, _) = l.accept().await.unwrap();
                let mut seen = Vec::new();
                for a in answers {
                    // Read one request head (and a body, if it says it has one).
                    loop {
                        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&seen[..end]).to_string();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length: "))
                                .map_or(0, |v| v.parse::<usize>().unwrap());
                            if seen.len() >= end + 4 + len {
                                seen.drain(..end + 4 + len);
                                tx.send(head).unwrap();
                                break;
                            }
                        }
                        let mut b = [0u8; 4096];
                        let n = s.read(&mut b).await.unwrap();
                        assert!(n > 0, "client closed mid-request");
                        seen.extend_from_slice(&b[..n]);
                    }
                    s.write_all(a).await.unwrap();
                }
            }
        });
        (port, rx)
    }

    fn get(path: &str) -> Outgoing<'_> {
        Outgoing {
            method: Method::GET,
            path,
            bearer: Some("tok"),
            body: None,
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        }
    }

    #[tokio::test]
    async fn reads_length_and_chunked_bodies_on_one_kept_alive_connection() {
        let (port, mut heads) = server(vec![vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n4\r\ndefg\r\n0\r\nTrailer: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ]])
        .await;
        let mut c = Conn::new("127.0.0.1", port, Duration::from_secs(5)).unwrap();
        let r = c.send(get("/a")).await.ok().unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"hello"[..]));
        let head = heads.recv().await.unwrap();
        assert!(head.starts_with("GET /a HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nauthorization: Bearer tok"), "{head}");
        assert!(head.contains("\r\ntraceparent: 00-0af7"), "{head}");
        let post = Outgoing {
            method: Method::POST,
            path: "/b",
            bearer: None,
            body: Some(("application/json", Bytes::from_static(b"{\"k\":1}"))),
            traceparent: None,
        };
        let r = c.send(post).await.ok().unwrap();
        assert_eq!((r.status, &r.body[..]), (201, &b"abcdefg"[..]));
        let head = heads.recv().await.unwrap();
        assert!(head.contains("content-length: 7"), "{head}");
        let r = c.send(get("/c")).await.ok().unwrap();
        assert_eq!((r.status, r.body.len()), (204, 0));
        // All three on the one connection the server accepted.
        assert_eq!(
            heads.recv().await.unwrap().lines().next(),
            Some("GET /c HTTP/1.1")
        );
    }

    #[tokio::test]
    async fn a_closed_keep_alive_connection_is_replaced_and_a_get_sent_again() {
        // The first connection answers once and says it closes; the second answers once
        // and closes without saying so; the third answers the retried GET.
        let (port, mut heads) = server(vec![
            vec![b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n1"],
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"],
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n3"],
        ])
        .await;
        let mut c = Conn::new("127.0.0.1", port, Duration::from_secs(5)).unwrap();
        for want in [b"1", b"2", b"3"] {
            let r = c.send(get("/x")).await.ok().unwrap();
            assert_eq!(&r.body[..], &want[..]);
        }
        for _ in 0..3 {
            heads.recv().await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_truncated_or_garbled_answer_fails_with_its_kind() {
        let (port, _heads) = server(vec![
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"],
            vec![b"SMTP ready\r\n\r\n"],
        ])
        .await;
        let mut c = Conn::new("127.0.0.1", port, Duration::from_secs(5)).unwrap();
        assert_eq!(c.send(get("/x")).await.err(), Some("connection_closed"));
        assert_eq!(c.send(get("/x")).await.err(), Some("request_failed"));
        assert_eq!(c.send(get("bad path")).await.err(), Some("invalid_request"));
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_and_nothing_listening_fails_to_connect() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let mut c = Conn::new("127.0.0.1", port, Duration::from_millis(200)).unwrap();
        assert_eq!(c.send(get("/x")).await.err(), Some("timeout"));
        drop(l);
        assert_eq!(c.send(get("/x")).await.err(), Some("connect"));
    }
}
