//! What a link carries and what can be done to it: the [`Toxic`] type the control API
//! takes (and `socialctl chaos` sends), in toxiproxy's model: a named effect on one
//! direction of a link's connections, applied to a share of them (its toxicity).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which bytes a toxic acts on: those the client sends (`upstream`), those the server
/// answers (`downstream`), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Upstream,
    Downstream,
    #[default]
    Both,
}

impl Stream {
    pub fn covers(self, dir: Stream) -> bool {
        self == Stream::Both || self == dir
    }
}

/// What a toxic does to the connections it acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Each chunk of data waits `latency_ms`, give or take up to `jitter_ms`.
    Latency { latency_ms: u64, jitter_ms: u64 },
    /// At most `kib_per_s` KiB per second.
    Bandwidth { kib_per_s: u64 },
    /// The connection is lost: reset as it is accepted, or, when it was open already
    /// (a pooled one), at its next data. Toxicity is the share of connections lost.
    Loss,
    /// Nothing passes any more; the connection is closed after `timeout_ms` (0: it stays
    /// open, never answered, until the toxic goes).
    Timeout { timeout_ms: u64 },
    /// The connection is reset (TCP RST both ways) `after_ms` after the toxic first
    /// sees it.
    Reset { after_ms: u64 },
    /// The two ends cannot reach each other; both stay up. New connections are accepted
    /// and held unanswered, open ones carry nothing; when the toxic goes, both go on, as
    /// after a healed network.
    Partition,
}

impl Effect {
    /// The effect's name: `latency`, `bandwidth`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Effect::Latency { .. } => "latency",
            Effect::Bandwidth { .. } => "bandwidth",
            Effect::Loss => "loss",
            Effect::Timeout { .. } => "timeout",
            Effect::Reset { .. } => "reset",
            Effect::Partition => "partition",
        }
    }

    /// Its parameters in words: `200 ms ± 50 ms`.
    pub fn describe(&self) -> String {
        match self {
            Effect::Latency {
                latency_ms,
                jitter_ms: 0,
            } => format!("{latency_ms} ms added"),
            Effect::Latency {
                latency_ms,
                jitter_ms,
            } => format!("{latency_ms} ms ± {jitter_ms} ms added"),
            Effect::Bandwidth { kib_per_s } => format!("at most {kib_per_s} KiB/s"),
            Effect::Loss => "connections lost (reset as they open or at their next data)".into(),
            Effect::Timeout { timeout_ms: 0 } => "data stops, connections held open".into(),
            Effect::Timeout { timeout_ms } => format!("data stops, closed after {timeout_ms} ms"),
            Effect::Reset { after_ms } => format!("connections reset after {after_ms} ms"),
            Effect::Partition => "nothing passes either way".into(),
        }
    }
}

/// A named effect on a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Toxic {
    /// Unique on its link (socialctl uses the fault's id).
    pub name: String,
    #[serde(flatten)]
    pub effect: Effect,
    #[serde(default)]
    pub stream: Stream,
    /// The share of connections it acts on, 0 to 1, decided once per connection.
    #[serde(default = "one")]
    pub toxicity: f64,
}

fn one() -> f64 {
    1.0
}

