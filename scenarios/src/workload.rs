//! The load mix as data: `load/*.workload` files, read by `socialctl load`.
//!
//! The format is one declaration per line, `keyword value [key=value ...]`, with `#`
//! comments; `load/social-day.workload` documents every keyword. Parsing reports the
//! line and what was expected, so an edited copy fails clearly instead of running a
//! different load than its author meant.

use std::fmt;
use std::time::Duration;

/// A uniform range of durations; `min == max` is a fixed time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub min: Duration,
    pub max: Duration,
}

impl TimeRange {
    pub const ZERO: TimeRange = TimeRange {
        min: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// The point at `frac` (0.0–1.0) of the range.
    pub fn at(&self, frac: f64) -> Duration {
        let span = self.max.saturating_sub(self.min);
        self.min + span.mul_f64(frac.clamp(0.0, 1.0))
    }

    /// The middle of the range: the expected time when sampled uniformly.
    pub fn mean(&self) -> Duration {
        self.at(0.5)
    }
}

/// What a virtual user can do; each is one or a few requests (see `socialctl load --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    Timeline,
    ViewPost,
    Profile,
    Search,
    Follow,
    Unfollow,
    Post,
    Like,
    Comment,
    Message,
    /// Upload a small image, wait for media to process it, post it.
    PostImage,
}

impl ActionKind {
    pub const ALL: [ActionKind; 11] = [
        ActionKind::Timeline,
        ActionKind::ViewPost,
        ActionKind::Profile,
        ActionKind::Search,
        ActionKind::Follow,
        ActionKind::Unfollow,
        ActionKind::Post,
        ActionKind::Like,
        ActionKind::Comment,
        ActionKind::Message,
        ActionKind::PostImage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Timeline => "timeline",
            ActionKind::ViewPost => "view-post",
            ActionKind::Profile => "profile",
            ActionKind::Search => "search",
            ActionKind::Follow => "follow",
            ActionKind::Unfollow => "unfollow",
            ActionKind::Post => "post",
            ActionKind::Like => "like",
            ActionKind::Comment => "comment",
            ActionKind::Message => "message",
            ActionKind::PostImage => "post-image",
        }
    }

    fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|a| a.name() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub kind: ActionKind,
    pub weight: u32,
    /// Pages read in a row (timeline only).
    pub pages: (u32, u32),
    /// Pause between pages.
    pub page_think: TimeRange,
    /// Profile only: also read the user's posts (a second request).
    pub with_posts: bool,
}

/// What a threshold limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Failed requests over all requests, as a fraction (0.01 is 1 %).
    ErrorRate(f64),
    /// A latency percentile (0–100; 100 is the maximum).
    Latency { percentile: f64, max: Duration },
}

/// A pass/fail rule for a run: `p99<500ms`, or `p99<500ms GET /api/feed/timeline` for
/// one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub rule: Rule,
    /// Only this endpoint's requests (`METHOD /route`); every request when `None`.
    pub endpoint: Option<String>,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            Rule::ErrorRate(r) => write!(f, "error-rate<{}%", r * 100.0)?,
            Rule::Latency { percentile, max } if percentile >= 100.0 => {
                write!(f, "max<{}", format_duration(max))?
            }
            Rule::Latency { percentile, max } => {
                write!(f, "p{}<{}", percentile, format_duration(max))?
            }
        }
        match &self.endpoint {
            Some(e) => write!(f, " {e}"),
            None => Ok(()),
        }
    }
}

impl std::str::FromStr for Threshold {
    type Err = String;

