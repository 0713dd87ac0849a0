//! Presence in Redis: a user is online while one of their sockets is open on some
//! replica. `online:<user>` is a sorted set of the replicas holding a socket of theirs,
//! each scored with the deadline its heartbeat last set (now + TTL). A replica that
//! closes the user's last socket there removes only itself; one that dies stops renewing
//! its deadline, which passes within the TTL. The user is online while any deadline is
//! ahead. Changes are pushed to everyone who shares a conversation with the user.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::AppState;
use crate::error::{ApiError, Result};

fn key(user: &str) -> String {
    format!("online:{user}")
}

fn ttl_ms(state: &AppState) -> u64 {
    state.hub.presence_ttl_secs * 1000
}

/// `user` opened a socket.
pub async fn online(state: &AppState, user: &str) {
    if let Err(e) = state
        .cache
        .zadd_until(&[key(user)], &state.hub.replica, ttl_ms(state))
        .await
    {
        tracing::warn!(%user, error = %e, "presence not recorded");
    }
    announce(state, user, true).await;
}

/// `user`'s last socket on this replica closed: this replica no longer holds them, and
/// they are offline unless another replica does.
pub async fn offline(state: &AppState, user: &str) {
    if let Err(e) = state.cache.zrem(&key(user), &state.hub.replica).await {
        tracing::warn!(%user, error = %e, "presence not cleared; it expires with its TTL");
        return;
    }
    match state.cache.count_live(&[&key(user)]).await {
        Ok(live) if live.first() == Some(&true) => {}
        _ => announce(state, user, false).await,
    }
}

async fn announce(state: &AppState, user: &str, online: bool) {
    let span = tracing::info_span!(
        "messaging.presence",
        otel.name = "messaging.presence",
        otel.kind = "internal"
    );
    let _ = tracing::Instrument::instrument(
        async {
            let peers = match crate::store::peers(&state.db, user).await {
                Ok(p) if !p.is_empty() => p,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(%user, error = %e, "presence change not announced");
                    return;
                }
            };
            let frame =
                serde_json::json!({"type": "presence", "user": user, "online": online}).to_string();
            let id = format!("presence:{user}");
            if let Err(e) = state.hub.publish("presence", id, None, peers, frame).await {
                tracing::debug!(error = %e, "presence change not delivered live");
            }
        },
        span,
    )
    .await;
}

/// Each user's presence.
pub async fn lookup(state: &AppState, users: &[&str]) -> Result<BTreeMap<String, bool>> {
    let keys: Vec<String> = users.iter().map(|u| key(u)).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let live = state
        .cache
        .count_live(&refs)
        .await
        .map_err(|e| ApiError::Unavailable(format!("presence is unavailable: {e}")))?;
    Ok(users
        .iter()
        .zip(live)
        .map(|(u, v)| ((*u).to_owned(), v))
        .collect())
}

/// Refreshes the presence of every user connected here, a third of the TTL apart, for
/// as long as the process runs: one pipelined round trip per beat, whatever the count.
pub fn heartbeat(state: AppState) {
    let every = Duration::from_secs((state.hub.presence_ttl_secs / 3).max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let users = state.hub.users();
            if users.is_empty() {
                continue;
            }
            let keys: Vec<String> = users.iter().map(|u| key(u)).collect();
            let span = tracing::info_span!(
                "messaging.heartbeat",
                otel.name = "messaging.heartbeat",
                otel.kind = "internal"
            );
            let r = tracing::Instrument::instrument(
                state
                    .cache
                    .zadd_until(&keys, &state.hub.replica, ttl_ms(&state)),
                span,
            )
            .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "presence heartbeat failed");
            }
        }
    });
}
