//! The Redis handle a service holds: a lazily connected manager, a key prefix per
//! service, and a span for every command.
//!
//! Redis is a cache here, never the only copy of anything a reader needs: every caller
//! treats a [`CacheError`] as "bypass the cache", and the span says so. Commands time out
//! quickly so a dead Redis costs a request milliseconds, not seconds.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use telemetry::cache::RedisSpans;

/// Redis could not answer (down, timed out, or refused the command).
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct CacheError(#[from] redis::RedisError);

/// A Redis client scoped to one service's keys.
#[derive(Clone)]
pub struct Cache {
    pub(crate) conn: ConnectionManager,
    prefix: String,
    pub spans: RedisSpans,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// Creates the client without connecting: the service starts even while Redis is down.
    pub fn new(url: &str, prefix: &str) -> Result<Self, CacheError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            spans: RedisSpans::from_url(url),
        })
    }

    /// The full key for a service-relative one.
    pub fn key(&self, k: &str) -> String {
        format!("{}{}", self.prefix, k)
    }

    /// Readiness: one round trip. Not traced, like [`crate::Db::ping`]: probes run
    /// outside any request, and a root span per probe would bury real traces.
    pub async fn ping(&self) -> Result<(), CacheError> {
        let mut c = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut c).await?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut c = self.conn.clone();
        let k = self.key(key);
        Ok(self.spans.run("GET", async move { c.get(k).await }).await?)
    }

    pub async fn set_ex(&self, key: &str, value: &str, secs: u64) -> Result<(), CacheError> {
        let mut c = self.conn.clone();
        let k = self.key(key);
        let v = value.to_owned();
        Ok(self
            .spans
            .run("SET", async move { c.set_ex(k, v, secs).await })
            .await?)
    }

    /// Deletes keys; returns how many existed.
    pub async fn del(&self, keys: &[&str]) -> Result<i64, CacheError> {
        let mut c = self.conn.clone();
        let ks: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        Ok(self
            .spans
            .run("DEL", async move { c.del(ks).await })
            .await?)
    }

    /// Sets a key only if it does not exist yet; returns whether it was set.
    pub async fn set_nx_ex(&self, key: &str, value: &str, secs: u64) -> Result<bool, CacheError> {
        let mut c = self.conn.clone();
        let k = self.key(key);
        let v = value.to_owned();
        let set: Option<String> = self
            .spans
            .run("SET", async move {
                redis::cmd("SET")
                    .arg(k)
                    .arg(v)
                    .arg("NX")
                    .arg("EX")
                    .arg(secs)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(set.is_some())
    }

    /// Publishes `payload` on pub/sub `channel` (not prefixed: channels are shared by the
    /// replicas of every service). Returns how many subscribers received it.
    pub async fn publish(&self, channel: &str, payload: &str) -> Result<i64, CacheError> {
        let mut c = self.conn.clone();
        let (ch, p) = (channel.to_owned(), payload.to_owned());
        Ok(self
            .spans
            .run("PUBLISH", async move { c.publish(ch, p).await })
            .await?)
    }

    /// Marks `member` present in each sorted set of `keys` until `ttl_ms` from now (its
    /// score is that deadline, in Unix milliseconds), and keeps each set itself for that
    /// long: one pipelined round trip. With [`Cache::count_live`], a set of members that
    /// each vanish on their own deadline (presence held by several replicas).
    pub async fn zadd_until(
        &self,
        keys: &[String],
        member: &str,
        ttl_ms: u64,
    ) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let deadline = unix_ms() + ttl_ms;
        let mut c = self.conn.clone();
        let mut pipe = redis::pipe();
        for k in keys {
            let k = self.key(k);
            pipe.zadd(&k, member, deadline).ignore();
            pipe.pexpire(&k, ttl_ms as i64).ignore();
        }
        Ok(self
            .spans
            .run(
                "PIPELINE",
                async move { pipe.query_async::<()>(&mut c).await },
            )
            .await?)
    }

    /// Removes `member` from the sorted set `key`.
    pub async fn zrem(&self, key: &str, member: &str) -> Result<(), CacheError> {
        let mut c = self.conn.clone();
        let k = self.key(key);
        Ok(self
            .spans
            .run("ZREM", async move { c.zrem::<_, _, ()>(k, member).await })
            .await?)
    }

    /// For each sorted set of `keys`, whether a member's deadline (see
    /// [`Cache::zadd_until`]) is still ahead: one pipelined round trip.
    pub async fn count_live(&self, keys: &[&str]) -> Result<Vec<bool>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let now = unix_ms();
        let mut c = self.conn.clone();
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.zcount(self.key(k), now, "+inf");
        }
        let counts: Vec<i64> = self
            .spans
            .run("PIPELINE", async move {
                pipe.query_async::<Vec<i64>>(&mut c).await
            })
            .await?;
        Ok(counts.into_iter().map(|n| n > 0).collect())
    }

    /// Reads and deletes a key in one step (single-use values: OAuth state, codes).
    pub async fn get_del(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut c = self.conn.clone();
        let k = self.key(key);
        Ok(self
            .spans
            .run("GETDEL", async move { c.get_del(k).await })
            .await?)
    }

    /// Counts one event in a fixed window: returns the count so far and the seconds
    /// until the window resets.
    pub async fn hit(&self, key: &str, window_secs: u64) -> Result<(u64, u64), CacheError> {
        let mut c = self.conn.clone();
        let k = self.key(key);
        let (count, _, ttl): (u64, i64, i64) = self
            .spans
            .run("PIPELINE", async move {
                redis::pipe()
                    .incr(&k, 1u64)
                    .cmd("EXPIRE")
                    .arg(&k)
                    .arg(window_secs)
                    .arg("NX")
                    .ttl(&k)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok((count, ttl.max(1) as u64))
    }

    /// A range of a list of integers (timelines hold post ids).
    pub async fn lrange(
        &self,
        key: &str,
        start: isize,
        stop: isize,
    ) -> Result<Vec<i64>, CacheError> {
        let mut c = self.conn.clone();
        let k = self.key(key);
        Ok(self
            .spans
            .run("LRANGE", async move { c.lrange(k, start, stop).await })
            .await?)
    }

    pub async fn exists(&self, key: &str) -> Result<bool, CacheError> {
        let mut c = self.conn.clone();
        let k = self.key(key);
        Ok(self
            .spans
            .run("EXISTS", async move { c.exists(k).await })
            .await?)
    }

    /// Replaces a list with `values` (newest first), capped at `cap`, expiring after `ttl`.
    pub async fn replace_list(
        &self,
        key: &str,
        values: &[i64],
        ttl: u64,
    ) -> Result<(), CacheError> {
        let mut c = self.conn.clone();
        let k = self.key(key);
        let vals = values.to_vec();
        self.spans
            .run("PIPELINE", async move {
                let mut p = redis::pipe();
                p.atomic().del(&k);
                if !vals.is_empty() {
                    p.rpush(&k, vals);
                } else {
                    // An empty timeline is still a materialised one: a sentinel keeps the key.
                    p.rpush(&k, 0i64);
                }
                p.expire(&k, ttl as i64);
                p.query_async::<()>(&mut c).await
            })
            .await?;
        Ok(())
    }

    /// Pushes `value` onto each of `keys` that already exists, trimming each to `cap`.
    /// Lists that do not exist are left alone: they are rebuilt on their next read.
    pub async fn push_to_existing(
        &self,
        keys: &[String],
        value: i64,
        cap: isize,
    ) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut c = self.conn.clone();
        let ks: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        self.spans
            .run("PIPELINE", async move {
                let mut p = redis::pipe();
                for k in &ks {
                    p.lpush_exists(k, value).ignore();
                    p.ltrim(k, 0, cap - 1).ignore();
                }
                p.query_async::<()>(&mut c).await
            })
            .await?;
        Ok(())
    }
}

impl Cache {
    /// The `unpipelined_fanout` teaching fault's version of [`Cache::push_to_existing`]:
    /// the same commands, each its own round trip, one key after another.
    ///
    /// Symptom in the trace: under `feed.fan_out`, a ladder of `LPUSHX` and `LTRIM` CLIENT
    /// spans, two per follower, where one `PIPELINE` span does the same work.
    pub async fn push_one_by_one(
        &self,
        keys: &[String],
        value: i64,
        cap: isize,
    ) -> Result<(), CacheError> {
        for k in keys {
            let key = self.key(k);
            let mut c = self.conn.clone();
            self.spans
                .run("LPUSHX", async {
                    redis::cmd("LPUSHX")
                        .arg(&key)
                        .arg(value)
                        .query_async::<i64>(&mut c)
                        .await
                })
                .await?;
            self.spans
                .run("LTRIM", async {
                    redis::cmd("LTRIM")
                        .arg(&key)
                        .arg(0)
                        .arg(cap - 1)
                        .query_async::<()>(&mut c)
                        .await
                })
                .await?;
        }
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, by this host's clock.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
