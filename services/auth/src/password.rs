//! Password hashing with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes).
//!
//! Hashing is deliberately slow CPU work (tens of milliseconds), so it runs on Tokio's
//! blocking pool: on a worker thread it would stall every other request on that thread.
//! The `auth.password_hash` / `auth.password_verify` spans make that cost visible.
//!
//! At most one hash per core runs at a time; the rest wait their turn (the span covers
//! the wait). Unbounded, a burst of logins (hundreds of users signing in at once) runs
//! hundreds of hashes in parallel, starving every other thread of the process: Redis
//! and PostgreSQL calls then time out and unrelated requests fail with 503.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use tokio::sync::Semaphore;
use tracing::Instrument;

static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Runs one argon2 computation on the blocking pool once a core is free for it.
async fn on_a_core<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let _turn = HASHING.acquire().await?;
    Ok(tokio::task::spawn_blocking(f).await?)
}

/// A PHC string for `password`.
pub async fn hash(password: String) -> anyhow::Result<String> {
    let span = tracing::info_span!(
        "auth.password_hash",
        otel.name = "auth.password_hash",
        otel.kind = "internal"
    );
    on_a_core(move || {
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let salt = SaltString::encode_b64(&raw).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 failed: {e}"))
    })
    .instrument(span)
    .await?
}

/// A hash of nothing anyone knows, checked when the account does not exist, so a failed
/// login takes as long for an unknown user as for a wrong password.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29jaWFsbmV0ZGVjb3k$yJ5Q0G4j6lS0H1pQ0c8w0QhV5cS3R6Jb2u8y2Vt3y5U";

/// Whether `password` matches `phc` (or, with `None`, spends the same time and fails).
pub async fn verify(password: String, phc: Option<String>) -> bool {
    let span = tracing::info_span!(
        "auth.password_verify",
        otel.name = "auth.password_verify",
        otel.kind = "internal"
    );
    let known = phc.is_some();
    on_a_core(move || {
        let stored = phc.unwrap_or_else(|| DECOY.to_owned());
        match PasswordHash::new(&stored) {
            Ok(h) => {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
                    && known
            }
            Err(_) => false,
        }
    })
    .instrument(span)
    .await
    .unwrap_or(false)
}
