//! The live socket (`GET /api/messages/ws`), its single-use tickets, and presence.
//!
//! Frames are JSON objects with a `type`:
//!
//! - from the client: `send` (`conversation_id`, `body`, `id` = its client message id),
//!   `sync` (`conversation_id`, `since`: the messages after that sequence number),
//!   `read` (`conversation_id`, `seq`), `typing` (`conversation_id`), `ping`; any of them
//!   may carry `traceparent` and `tracestate`, continued by the frame's span;
//! - from the server: `ack` (`id`, `conversation_id`, `seq`, `duplicate`), `message`
//!   (`backfill: true` when it answers a `sync`; a live copy may arrive too: clients
//!   keep one per sequence number),
//!   `synced`, `typing`, `presence`, `pong`, and `error` (`id`, `error`, `message`,
//!   `trace_id`). A mistake gets an error frame; the socket stays open.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use common::{AuthUser, Json, Query};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, Result};
use crate::store;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ticket))
        .routes(routes!(socket))
        .routes(routes!(presence))
}

/// Seconds a ticket stays valid.
const TICKET_TTL: u64 = 30;
/// The largest frame answered; larger ones get an error frame.
pub const MAX_FRAME: usize = 64 * 1024;
/// The largest frame read at all; larger ones close the socket.
const HARD_MAX_FRAME: usize = 1024 * 1024;
/// How often the server pings a socket (the gateway closes one silent for 30 s).
const PING_EVERY: Duration = Duration::from_secs(20);
/// Messages one `sync` frame returns; ask again from the last one for more.
const SYNC_PAGE: i64 = 500;

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ticket {
    /// Pass as `ticket` to `GET /api/messages/ws`, once, within `expires_in` seconds.
    pub ticket: String,
    pub expires_in: u64,
}

fn ticket_key(t: &str) -> String {
    format!("ticket:{t}")
}

