//! The seeded data set (`socialctl seed`, and what `load` and `bench` seed): written
//! straight into the services' databases.
//!
//! Follower counts follow a power law: each user follows ~`mean_follows` others, picked
//! with probability ∝ 1/rank^`zipf`, so a few users collect thousands of followers (the
//! celebrities feed pulls at read time) and most have a handful. Celebrities also post
//! more. Going through the API would take minutes (argon2 at every registration);
//! seeding is a development tool, so it writes SQL directly, with bind-parameter arrays.
//! Every seeded user's password is `--password`.

use std::time::Instant;

use anyhow::{Context as _, bail};
use argon2::password_hash::{PasswordHasher, SaltString};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};
use uuid::Uuid;

#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// PostgreSQL server of the stack (each service has its own database on it)
    /// [default: the running stack's].
    #[arg(long)]
    pub database_url: Option<String>,
    /// Redis of the stack; its caches are emptied so they cannot contradict the new data
    /// [default: the running stack's].
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Number of users.
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Number of posts.
    #[arg(long, default_value_t = 100_000)]
    pub posts: usize,
    /// Average number of users each user follows.
    #[arg(long, default_value_t = 20)]
    pub mean_follows: usize,
    /// Power-law exponent of popularity (1.0: the most followed user is picked about
    /// ten times as often as the tenth).
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Password of every seeded user (`user00000` … `user09999`).
    #[arg(long, default_value = "password123")]
    pub password: String,
    /// Replace all data (every account, profile and post) with a fresh data set. Without
    /// it, the population is added beside the accounts that exist.
    #[arg(long)]
    pub reset: bool,
    /// Random seed, so a data set can be rebuilt identically.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl Default for SeedArgs {
    /// What `socialctl seed` runs with no flags.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            seed: SeedArgs,
        }
        <Defaults as clap::Parser>::parse_from(["seed"]).seed
    }
}

/// What was written, for the caller's summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seeded {
    pub users: usize,
    pub follows: usize,
    pub posts: usize,
    pub max_followers: i64,
    pub over_1000_followers: usize,
    pub seconds: f64,
}

/// Accounts in auth's database on the PostgreSQL server at `server`.
pub async fn count_users(server: &str) -> anyhow::Result<i64> {
    let pool = pool(server, "auth").await?;
    Ok(sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await?)
}

/// Accounts the tools did not make: neither seeded (`user00042`) nor registered by a
/// load run (`lt…`). Commands that replace all data refuse while there are any.
pub async fn foreign_accounts(server: &str) -> anyhow::Result<i64> {
    let pool = pool(server, "auth").await?;
    Ok(sqlx::query_scalar(
        r"SELECT count(*) FROM users WHERE username !~ '^user[0-9]{5,}$' AND username !~ '^lt[0-9a-z]*_[0-9]+_[0-9]+$'",
    )
    .fetch_one(&pool)
    .await?)
}

/// Whether an account named `name` exists in auth's database.
pub async fn has_account(server: &str, name: &str) -> anyhow::Result<bool> {
    let pool = pool(server, "auth").await?;
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE username = $1)")
            .bind(name)
            .fetch_one(&pool)
            .await?,
    )
}

pub fn username(i: usize) -> String {
    format!("user{i:05}")
}

async fn pool(server: &str, db: &str) -> anyhow::Result<PgPool> {
    let mut url = reqwest::Url::parse(server)
        .with_context(|| format!("--database-url is not a URL: {server}"))?;
    url.set_path(&format!("/{db}"));
    PgPoolOptions::new()
        .max_connections(2)
        .connect(url.as_str())
        .await
        .with_context(|| {
            format!(
                "could not open the `{db}` database at {server}; is the stack up (`socialctl up`)?"
            )
        })
}

