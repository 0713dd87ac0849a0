//! One virtual user's HTTP/1.1 keep-alive connection to the gateway, as a browser tab or
//! a mobile app holds one: opened on first use, reused for every request, opened again
//! after the server closes it.
//!
//! goose gives each user a reqwest client, whose connection pool, middleware stack and
//! per-request URL parsing cost more CPU than the request itself at thousands of requests
//! per second (`./dev.sh bench-load` compares with wrk). A user sends one request at a
//! time, so it needs one connection and no pool: this is that, on hyper directly.

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// A response: status and whole body.
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// What went wrong, as the `error.type` of the request's CLIENT span.
pub type Failure = &'static str;

pub struct Conn {
    /// `host:port` to connect to.
    addr: String,
    authority: HeaderValue,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Clone for Conn {
    /// A copy shares the address, never the connection: it opens its own.
    fn clone(&self) -> Self {
        Conn {
            addr: self.addr.clone(),
            authority: self.authority.clone(),
            timeout: self.timeout,
            sender: None,
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

impl Conn {
    /// A connection to `host:port`, not opened yet; each request (connecting included)
    /// fails with `timeout` after `timeout`.
    pub fn new(host: &str, port: u16, timeout: Duration) -> anyhow::Result<Conn> {
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Conn {
            authority: HeaderValue::from_str(&addr)?,
            addr,
            timeout,
            sender: None,
        })
    }

    /// Sends one request and reads the whole response.
    pub async fn send(&mut self, out: Outgoing<'_>) -> Result<Response, Failure> {
        match tokio::time::timeout(self.timeout, self.exchange(&out)).await {
            Ok(r) => r,
            Err(_) => {
                // The connection may still carry the late response: never reuse it.
                self.sender = None;
                Err("timeout")
            }
        }
    }

    async fn exchange(&mut self, out: &Outgoing<'_>) -> Result<Response, Failure> {
        let reused = self.sender.as_mut().is_some_and(|s| !s.is_closed());
        let mut result = self.once(out).await;
        // A kept-alive connection the server closed between requests: the request was
        // never sent (hyper says `canceled`), so sending it again on a new one is safe.
        if reused && matches!(&result, Err(e) if e.is_canceled()) {
            self.sender = None;
            result = self.once(out).await;
        }
        result.map_err(|e| {
            self.sender = None;
            match e {
                ConnError::Connect => "connect",
                ConnError::Invalid => "invalid_request",
                ConnError::Http(e) if e.is_canceled() || e.is_incomplete_message() => {
                    "connection_closed"
                }
                ConnError::Http(_) => "request_failed",
            }
        })
    }

    async fn once(&mut self, out: &Outgoing<'_>) -> Result<Response, ConnError> {
        let authority = self.authority.clone();
        let sender = self.ready().await?;
        let mut req = Request::builder()
            .method(out.method.clone())
            .uri(out.path)
            .header(HOST, authority);
        if let Some(tp) = out.traceparent {
            req = req.header("traceparent", tp);
        }
        if let Some(t) = out.bearer {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match &out.body {
            Some((content_type, b)) => {
                req = req.header(CONTENT_TYPE, *content_type);
                Full::new(b.clone())
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body).map_err(|_| ConnError::Invalid)?;
        let res = sender.send_request(req).await.map_err(ConnError::Http)?;
        let status = res.status().as_u16();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(ConnError::Http)?
            .to_bytes();
        Ok(Response { status, body })
    }

    /// The open connection, ready for a request, or a new one.
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, ConnError> {
        if let Some(s) = &mut self.sender
            && s.ready().await.is_err()
        {
            self.sender = None;
        }
        if self.sender.is_none() {
            let tcp = tokio::net::TcpStream::connect(&self.addr)
                .await
                .map_err(|_| ConnError::Connect)?;
            let _ = tcp.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(ConnError::Http)?;
            // The connection's I/O runs beside the user; it ends when the sender is
            // dropped or the server closes.
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("connected just above"))
    }
}

enum ConnError {
    Connect,
    Invalid,
    Http(hyper::Error),
}

impl ConnError {
    fn is_canceled(&self) -> bool {
        matches!(self, ConnError::Http(e) if e.is_canceled())
    }
}