impl Toxic {
    /// Why it cannot be applied, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.len() > 64 {
            return Err("a toxic's name is 1 to 64 characters".into());
        }
        if !(0.0..=1.0).contains(&self.toxicity) {
            return Err(format!(
                "toxicity is a share of connections from 0 to 1, not {}",
                self.toxicity
            ));
        }
        match self.effect {
            Effect::Bandwidth { kib_per_s: 0 } => {
                Err("a bandwidth of 0 KiB/s is a timeout; use the timeout toxic".into())
            }
            Effect::Latency { latency_ms, .. } if latency_ms > 600_000 => {
                Err("latency is at most 600000 ms".into())
            }
            _ => Ok(()),
        }
    }

    /// Whether it holds data back (partition, timeout), and for how long before the
    /// connection is closed (`None`: until the toxic goes).
    pub fn hold(&self) -> Option<Option<Duration>> {
        match self.effect {
            Effect::Partition | Effect::Timeout { timeout_ms: 0 } => Some(None),
            Effect::Timeout { timeout_ms } => Some(Some(Duration::from_millis(timeout_ms))),
            _ => None,
        }
    }

    /// How long one chunk of `len` bytes waits under this toxic (latency, bandwidth).
    pub fn delay(&self, len: usize, roll: f64) -> Duration {
        match self.effect {
            Effect::Latency {
                latency_ms,
                jitter_ms,
            } => {
                // roll in [0, 1): spread evenly over latency ± jitter.
                let ms = latency_ms as f64 + (roll * 2.0 - 1.0) * jitter_ms as f64;
                Duration::from_secs_f64(ms.max(0.0) / 1000.0)
            }
            Effect::Bandwidth { kib_per_s } => {
                Duration::from_secs_f64(len as f64 / (kib_per_s as f64 * 1024.0))
            }
            _ => Duration::ZERO,
        }
    }
}

/// One link: a listener on the proxy that forwards to one upstream, named for the path
/// it stands on (`feed:postgres`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSpec {
    pub name: String,
    pub listen: String,
    pub upstream: String,
}

impl LinkSpec {
    /// `NAME@LISTEN>UPSTREAM`, e.g. `feed:postgres@0.0.0.0:8475>postgres:5432`.
    pub fn parse(s: &str) -> Result<LinkSpec, String> {
        let (name, rest) = s
            .split_once('@')
            .ok_or_else(|| format!("link {s:?}: expected NAME@LISTEN>UPSTREAM"))?;
        let (listen, upstream) = rest
            .split_once('>')
            .ok_or_else(|| format!("link {s:?}: expected NAME@LISTEN>UPSTREAM"))?;
        if name.is_empty() || listen.is_empty() || upstream.is_empty() {
            return Err(format!("link {s:?}: a part is empty"));
        }
        Ok(LinkSpec {
            name: name.into(),
            listen: listen.into(),
            upstream: upstream.into(),
        })
    }

    pub fn render(&self) -> String {
        format!("{}@{}>{}", self.name, self.listen, self.upstream)
    }
}

/// A link as the control API shows it: its toxics and its counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkStatus {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub toxics: Vec<Toxic>,
    pub connections_open: u64,
    pub connections_total: u64,
    pub bytes_upstream: u64,
    pub bytes_downstream: u64,
    /// Connections a toxic acted on.
    pub connections_touched: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toxics_read_like_toxiproxys_and_are_checked() {
        let t: Toxic = serde_json::from_str(
            r#"{"name":"f1","type":"latency","latency_ms":200,"jitter_ms":50,"stream":"downstream"}"#,
        )
        .unwrap();
        assert_eq!(t.toxicity, 1.0);
        assert_eq!(t.stream, Stream::Downstream);
        assert_eq!(t.delay(10, 0.0), Duration::from_millis(150));
        assert_eq!(t.delay(10, 0.5), Duration::from_millis(200));
        assert!(t.check().is_ok());
        let bad = Toxic {
            toxicity: 1.5,
            ..t.clone()
        };
        assert!(bad.check().unwrap_err().contains("toxicity"));
        let bw = Toxic {
            effect: Effect::Bandwidth { kib_per_s: 64 },
            ..t
        };
        assert_eq!(bw.delay(64 * 1024, 0.0), Duration::from_secs(1));
        assert_eq!(bw.hold(), None);
        let timeout = |ms| Toxic {
            effect: Effect::Timeout { timeout_ms: ms },
            ..bw.clone()
        };
        assert_eq!(timeout(0).hold(), Some(None), "held until the toxic goes");
        assert_eq!(timeout(500).hold(), Some(Some(Duration::from_millis(500))));
        let spec = LinkSpec::parse("feed:postgres@0.0.0.0:8475>postgres:5432").unwrap();
        assert_eq!(spec.upstream, "postgres:5432");
        assert_eq!(LinkSpec::parse(&spec.render()).unwrap(), spec);
        assert!(LinkSpec::parse("feed:postgres@0.0.0.0:8475").is_err());
    }
}