    /// `error-rate<1%`, `p99<500ms`, `p50<100ms`, `p99.9<2s`, `max<5s`, each optionally
    /// followed by an endpoint: `p99<300ms GET /api/feed/timeline`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (rule, endpoint) = match s.split_once(char::is_whitespace) {
            Some((r, e)) => (r, Some(e.split_whitespace().collect::<Vec<_>>().join(" "))),
            None => (s, None),
        };
        if let Some(e) = &endpoint {
            // An HTTP route, or a socket frame (`WS send`).
            let ok = e.split_once(' ').is_some_and(|(m, p)| {
                m.chars().all(|c| c.is_ascii_uppercase())
                    && (p.starts_with('/') || (m == "WS" && !p.is_empty()))
            });
            if !ok {
                return Err(format!(
                    "threshold endpoint {e:?} should read like `GET /api/feed/timeline` (or `WS send`)"
                ));
            }
        }
        let (lhs, rhs) = rule.split_once('<').ok_or_else(|| {
            format!("threshold {s:?} has no '<': write e.g. error-rate<1% or p99<500ms")
        })?;
        let (lhs, rhs) = (lhs.trim(), rhs.trim());
        let rule = if lhs == "error-rate" {
            let pct = rhs
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<f64>().ok())
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| {
                    format!("error-rate wants a percentage 0–100, e.g. 1%, not {rhs:?}")
                })?;
            Rule::ErrorRate(pct / 100.0)
        } else {
            let percentile = if lhs == "max" {
                100.0
            } else {
                lhs.strip_prefix('p')
                    .and_then(|p| p.parse::<f64>().ok())
                    .filter(|p| *p > 0.0 && *p <= 100.0)
                    .ok_or_else(|| {
                        format!(
                            "unknown threshold {lhs:?}: use error-rate, max, or a percentile like p99"
                        )
                    })?
            };
            Rule::Latency {
                percentile,
                max: parse_duration(rhs)?,
            }
        };
        Ok(Threshold { rule, endpoint })
    }
}

/// A whole workload file.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Seeded users to sign in as: `user00000` … (`users` of them).
    pub users: usize,
    pub password: String,
    /// Zipf exponent used when picking another user to view or follow.
    pub popularity: f64,
    /// Share of virtual users (0–1) who register instead of logging in.
    pub register_share: f64,
    /// Refresh the access token when it expires within this long.
    pub refresh_before: Duration,
    pub think: TimeRange,
    pub actions: Vec<Action>,
    pub thresholds: Vec<Threshold>,
}

/// The built-in workload, `load/social-day.workload`.
pub const SOCIAL_DAY: &str = include_str!("../load/social-day.workload");

impl Workload {
    /// The built-in workload.
    pub fn social_day() -> Workload {
        Workload::parse(SOCIAL_DAY).expect("the built-in workload parses (tested)")
    }

    /// The action at `frac` (0.0–1.0) of the cumulative weights: pass a uniform random
    /// number to draw one by weight.
    pub fn pick(&self, frac: f64) -> &Action {
        let total: u64 = self.actions.iter().map(|a| u64::from(a.weight)).sum();
        let mut point = ((frac.clamp(0.0, 1.0) * total as f64) as u64).min(total.saturating_sub(1));
        for a in &self.actions {
            if point < u64::from(a.weight) {
                return a;
            }
            point -= u64::from(a.weight);
        }
        self.actions.last().expect("a parsed workload has actions")
    }

