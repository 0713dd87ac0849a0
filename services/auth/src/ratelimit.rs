//! Fixed-window login rate limits in Redis: one counter per client IP and one per
//! account, each with its own limit. Over either limit: 429 with `Retry-After`.
//!
//! If Redis is down the limiter fails open (logins still work, a warning is logged and
//! the span says `cache.bypassed`): locking every user out because a cache died would be
//! the worse outage.

use telemetry::attrs;

use crate::AppState;
use crate::error::{ApiError, Result};

/// Counts one login attempt against both limits.
pub async fn check_login(state: &AppState, ip: &str, username: &str) -> Result<()> {
    let s = &state.settings;
    let checks = [
        (format!("rl:ip:{ip}"), s.login_ip_limit, "from this address"),
        (
            format!("rl:acct:{}", username.to_lowercase()),
            s.login_account_limit,
            "for this account",
        ),
    ];
    for (key, limit, what) in checks {
        match state.cache.hit(&key, s.login_window_secs).await {
            Ok((count, retry_after)) if count > limit => {
                return Err(ApiError::TooManyRequests {
                    message: format!("too many login attempts {what}; retry in {retry_after} s"),
                    retry_after_secs: retry_after,
                });
            }
            Ok(_) => {}
            Err(e) => {
                telemetry::set_current_attribute(attrs::CACHE_BYPASSED, true);
                tracing::warn!(error = %e, "rate limiter unavailable; allowing the attempt");
                return Ok(());
            }
        }
    }
    Ok(())
}
