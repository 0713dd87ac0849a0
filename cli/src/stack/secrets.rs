//! Per-project credentials for PostgreSQL, Redis and the object store.
//!
//! Both servers listen on 127.0.0.1, where every user of the machine can reach them, so
//! each project gets its own random passwords at its first `up`. They live in the state
//! directory (`credentials.json`, readable by its owner only), survive `down` (the data
//! they protect does too) and are forgotten by `down --volumes`. PostgreSQL's start-up
//! script sets the password and rewrites `pg_hba.conf` on every start, so a data
//! directory made by an older version, or before the credentials were lost, still opens.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

/// The passwords of one project's PostgreSQL (`postgres` role), Redis (default user) and
/// object store (the secret key of its one access key, [`OBJECTS_ACCESS_KEY`]).
/// Empty strings: no credentials (a stack rendered for Compose uses placeholders).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    pub postgres: String,
    pub redis: String,
    /// Absent from the credentials of a project made before the object store existed:
    /// made at its next `up`, keeping the others.
    #[serde(default)]
    pub objects: String,
}

/// The object store's access key id (its secret key is the credential).
pub const OBJECTS_ACCESS_KEY: &str = "socialnet";

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

fn file(dir: &Path) -> PathBuf {
    dir.join("credentials.json")
}

fn random_password() -> String {
    let mut raw = [0u8; 18];
    rand::rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

impl Secrets {
    /// What Compose files carry: variables the user may set, with a development default.
    pub fn compose() -> Self {
        Self {
            postgres: "${SOCIALNET_POSTGRES_PASSWORD:-socialnet}".into(),
            redis: "${SOCIALNET_REDIS_PASSWORD:-socialnet}".into(),
            objects: "${SOCIALNET_OBJECTS_SECRET_KEY:-socialnet-objects}".into(),
        }
    }

    /// The project's credentials recorded in `dir`, created on first use.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let s = match std::fs::read_to_string(file(dir)) {
            Ok(text) => {
                let s: Self = serde_json::from_str(&text).with_context(|| {
                    format!(
                        "{} is damaged; delete it (the next `up` makes new credentials and sets them)",
                        file(dir).display()
                    )
                })?;
                if !s.objects.is_empty() {
                    return Ok(s);
                }
                Self {
                    objects: random_password(),
                    ..s
                }
            }
            Err(_) => Self {
                postgres: random_password(),
                redis: random_password(),
                objects: random_password(),
            },
        };
        private_dir(dir)?;
        let tmp = dir.join("credentials.json.tmp");
        write_private(&tmp, &serde_json::to_vec_pretty(&s)?)?;
        std::fs::rename(&tmp, file(dir))
            .with_context(|| format!("could not write {}", file(dir).display()))?;
        Ok(s)
    }

    /// Forgets the credentials (`down --volumes`: the data they protected is gone).
    pub fn forget(dir: &Path) {
        if std::fs::remove_file(file(dir)).is_ok() {
            println!(
                "deleted {} (the project's database passwords)",
                file(dir).display()
            );
        }
    }

    /// `user:password@` for a URL's authority (empty without credentials).
    pub fn userinfo(user: &str, password: &str) -> String {
        if password.is_empty() {
            if user.is_empty() {
                String::new()
            } else {
                format!("{user}@")
            }
        } else {
            format!("{user}:{password}@")
        }
    }
}

/// Creates `dir` listable by its owner only (0711: PostgreSQL, run as its own user when
/// socialctl runs as root, must still pass through to its data directory); the files
/// with credentials in it are written with [`write_private`].
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .with_context(|| format!("could not create the state directory {}", dir.display()))
}

/// Writes `path` with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("could not write {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("could not write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn credentials_are_made_once_kept_private_and_forgotten_on_request() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("p");
        let a = Secrets::load_or_create(&state).expect("create");
        assert_eq!(a.postgres.len(), 36);
        assert_ne!(a.postgres, a.redis);
        assert_eq!(a.objects.len(), 36);
        assert_eq!(Secrets::load_or_create(&state).expect("read"), a);
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&file(&state)), 0o600);
        assert_eq!(mode(&state), 0o711);
        Secrets::forget(&state);
        assert_ne!(Secrets::load_or_create(&state).expect("again"), a);
    }

    #[test]
    fn credentials_from_before_the_object_store_gain_its_key_and_keep_the_rest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("p");
        private_dir(&state).expect("dir");
        write_private(
            &file(&state),
            br#"{"postgres": "pg-secret", "redis": "redis-secret"}"#,
        )
        .expect("old file");
        let s = Secrets::load_or_create(&state).expect("upgrade");
        assert_eq!(
            (s.postgres.as_str(), s.redis.as_str()),
            ("pg-secret", "redis-secret")
        );
        assert_eq!(s.objects.len(), 36);
        assert_eq!(Secrets::load_or_create(&state).expect("again"), s, "kept");
    }
}