/// A single-use ticket for opening the socket, so the access token never appears in a
/// URL (or an access log).
#[utoipa::path(post, path = "/api/messages/ws-ticket", tag = "live",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "a ticket valid for 30 seconds, for one socket", body = Ticket),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 503, description = "Redis is unavailable; retry", body = common::ErrorBody)))]
async fn ticket(State(state): State<AppState>, user: AuthUser) -> Result<Json<Ticket>> {
    let t: String = {
        use rand::Rng as _;
        let bytes: [u8; 24] = rand::rng().random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    state
        .cache
        .set_ex(&ticket_key(&t), &user.username, TICKET_TTL)
        .await
        .map_err(|e| ApiError::Unavailable(format!("could not store the ticket: {e}")))?;
    Ok(Json(Ticket {
        ticket: t,
        expires_in: TICKET_TTL,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SocketParams {
    /// From `POST /api/messages/ws-ticket`. Without it, the access token goes in the
    /// `Sec-WebSocket-Protocol` header instead: `socialnet.v1, bearer.<token>`.
    #[param(pattern = "^[0-9a-f]{48}$")]
    pub ticket: Option<String>,
    /// Where the client left off, as `<conversation>:<seq>` pairs separated by commas (up
    /// to 100): right after the socket opens, the messages after each `seq` are sent
    /// (`backfill: true`), each conversation ending with a `synced` frame, as a `sync`
    /// frame would. Live messages already flow by then, so nothing falls in between.
    #[param(pattern = "^[0-9]{1,18}:[0-9]{1,18}(,[0-9]{1,18}:[0-9]{1,18}){0,99}$")]
    pub since: Option<String>,
}

/// The `since` parameter's `(conversation, seq)` pairs.
fn parse_since(s: &str) -> Result<Vec<(i64, i64)>> {
    let pairs: Vec<(i64, i64)> = s
        .split(',')
        .map(|pair| {
            let (c, q) = pair.split_once(':')?;
            Some((c.trim().parse().ok()?, q.trim().parse().ok()?))
        })
        .collect::<Option<_>>()
        .ok_or_else(|| {
            ApiError::validation(format!(
                "since is a list of <conversation>:<seq> pairs separated by commas, like 12:40,13:7 (got {s:?})"
            ))
        })?;
    if pairs.len() > 100 {
        return Err(ApiError::validation(format!(
            "since names at most 100 conversations (got {})",
            pairs.len()
        )));
    }
    Ok(pairs)
}

/// The subprotocol the socket speaks (and the server selects).
pub const PROTOCOL: &str = "socialnet.v1";

/// The access token offered as a `bearer.<token>` subprotocol, if any.
fn protocol_token(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| p.strip_prefix("bearer."))
        .map(str::to_owned)
}

/// Open the live socket (a WebSocket upgrade), authenticated by a ticket or by the
/// `bearer.<token>` subprotocol. See the frame types in the service's documentation.
#[utoipa::path(get, path = "/api/messages/ws", tag = "live", params(SocketParams),
    responses(
        (status = 101, description = "switched to the WebSocket protocol"),
        (status = 400, description = "not a WebSocket upgrade", body = common::ErrorBody),
        (status = 401, description = "the ticket is unknown, used or expired, or no ticket and no valid token", body = common::ErrorBody),
        (status = 422, description = "since is not a list of <conversation>:<seq> pairs", body = common::ErrorBody),
        (status = 503, description = "Redis is unavailable; retry", body = common::ErrorBody)))]
async fn socket(
    State(state): State<AppState>,
    Query(p): Query<SocketParams>,
    headers: http::HeaderMap,
    upgrade: std::result::Result<
        WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Result<Response> {
    let since = p
        .since
        .as_deref()
        .map(parse_since)
        .transpose()?
        .unwrap_or_default();
    let upgrade = upgrade.map_err(|e| {
        ApiError::BadRequest(
            "not_websocket",
            format!("this endpoint speaks WebSocket only: {e}"),
        )
    })?;
    let user = match (&p.ticket, protocol_token(&headers)) {
        (Some(ticket), _) => state
            .cache
            .get_del(&ticket_key(ticket))
            .await
            .map_err(|e| ApiError::Unavailable(format!("could not check the ticket: {e}")))?
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "the ticket is unknown, used or expired; get a new one from POST /api/messages/ws-ticket"
                        .into(),
                )
            })?,
        (None, Some(token)) => state.verifier.verify(&token).await?.username,
        (None, None) => {
            return Err(ApiError::Unauthorized(
                "open the socket with ?ticket= (from POST /api/messages/ws-ticket) or the subprotocols `socialnet.v1, bearer.<token>`"
                    .into(),
            ));
        }
    };
    telemetry::set_current_attribute(telemetry::attrs::USER_ID, user.clone());
    // The backfill runs after this request's span has ended: its spans start traces of
    // their own, linked to this one.
    let opened = telemetry::current_span_context();
    // Small I/O buffers (they grow for a large frame): an idle socket costs a few KiB
    // instead of the 128 KiB each that the defaults reserve.
    Ok(upgrade
        .protocols([PROTOCOL])
        .read_buffer_size(4096)
        .write_buffer_size(4096)
        .max_message_size(HARD_MAX_FRAME)
        .on_upgrade(move |ws| session(state, user, ws, since, opened)))
}

