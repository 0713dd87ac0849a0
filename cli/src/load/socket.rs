//! A virtual user's live messaging socket: opened with a ticket, written by the user,
//! read by a task of its own that hands acknowledgements back to the waiting sender and
//! times each message another user sent until it arrives here (delivery latency).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Frame;

use super::record::RecorderHandle;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What a sent frame came to: its sequence number, or the error frame's code.
type Answer = Result<i64, String>;
type Pending = Mutex<HashMap<String, oneshot::Sender<Answer>>>;

pub struct Live {
    sink: tokio::sync::Mutex<SplitSink<Ws, Frame>>,
    pending: Arc<Pending>,
}

impl Live {
    /// Opens the socket at `host:port` with `ticket`, as `me`; arrivals are timed from
    /// `started` (message bodies carry their send time, in µs since then).
    pub async fn open(
        host: &str,
        port: u16,
        ticket: &str,
        me: String,
        started: Instant,
        recorder: RecorderHandle,
    ) -> Result<Live, &'static str> {
        let url = format!("ws://{host}:{port}/api/messages/ws?ticket={ticket}");
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(30),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .map_err(|_| "timeout")?
        .map_err(|_| "connect")?;
        let (sink, stream) = ws.split();
        let pending: Arc<Pending> = Arc::default();
        tokio::spawn(read(stream, pending.clone(), me, started, recorder));
        Ok(Live {
            sink: tokio::sync::Mutex::new(sink),
            pending,
        })
    }

    /// Sends `frame` (whose client id is `id`) and waits for its acknowledgement.
    pub async fn send(&self, frame: String, id: String, timeout: Duration) -> Answer {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), tx);
        let written = self.sink.lock().await.send(Frame::Text(frame.into())).await;
        if written.is_err() {
            self.forget(&id);
            return Err("closed".into());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("closed".into()),
            Err(_) => {
                self.forget(&id);
                Err("timeout".into())
            }
        }
    }

    fn forget(&self, id: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// Reads the socket until it closes: acknowledgements and errors to their senders,
/// other users' messages timed.
async fn read(
    mut stream: SplitStream<Ws>,
    pending: Arc<Pending>,
    me: String,
    started: Instant,
    recorder: RecorderHandle,
) {
    while let Some(Ok(f)) = stream.next().await {
        let Frame::Text(t) = f else { continue };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
            continue;
        };
        let answer = |r: Answer| {
            if let Some(id) = v["id"].as_str()
                && let Some(tx) = pending.lock().unwrap_or_else(|e| e.into_inner()).remove(id)
            {
                let _ = tx.send(r);
            }
        };
        match v["type"].as_str() {
            Some("ack") => answer(Ok(v["seq"].as_i64().unwrap_or(0))),
            Some("error") => answer(Err(v["error"].as_str().unwrap_or("error").to_owned())),
            Some("message") if v["message"]["sender"].as_str() != Some(me.as_str()) => {
                let sent_us = v["message"]["body"]
                    .as_str()
                    .and_then(|b| b.rsplit_once('@'))
                    .and_then(|(_, us)| us.parse::<u64>().ok());
                if let Some(us) = sent_us {
                    let now = Instant::now().saturating_duration_since(started);
                    recorder.delivered(now.saturating_sub(Duration::from_micros(us)));
                }
            }
            _ => {}
        }
    }
    // Closed: whoever still waits learns it.
    pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// The HTTP status an error frame's code stands for, in the report.
pub fn status_of(code: &str) -> Option<u16> {
    match code {
        "closed" | "timeout" => None,
        "unauthorized" => Some(401),
        "forbidden" => Some(403),
        "not_found" => Some(404),
        "validation_failed" => Some(422),
        "rate_limited" => Some(429),
        "unavailable" => Some(503),
        "internal" => Some(500),
        _ => Some(400),
    }
}