/// Picks ranks with probability ∝ 1/(rank+1)^s by inverting the cumulative weights.
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let cumulative = (0..n)
            .map(|i| {
                acc += 1.0 / ((i + 1) as f64).powf(s);
                acc
            })
            .collect();
        Self { cumulative }
    }
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let total = *self.cumulative.last().expect("at least one user");
        let x = rng.random::<f64>() * total;
        self.cumulative
            .partition_point(|&c| c < x)
            .min(self.cumulative.len() - 1)
    }
}

/// Where a data set goes: the stack's PostgreSQL server and Redis.
#[derive(Debug, Clone)]
pub struct Servers {
    pub database_url: String,
    pub redis_url: String,
}

impl Servers {
    /// The flags' URLs, else the running stack's.
    pub fn of(a: &SeedArgs, addr: crate::stack::state::Addresses) -> Self {
        Self {
            database_url: a.database_url.clone().unwrap_or(addr.postgres),
            redis_url: a.redis_url.clone().unwrap_or(addr.redis),
        }
    }
}

pub async fn seed(a: &SeedArgs, to: &Servers) -> anyhow::Result<Seeded> {
    if a.users < 2 {
        bail!("--users must be at least 2");
    }
    let t0 = Instant::now();
    let auth = pool(&to.database_url, "auth").await?;
    let profile = pool(&to.database_url, "profile").await?;
    let feed = pool(&to.database_url, "feed").await?;
    let names: Vec<String> = (0..a.users).map(username).collect();
    // Without --reset, the population goes in beside whatever accounts exist (a user
    // registered by hand keeps their account); it is refused only if part of it is
    // already there.
    let present: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE username = ANY($1)")
        .bind(&names)
        .fetch_one(&auth)
        .await?;
    if present > 0 && !a.reset {
        bail!(
            "{present} of the {} seeded accounts ({} …) already exist; `socialctl seed --reset` replaces all data with a fresh data set",
            a.users,
            names[0]
        );
    }
    if a.reset {
        sqlx::query("TRUNCATE users, oauth_identities")
            .execute(&auth)
            .await?;
        sqlx::query("TRUNCATE profiles, follows")
            .execute(&profile)
            .await?;
        sqlx::query("TRUNCATE posts, likes, comments RESTART IDENTITY")
            .execute(&feed)
            .await?;
    }
    if a.reset {
        // Cached timelines and profiles would contradict the new data.
        let redis =
            redis::Client::open(to.redis_url.as_str()).context("--redis-url is not a Redis URL")?;
        let mut conn = redis
            .get_multiplexed_async_connection()
            .await
            .with_context(|| {
                format!(
                    "could not reach Redis at {}; is the stack up?",
                    to.redis_url
                )
            })?;
        redis::cmd("FLUSHDB").query_async::<()>(&mut conn).await?;
    }

    let mut rng = StdRng::seed_from_u64(a.seed);
    let ids: Vec<Uuid> = (0..a.users)
        .map(|_| Uuid::from_u128(rng.random()))
        .collect();
    eprintln!("seed: hashing the shared password (argon2id)");
    let phc = {
        let mut raw = [0u8; 16];
        rng.fill(&mut raw);
        let salt = SaltString::encode_b64(&raw).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        argon2::Argon2::default()
            .hash_password(a.password.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string()
    };
    eprintln!("seed: {} users", a.users);
    for chunk in (0..a.users).collect::<Vec<_>>().chunks(5000) {
        let cid: Vec<Uuid> = chunk.iter().map(|&i| ids[i]).collect();
        let cname: Vec<&str> = chunk.iter().map(|&i| names[i].as_str()).collect();
        let hashes: Vec<&str> = chunk.iter().map(|_| phc.as_str()).collect();
        sqlx::query("INSERT INTO users (id, username, password_hash) SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[])")
            .bind(&cid)
            .bind(&cname)
            .bind(&hashes)
            .execute(&auth)
            .await?;
        let display: Vec<String> = chunk.iter().map(|&i| format!("User {i}")).collect();
        sqlx::query("INSERT INTO profiles (user_id, username, display_name) SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[])")
            .bind(&cid)
            .bind(&cname)
            .bind(&display)
            .execute(&profile)
            .await?;
    }

    let zipf = Zipf::new(a.users, a.zipf);
    let mut follows: Vec<(Uuid, Uuid)> = Vec::new();
    for u in 0..a.users {
        // Out-degree: exponential around the mean, at least one.
        let k = ((-(1.0 - rng.random::<f64>()).ln()) * a.mean_follows as f64)
            .round()
            .max(1.0) as usize;
        let mut picked = std::collections::HashSet::new();
        let mut tries = 0;
        while picked.len() < k.min(a.users - 1) && tries < k * 10 {
            tries += 1;
            let v = zipf.sample(&mut rng);
            if v != u {
                picked.insert(v);
            }
        }
        follows.extend(picked.into_iter().map(|v| (ids[u], ids[v])));
    }
    eprintln!("seed: {} follows", follows.len());
    for chunk in follows.chunks(20_000) {
        let from: Vec<Uuid> = chunk.iter().map(|f| f.0).collect();
        let to: Vec<Uuid> = chunk.iter().map(|f| f.1).collect();
        sqlx::query("INSERT INTO follows (follower_id, followee_id) SELECT * FROM UNNEST($1::uuid[], $2::uuid[])")
            .bind(&from)
            .bind(&to)
            .execute(&profile)
            .await?;
    }
    sqlx::query(
        "UPDATE profiles p SET follower_count = c.n FROM (SELECT followee_id, count(*) n FROM follows GROUP BY 1) c WHERE c.followee_id = p.user_id",
    )
    .execute(&profile)
    .await?;
    sqlx::query(
        "UPDATE profiles p SET following_count = c.n FROM (SELECT follower_id, count(*) n FROM follows GROUP BY 1) c WHERE c.follower_id = p.user_id",
    )
    .execute(&profile)
    .await?;

    eprintln!("seed: {} posts", a.posts);
    let now = chrono::Utc::now();
    let span_secs = 30 * 24 * 3600;
    let mut times: Vec<i64> = (0..a.posts)
        .map(|_| rng.random_range(0..span_secs))
        .collect();
    times.sort_unstable_by(|x, y| y.cmp(x));
    let mut inserted = 0;
    for chunk in times.chunks(10_000) {
        let mut author = Vec::with_capacity(chunk.len());
        let mut author_name = Vec::with_capacity(chunk.len());
        let mut body = Vec::with_capacity(chunk.len());
        let mut at = Vec::with_capacity(chunk.len());
        for &ago in chunk {
            // Half the posts from anyone, half weighted toward popular users.
            let u = if rng.random_bool(0.5) {
                rng.random_range(0..a.users)
            } else {
                zipf.sample(&mut rng)
            };
            author.push(ids[u]);
            author_name.push(names[u].clone());
            inserted += 1;
            body.push(format!(
                "post {inserted} by {}: lorem ipsum dolor sit amet",
                names[u]
            ));
            at.push(now - chrono::Duration::seconds(ago));
        }
        sqlx::query(
            "INSERT INTO posts (author_id, author_username, body, created_at) \
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])",
        )
        .bind(&author)
        .bind(&author_name)
        .bind(&body)
        .bind(&at)
        .execute(&feed)
        .await?;
    }
    for (pool, db) in [(&auth, "auth"), (&profile, "profile"), (&feed, "feed")] {
        sqlx::query("ANALYZE")
            .execute(pool)
            .await
            .with_context(|| format!("ANALYZE {db}"))?;
    }
    let row = sqlx::query("SELECT max(follower_count) AS m, count(*) FILTER (WHERE follower_count > 1000) AS c FROM profiles")
        .fetch_one(&profile)
        .await?;
    Ok(Seeded {
        users: a.users,
        follows: follows.len(),
        posts: a.posts,
        max_followers: row.try_get::<Option<i64>, _>("m")?.unwrap_or(0),
        over_1000_followers: row.try_get::<i64, _>("c")? as usize,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
