//! Rate limits in Redis, per OWASP's authentication guidance:
//!
//! - every login attempt counts against the client address (`AUTH_LOGIN_IP_LIMIT` per
//!   window), which slows one machine guessing many accounts;
//! - failed logins count against the account *from that address*
//!   (`AUTH_LOGIN_ACCOUNT_LIMIT`), so someone guessing a password locks out only
//!   themselves: the owner, signing in from elsewhere, still gets in. A success clears
//!   the counter;
//! - registrations count against the address (`AUTH_REGISTER_IP_LIMIT`): each one costs
//!   an argon2 hash.
//!
//! Over a limit: 429 with `Retry-After`. If Redis is down the limiter fails open
//! (requests still work, a warning is logged and the span says `cache.bypassed`):
//! locking every user out because a cache died would be the worse outage.

use telemetry::attrs;

use crate::AppState;
use crate::error::{ApiError, Result};

/// Lets the attempt through when Redis cannot count it (and says so on the span).
fn bypass(e: impl std::fmt::Display) -> Result<()> {
    telemetry::set_current_attribute(attrs::CACHE_BYPASSED, true);
    tracing::warn!(error = %e, "rate limiter unavailable; allowing the attempt");
    Ok(())
}

fn too_many(what: &str, retry_after: u64) -> ApiError {
    ApiError::TooManyRequests {
        message: format!("too many {what}; retry in {retry_after} s"),
        retry_after_secs: retry_after,
    }
}

fn failures_key(ip: &str, username: &str) -> String {
    format!("rl:fail:{}:{ip}", username.to_lowercase())
}

/// Counts one login attempt from `ip` and refuses it if that address, or this account
/// from that address, is over its limit.
pub async fn check_login(state: &AppState, ip: &str, username: &str) -> Result<()> {
    let s = &state.settings;
    match state
        .cache
        .hit(&format!("rl:ip:{ip}"), s.login_window_secs)
        .await
    {
        Ok((count, retry)) if count > s.login_ip_limit => {
            return Err(too_many("login attempts from this address", retry));
        }
        Ok(_) => {}
        Err(e) => return bypass(e),
    }
    match state.cache.get(&failures_key(ip, username)).await {
        Ok(Some(n)) if n.parse::<u64>().unwrap_or(0) >= s.login_account_limit => Err(too_many(
            "failed logins for this account from this address",
            s.login_window_secs,
        )),
        Ok(_) => Ok(()),
        Err(e) => bypass(e),
    }
}

/// Records the outcome of a password check.
pub async fn record_login(state: &AppState, ip: &str, username: &str, ok: bool) {
    let key = failures_key(ip, username);
    let r = if ok {
        state.cache.del(&[&key]).await.map(|_| ())
    } else {
        state
            .cache
            .hit(&key, state.settings.login_window_secs)
            .await
            .map(|_| ())
    };
    if let Err(e) = r {
        let _ = bypass(e);
    }
}

/// Counts one registration from `ip`.
pub async fn check_register(state: &AppState, ip: &str) -> Result<()> {
    let s = &state.settings;
    match state
        .cache
        .hit(&format!("rl:reg:{ip}"), s.register_window_secs)
        .await
    {
        Ok((count, retry)) if count > s.register_ip_limit => {
            Err(too_many("registrations from this address", retry))
        }
        Ok(_) => Ok(()),
        Err(e) => bypass(e),
    }
}