/// One socket, from upgrade to close.
async fn session(
    state: AppState,
    user: String,
    ws: WebSocket,
    since: Vec<(i64, i64)>,
    opened: telemetry::SpanContext,
) {
    let (id, mut outbox) = state.hub.connect(&user);
    crate::presence::online(&state, &user).await;
    let (mut tx, mut rx) = ws.split();
    // Registered first, backfilled second: a message sent in between arrives live (and
    // perhaps also in the backfill; clients keep one per sequence number).
    for (conversation, seq) in since {
        let frame = Inbound {
            kind: "sync".into(),
            conversation_id: Some(conversation),
            since: Some(seq),
            ..Inbound::default()
        };
        for reply in handle_frame(&state, &user, frame, Some(&opened)).await {
            if tx.send(Frame::Text(reply.into())).await.is_err() {
                state.hub.disconnect(&user, id);
                return;
            }
        }
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            frame = rx.next() => match frame {
                Some(Ok(Frame::Text(text))) => {
                    for reply in handle(&state, &user, text.as_str()).await {
                        if tx.send(Frame::Text(reply.into())).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Frame::Binary(_))) => {
                    let e = error_frame(None, "binary_frame", "frames are JSON text; binary frames are not read".into());
                    if tx.send(Frame::Text(e.into())).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => {}
                Some(Ok(Frame::Close(_)) | Err(_)) | None => break,
            },
            out = outbox.recv() => match out {
                Some(f) => {
                    if tx.send(Frame::Text(f.into())).await.is_err() {
                        break;
                    }
                }
                // The hub let go of this socket: it fell behind.
                None => break,
            },
            _ = ping.tick() => {
                if tx.send(Frame::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    if state.hub.disconnect(&user, id) {
        crate::presence::offline(&state, &user).await;
    }
}

/// A frame from the client, as far as its envelope goes.
#[derive(Debug, Default, Deserialize)]
struct Inbound {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    conversation_id: Option<i64>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    since: Option<i64>,
    #[serde(default)]
    seq: Option<i64>,
    #[serde(default)]
    traceparent: Option<String>,
    #[serde(default)]
    tracestate: Option<String>,
}

fn error_frame(id: Option<&str>, error: &str, message: String) -> String {
    serde_json::json!({
        "type": "error",
        "id": id,
        "error": error,
        "message": message,
        "trace_id": telemetry::current_trace_id(),
    })
    .to_string()
}

/// The replies to one text frame, in order.
async fn handle(state: &AppState, user: &str, text: &str) -> Vec<String> {
    if text.len() > MAX_FRAME {
        return vec![error_frame(
            None,
            "frame_too_large",
            format!(
                "frames are at most {MAX_FRAME} bytes (this one: {})",
                text.len()
            ),
        )];
    }
    let frame: Inbound = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            return vec![error_frame(
                None,
                "invalid_json",
                format!("a frame is a JSON object with a \"type\": {e}"),
            )];
        }
    };
    handle_frame(state, user, frame, None).await
}

/// The replies to one frame, answered in a SERVER span of its own; `link` joins it to
/// the trace that caused it, when that is not its parent.
async fn handle_frame(
    state: &AppState,
    user: &str,
    frame: Inbound,
    link: Option<&telemetry::SpanContext>,
) -> Vec<String> {
    // One trace per frame: the client's, when its frame names one.
    let span = tracing::info_span!(
        "messaging.ws.frame",
        otel.name = format!("WS {}", frame_name(&frame.kind)),
        otel.kind = "server"
    );
    let mut carrier = HashMap::new();
    if let Some(tp) = &frame.traceparent {
        carrier.insert("traceparent".to_owned(), tp.clone());
    }
    if let Some(ts) = &frame.tracestate {
        carrier.insert("tracestate".to_owned(), ts.clone());
    }
    if !carrier.is_empty() {
        let _ = span.set_parent(telemetry::propagation::extract_map(&carrier));
    }
    if let Some(l) = link {
        telemetry::add_link(&span, l);
    }
    span.set_attribute("network.protocol.name", "websocket");
    span.set_attribute(
        telemetry::attrs::WS_FRAME_TYPE,
        frame_name(&frame.kind).to_owned(),
    );
    span.set_attribute(telemetry::attrs::USER_ID, user.to_owned());
    if let Some(c) = frame.conversation_id {
        span.set_attribute(telemetry::attrs::MESSAGING_MESSAGE_CONVERSATION_ID, c);
    }
    let id = frame.id.clone();
    let result = answer(state, user, frame).instrument(span.clone()).await;
    match result {
        Ok(replies) => replies,
        Err(e) => {
            let (code, message) = (e.code(), e.client_message());
            telemetry::record_error(&span, code, message.clone());
            let _g = span.enter();
            vec![error_frame(id.as_deref(), code, message)]
        }
    }
}

/// The low-cardinality name of a frame type (anything unknown is `unknown`).
fn frame_name(kind: &str) -> &'static str {
    match kind {
        "send" => "send",
        "sync" => "sync",
        "read" => "read",
        "typing" => "typing",
        "ping" => "ping",
        _ => "unknown",
    }
}

fn need<T>(v: Option<T>, field: &str, kind: &str) -> Result<T> {
    v.ok_or_else(|| {
        ApiError::BadRequest("missing_field", format!("a {kind:?} frame needs {field:?}"))
    })
}

async fn answer(state: &AppState, user: &str, f: Inbound) -> Result<Vec<String>> {
    match f.kind.as_str() {
        "send" => {
            let conversation = need(f.conversation_id, "conversation_id", "send")?;
            let body = need(f.body.as_deref(), "body", "send")?;
            let client_id = need(f.id.as_deref(), "id", "send")?;
            let (m, duplicate) =
                crate::deliver::send(state, user, conversation, client_id, body).await?;
            Ok(vec![
                serde_json::json!({
                    "type": "ack",
                    "id": client_id,
                    "conversation_id": conversation,
                    "seq": m.seq,
                    "duplicate": duplicate,
                    "trace_id": telemetry::current_trace_id(),
                })
                .to_string(),
            ])
        }
        "sync" => {
            let conversation = need(f.conversation_id, "conversation_id", "sync")?;
            let since = f.since.unwrap_or(0).max(0);
            let missed = store::after(&state.db, user, conversation, since, SYNC_PAGE).await?;
            let last = missed.last().map(|m| m.seq).unwrap_or(since);
            let more = missed.len() as i64 == SYNC_PAGE;
            let mut out: Vec<String> = missed
                .iter()
                .map(|m| {
                    serde_json::json!({"type": "message", "message": m, "backfill": true})
                        .to_string()
                })
                .collect();
            out.push(
                serde_json::json!({"type": "synced", "conversation_id": conversation, "last_seq": last, "more": more})
                    .to_string(),
            );
            Ok(out)
        }
        "read" => {
            let conversation = need(f.conversation_id, "conversation_id", "read")?;
            let seq = need(f.seq, "seq", "read")?.max(0);
            let read_seq = store::mark_read(&state.db, user, conversation, seq).await?;
            Ok(vec![
                serde_json::json!({"type": "read", "conversation_id": conversation, "read_seq": read_seq})
                    .to_string(),
            ])
        }
        "typing" => {
            let conversation = need(f.conversation_id, "conversation_id", "typing")?;
            store::check_member(&state.db, user, conversation).await?;
            let others: Vec<String> = store::members(&state.db, conversation)
                .await?
                .into_iter()
                .filter(|m| m != user)
                .collect();
            let frame = serde_json::json!({"type": "typing", "conversation_id": conversation, "user": user})
                .to_string();
            // Typing is ephemeral: never stored, and lost without harm when Redis is down.
            let id = format!("typing:{conversation}:{user}");
            if let Err(e) = state
                .hub
                .publish("typing", id, Some(conversation), others, frame)
                .await
            {
                tracing::debug!(error = %e, "typing indicator not delivered");
            }
            Ok(Vec::new())
        }
        "ping" => Ok(vec![serde_json::json!({"type": "pong"}).to_string()]),
        other => Err(ApiError::BadRequest(
            "unknown_type",
            format!("unknown frame type {other:?}; known: send, sync, read, typing, ping"),
        )),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PresenceParams {
    /// Comma-separated usernames (up to 100).
    #[param(pattern = "^[a-z0-9_]{3,30}(,[a-z0-9_]{3,30}){0,99}$")]
    pub users: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Presence {
    /// Username → online.
    pub online: std::collections::BTreeMap<String, bool>,
}

/// Who of these users has a socket open now.
#[utoipa::path(get, path = "/api/messages/presence", tag = "live",
    security(("bearer" = [])), params(PresenceParams),
    responses(
        (status = 200, description = "each user's presence", body = Presence),
        (status = 400, description = "malformed request (JSON, query or path)", body = common::ErrorBody),
        (status = 401, description = "missing, expired or invalid access token", body = common::ErrorBody),
        (status = 422, description = "a name is not a username, or more than 100", body = common::ErrorBody),
        (status = 503, description = "Redis is unavailable; retry", body = common::ErrorBody)))]
async fn presence(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(p): Query<PresenceParams>,
) -> Result<Json<Presence>> {
    let users: Vec<&str> = p
        .users
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if users.is_empty() || users.len() > 100 {
        return Err(ApiError::validation(format!(
            "users lists 1 to 100 usernames (got {})",
            users.len()
        )));
    }
    for u in &users {
        store::check_username(u)?;
    }
    let online = crate::presence::lookup(&state, &users).await?;
    Ok(Json(Presence { online }))
}
