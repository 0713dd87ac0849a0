//! Loading (or creating, on the very first start) the token signing key.

use anyhow::Context as _;
use common::Db;
use common::tokens::{Jwks, SigningKey};

const ALL_KEYS: &str = "SELECT kid, pkcs8 FROM signing_keys ORDER BY created_at DESC, kid";
const INSERT_KEY: &str =
    "INSERT INTO signing_keys (kid, pkcs8) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// The newest key signs; every stored key is published, so tokens signed by an older
/// one (another replica's first start, a rotation) still verify.
pub async fn load(db: &Db) -> anyhow::Result<(SigningKey, Jwks)> {
    let mut rows: Vec<(String, Vec<u8>)> = sqlx::query_as(ALL_KEYS).fetch_all(&db.pool).await?;
    if rows.is_empty() {
        let key = SigningKey::generate();
        sqlx::query(INSERT_KEY)
            .bind(key.kid())
            .bind(key.pkcs8())
            .execute(&db.pool)
            .await
            .context("could not store the new signing key")?;
        rows = sqlx::query_as(ALL_KEYS).fetch_all(&db.pool).await?;
    }
    let keys: Vec<SigningKey> = rows
        .into_iter()
        .map(|(kid, der)| SigningKey::from_pkcs8(kid, &der).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()
        .context("a stored signing key is corrupt")?;
    let jwks = Jwks {
        keys: keys.iter().map(SigningKey::jwk).collect(),
    };
    let newest = keys
        .into_iter()
        .next()
        .expect("at least one key was just stored");
    Ok((newest, jwks))
}