    pub fn parse(text: &str) -> Result<Workload, ParseError> {
        let mut w = Workload {
            users: 10_000,
            password: "password123".into(),
            popularity: 1.0,
            register_share: 0.0,
            refresh_before: Duration::from_secs(60),
            think: TimeRange::ZERO,
            actions: Vec::new(),
            thresholds: Vec::new(),
        };
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |message: String| ParseError {
                line: line_no,
                message,
            };
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let keyword = words.next().expect("non-empty line has a word");
            let rest: Vec<&str> = words.collect();
            let one = |what: &str| -> Result<&str, ParseError> {
                match rest.as_slice() {
                    [v] => Ok(v),
                    _ => Err(err(format!("{keyword} takes one value ({what})"))),
                }
            };
            match keyword {
                "population" => {
                    for kv in &rest {
                        let (k, v) = kv.split_once('=').ok_or_else(|| {
                            err(format!("expected key=value after population, got {kv:?}"))
                        })?;
                        match k {
                            "users" => {
                                w.users = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                                    err(format!("users must be a positive count, not {v:?}"))
                                })?
                            }
                            "password" => w.password = v.to_string(),
                            _ => {
                                return Err(err(format!(
                                    "population has no {k:?} (users, password)"
                                )));
                            }
                        }
                    }
                }
                "popularity" => {
                    w.popularity = one("a Zipf exponent, e.g. 1.0")?
                        .parse()
                        .ok()
                        .filter(|z: &f64| (0.0..=5.0).contains(z))
                        .ok_or_else(|| err("popularity must be a number from 0 to 5".into()))?
                }
                "register" => {
                    let v = one("a percentage")?;
                    w.register_share = v
                        .strip_suffix('%')
                        .and_then(|p| p.parse::<f64>().ok())
                        .filter(|p| (0.0..=100.0).contains(p))
                        .ok_or_else(|| {
                            err(format!("register wants a percentage like 2%, not {v:?}"))
                        })?
                        / 100.0
                }
                "refresh" => w.refresh_before = parse_duration(one("a time")?).map_err(err)?,
                "think" => w.think = parse_range(one("a time or range")?).map_err(err)?,
                "action" => w.actions.push(parse_action(&rest).map_err(err)?),
                "threshold" => {
                    if rest.is_empty() {
                        return Err(err("threshold wants a rule like p99<500ms".into()));
                    }
                    w.thresholds.push(rest.join(" ").parse().map_err(err)?)
                }
                _ => {
                    return Err(err(format!(
                        "unknown keyword {keyword:?} (population, popularity, register, refresh, think, action, threshold)"
                    )));
                }
            }
        }
        if w.actions.iter().all(|a| a.weight == 0) {
            return Err(ParseError {
                line: 0,
                message: "the workload declares no action with a weight above 0".into(),
            });
        }
        Ok(w)
    }
}

fn parse_action(rest: &[&str]) -> Result<Action, String> {
    let [name, weight, options @ ..] = rest else {
        return Err("action wants a name and a weight, e.g. `action timeline 50`".into());
    };
    let kind = ActionKind::parse(name).ok_or_else(|| {
        let known: Vec<&str> = ActionKind::ALL.iter().map(|a| a.name()).collect();
        format!("unknown action {name:?}; known: {}", known.join(", "))
    })?;
    let weight = weight
        .parse()
        .map_err(|_| format!("weight of {name} must be a whole number, not {weight:?}"))?;
    let mut a = Action {
        kind,
        weight,
        pages: (1, 1),
        page_think: TimeRange::ZERO,
        with_posts: true,
    };
    for kv in options {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, got {kv:?}"))?;
        match (kind, k) {
            (ActionKind::Timeline, "pages") => {
                let (lo, hi) = v.split_once("..").unwrap_or((v, v));
                let p = |s: &str| s.parse::<u32>().ok().filter(|n| (1..=100).contains(n));
                a.pages = match (p(lo), p(hi)) {
                    (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
                    _ => {
                        return Err(format!(
                            "pages wants 1..100 or a range like 1..3, not {v:?}"
                        ));
                    }
                };
            }
            (ActionKind::Timeline, "page-think") => a.page_think = parse_range(v)?,
            (ActionKind::Profile, "posts") => {
                a.with_posts = match v {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(format!("posts wants yes or no, not {v:?}")),
                }
            }
            _ => return Err(format!("action {name} has no option {k:?}")),
        }
    }
    Ok(a)
}

/// `250ms`, `2s`, `1.5s`, `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(format!("{s:?} needs a unit: ms, s or m (e.g. 500ms, 2s)"));
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0 && *n * scale < 1e9)
        .map(|n| Duration::from_secs_f64(n * scale))
        .ok_or_else(|| format!("{s:?} is not a time (e.g. 500ms, 2s)"))
}

