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
//!
//! Each running hash needs its 19 MiB of working memory. During a burst it is kept and
//! passed on, one buffer per core, to the hashes waiting: allocated afresh per hash,
//! every login paid for the kernel zeroing 19 MiB of new pages, and a burst of sign-ins
//! held several freed buffers at once before the allocator gave them back (auth peaked
//! at 105 MiB during `load --users 500`'s sign-in phase on Docker). With nobody waiting
//! the buffer goes back to the allocator, so an idle auth does not hold 38 MiB.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;
use tracing::Instrument;

static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Working memory of hashes that have finished, for the ones waiting (at most one per
/// permit of [`HASHING`] is ever out at a time).
static MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Hashes running or waiting for a core.
static DEMAND: AtomicUsize = AtomicUsize::new(0);

/// Counts one hash in [`DEMAND`] for as long as it lives.
struct Demand;

impl Demand {
    fn new() -> Demand {
        DEMAND.fetch_add(1, Ordering::Relaxed);
        Demand
    }
}

impl Drop for Demand {
    fn drop(&mut self) {
        DEMAND.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs one argon2 computation on the blocking pool once a core is free for it.
async fn on_a_core<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let _demand = Demand::new();
    let _turn = HASHING.acquire().await?;
    Ok(tokio::task::spawn_blocking(f).await?)
}

/// Computes `argon`'s raw hash of `password` with `salt` (decoded bytes) into `out`, in
/// reused working memory.
fn raw_hash(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> anyhow::Result<()> {
    let need = argon.params().block_count();
    let taken = MEMORY.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let mut blocks = taken.unwrap_or_default();
    if blocks.len() < need {
        blocks.resize(need, Block::default());
    }
    let r = argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..need]);
    // Kept for a hash that waits; with none waiting (this one is counted), given back.
    if DEMAND.load(Ordering::Relaxed) > 1 {
        MEMORY
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(blocks);
    }
    r.map_err(|e| anyhow::anyhow!("argon2 failed: {e}"))
}

/// The PHC string of `password` with the default parameters and a fresh random salt.
fn hash_now(password: &[u8]) -> anyhow::Result<String> {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    let salt = SaltString::encode_b64(&raw).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let argon = Argon2::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    raw_hash(&argon, password, &raw, &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::default().ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| anyhow::anyhow!("{e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("{e}"))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to `phc` under the parameters `phc` names.
fn matches(password: &[u8], phc: &str) -> bool {
    let check = || -> Option<bool> {
        let h = PasswordHash::new(phc).ok()?;
        let argon = Argon2::new(
            Algorithm::try_from(h.algorithm).ok()?,
            h.version
                .map(Version::try_from)
                .transpose()
                .ok()?
                .unwrap_or_default(),
            Params::try_from(&h).ok()?,
        );
        let (salt, expected) = (h.salt?, h.hash?);
        let mut salt_buf = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_buf).ok()?;
        let mut out = vec![0u8; expected.len()];
        raw_hash(&argon, password, salt, &mut out).ok()?;
        // `Output`'s equality is constant-time.
        Some(Output::new(&out).ok()? == expected)
    };
    check().unwrap_or(false)
}

/// A PHC string for `password`.
pub async fn hash(password: String) -> anyhow::Result<String> {
    let span = tracing::info_span!(
        "auth.password_hash",
        otel.name = "auth.password_hash",
        otel.kind = "internal"
    );
    on_a_core(move || hash_now(password.as_bytes()))
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
        matches(password.as_bytes(), &stored) && known
    })
    .instrument(span)
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    /// One test, so no other hash runs beside the burst and keeps a buffer behind it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_agree_with_the_standard_phc_path_and_a_burst_keeps_nothing_after() {
        agrees_with_the_standard_phc_path();
        a_burst_hashes_right_and_holds_no_memory_after().await;
    }

    fn agrees_with_the_standard_phc_path() {
        // Made here, checked by the argon2 crate's own verifier.
        let mine = hash_now(b"correct horse").unwrap();
        let parsed = PasswordHash::new(&mine).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
        // Made by the crate (as seeded users' and existing accounts' hashes were),
        // checked here.
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(matches(b"correct horse", &theirs));
        assert!(!matches(b"correct horsE", &theirs));
        // Other parameters than the defaults are read from the string.
        let light = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, Some(24)).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        assert!(matches(b"pw", &light));
        assert!(!matches(b"pw2", &light));
        // Garbage never matches, and never panics.
        assert!(!matches(b"pw", "not a phc string"));
        assert!(!matches(b"pw", DECOY));
    }

    async fn a_burst_hashes_right_and_holds_no_memory_after() {
        // Ten sign-ins at once, two hashing at a time: each is right, and when the burst
        // is over no working memory is held.
        let hashes: Vec<_> = (0..10)
            .map(|i| tokio::spawn(hash(format!("pw{i}"))))
            .collect();
        let mut phcs = Vec::new();
        for h in hashes {
            phcs.push(h.await.unwrap().unwrap());
        }
        for (i, phc) in phcs.into_iter().enumerate() {
            assert!(verify(format!("pw{i}"), Some(phc.clone())).await);
            assert!(!verify(format!("pw{i}x"), Some(phc)).await);
        }
        assert_eq!(DEMAND.load(Ordering::Relaxed), 0);
        assert!(MEMORY.lock().unwrap().is_empty(), "nothing kept once idle");
    }
}