/// `300ms..2s` or a single time.
pub fn parse_range(s: &str) -> Result<TimeRange, String> {
    let (lo, hi) = s.split_once("..").unwrap_or((s, s));
    let (min, max) = (parse_duration(lo)?, parse_duration(hi)?);
    if min > max {
        return Err(format!("range {s:?} runs backwards"));
    }
    Ok(TimeRange { min, max })
}

/// `1.5s`, `250ms`: the shortest exact spelling.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{}s", ms / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based; 0 for a problem with the file as a whole.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_workload_parses_with_every_action() {
        let w = Workload::social_day();
        assert_eq!(w.users, 10_000);
        assert_eq!(w.register_share, 0.02);
        assert_eq!(w.think.min, Duration::from_millis(300));
        assert_eq!(w.think.max, Duration::from_secs(2));
        for kind in ActionKind::ALL {
            assert!(
                w.actions.iter().any(|a| a.kind == kind && a.weight > 0),
                "{} missing",
                kind.name()
            );
        }
        let timeline = w
            .actions
            .iter()
            .find(|a| a.kind == ActionKind::Timeline)
            .unwrap();
        assert_eq!(timeline.pages, (1, 3));
        assert!(w.thresholds.contains(&"error-rate<1%".parse().unwrap()));
        assert!(
            w.thresholds
                .iter()
                .any(|t| t.endpoint.as_deref() == Some("GET /api/feed/timeline"))
        );
    }

    #[test]
    fn picking_follows_the_weights() {
        let w = Workload::parse("action timeline 3\naction post 1\naction like 0\n").unwrap();
        let mut counts = std::collections::HashMap::new();
        for i in 0..4000 {
            *counts.entry(w.pick(i as f64 / 4000.0).kind).or_insert(0) += 1;
        }
        assert_eq!(counts[&ActionKind::Timeline], 3000);
        assert_eq!(counts[&ActionKind::Post], 1000);
        assert!(!counts.contains_key(&ActionKind::Like));
        assert_eq!(w.pick(1.0).kind, ActionKind::Post);
    }

    #[test]
    fn thresholds_parse_and_print_back() {
        for s in [
            "error-rate<1%",
            "p99<500ms",
            "p99.9<2s",
            "max<5s",
            "p50<1.5s",
        ] {
            let t: Threshold = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        assert_eq!(
            "p90<250ms".parse::<Threshold>().unwrap(),
            Threshold {
                rule: Rule::Latency {
                    percentile: 90.0,
                    max: Duration::from_millis(250)
                },
                endpoint: None
            }
        );
        for bad in [
            "p99",
            "p0<1s",
            "error-rate<5",
            "q99<1s",
            "p99<5",
            "p99<1s timeline",
        ] {
            assert!(bad.parse::<Threshold>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn mistakes_name_their_line() {
        let cases = [
            ("think 1s\naction dance 3\n", 2, "unknown action"),
            ("action timeline x\n", 1, "whole number"),
            ("think 2s..1s\naction post 1", 1, "backwards"),
            ("think 5\naction post 1", 1, "unit"),
            ("action post 1\nspeed 3\n", 2, "unknown keyword"),
            ("action post 1 pages=2\n", 1, "no option"),
            ("action profile 1 posts=maybe\n", 1, "yes or no"),
            ("action timeline 1 pages=0..2\n", 1, "pages"),
            ("population users=0\naction post 1\n", 1, "positive"),
        ];
        for (text, line, needle) in cases {
            let e = Workload::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
        assert!(
            Workload::parse("# nothing\n")
                .unwrap_err()
                .message
                .contains("no action")
        );
    }

    #[test]
    fn ranges_sample_inside_their_bounds() {
        let r = parse_range("200ms..800ms").unwrap();
        assert_eq!(r.at(0.0), Duration::from_millis(200));
        assert_eq!(r.at(1.0), Duration::from_millis(800));
        assert_eq!(r.mean(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    }
}
