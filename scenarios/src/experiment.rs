//! Chaos experiments as files (`scenarios/chaos/*.experiment`), the way Chaos Toolkit
//! and Gremlin frame them: a **steady-state hypothesis** (what normal looks like, each
//! with its tolerance), a **method** (faults on a timeline while load runs), and
//! **rollbacks**. `socialctl chaos run FILE` checks the hypothesis before, runs the
//! method, rolls back, checks again after, and says whether the steady state held.
//!
//! ```text
//! title     A killed feed replica is covered by the gateway's retries
//! requires  feed=2                     # replicas the stack must run
//! load      users=60 duration=40s steady=15s   # also rate=N, workload=FILE
//! steady    error-rate<1%              # before and after the method
//! steady    complete>=100%             # share of traces complete (verify-traces --sent)
//! during    error-rate<1%              # while the faults act
//! at 10s    kill feed#2 for 8s         # a `socialctl chaos` verb and its arguments
//! rollback  heal
//! ```
//!
//! Lines are `keyword value`; `#` at the start of a line or after a space starts a
//! comment (`feed#2` names a replica). A parse error names its line.

use std::fmt;
use std::time::Duration;

use crate::workload::{ParseError, Threshold, parse_duration};

/// One tolerance of the hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// A rule on the load's requests (`error-rate<1%`, `p99<500ms GET /api/feed/timeline`).
    Threshold(Threshold),
    /// At least this share (0–100) of the requests' traces complete, outside the fault
    /// windows (`complete>=99.9%`).
    Complete(f64),
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Threshold(t) => write!(f, "{t}"),
            Probe::Complete(p) => write!(f, "complete>={p}%"),
        }
    }
}

impl std::str::FromStr for Probe {
    type Err = String;

    fn from_str(s: &str) -> Result<Probe, String> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("complete") {
            let pct = rest
                .trim()
                .strip_prefix(">=")
                .and_then(|p| p.trim().strip_suffix('%'))
                .and_then(|p| p.trim().parse::<f64>().ok())
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| format!("{s:?}: write complete>=99.9% (a percentage 0–100)"))?;
            return Ok(Probe::Complete(pct));
        }
        s.parse().map(Probe::Threshold)
    }
}

/// The load each phase runs.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    pub users: usize,
    /// The method's run, during which the faults act.
    pub duration: Duration,
    /// The runs that check the hypothesis before and after.
    pub steady: Duration,
    /// Open model: arrivals per second.
    pub rate: Option<f64>,
    /// A workload file for `socialctl load --workload`, relative to the experiment's
    /// own directory (default: the built-in social day).
    pub workload: Option<String>,
}

/// A fault on the method's timeline, or a rollback.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// From the start of the method's load; zero for rollbacks.
    pub at: Duration,
    /// `socialctl chaos` arguments: the verb first (`kill feed#2 --duration 8s`).
    pub argv: Vec<String>,
    /// How long the fault lasts (`for 8s`), when it has a duration.
    pub lasts: Option<Duration>,
    /// Its line in the file.
    pub line: usize,
}

/// A whole experiment file.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub title: String,
    /// Replicas the stack must run: (component, at least).
    pub requires: Vec<(String, u32)>,
    pub load: LoadPlan,
    pub steady: Vec<Probe>,
    pub during: Vec<Probe>,
    pub method: Vec<Step>,
    pub rollbacks: Vec<Step>,
}

/// Verbs that act on the fault proxy's links.
pub const NETWORK_VERBS: &[&str] = &[
    "latency",
    "bandwidth",
    "loss",
    "timeout",
    "reset",
    "partition",
];

impl Experiment {
    /// Whether the method needs the stack's fault proxy.
    pub fn needs_fault_proxy(&self) -> bool {
        self.method
            .iter()
            .any(|s| NETWORK_VERBS.contains(&s.argv[0].as_str()))
    }

    pub fn parse(text: &str) -> Result<Experiment, ParseError> {
        let mut title = None;
        let mut requires = Vec::new();
        let mut load = None;
        let mut steady = Vec::new();
        let mut during = Vec::new();
        let mut method = Vec::new();
        let mut rollbacks = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| ParseError { line, message };
            let text = strip_comment(raw);
            if text.is_empty() {
                continue;
            }
            let (keyword, rest) = text
                .split_once(char::is_whitespace)
                .map(|(k, r)| (k, r.trim()))
                .unwrap_or((text, ""));
            if rest.is_empty() {
                return Err(err(format!("{keyword:?} needs a value")));
            }
            match keyword {
                "title" => title = Some(rest.to_owned()),
                "requires" => {
                    for w in rest.split_whitespace() {
                        let (name, n) = w
                            .split_once('=')
                            .and_then(|(c, n)| Some((c, n.parse::<u32>().ok()?)))
                            .ok_or_else(|| {
                                err(format!("requires {w:?}: write COMPONENT=N, e.g. feed=2"))
                            })?;
                        requires.push((name.to_owned(), n));
                    }
                }
                "load" => load = Some(parse_load(rest).map_err(err)?),
                "steady" => steady.push(rest.parse::<Probe>().map_err(err)?),
                "during" => during.push(rest.parse::<Probe>().map_err(err)?),
                "at" => method.push(parse_step(rest, line)?),
                "rollback" => rollbacks.push(Step {
                    at: Duration::ZERO,
                    argv: rest.split_whitespace().map(str::to_owned).collect(),
                    lasts: None,
                    line,
                }),
                other => {
                    return Err(err(format!(
                        "unknown keyword {other:?}; an experiment has title, requires, load, steady, during, at and rollback lines"
                    )));
                }
            }
        }
        let whole = |message: &str| ParseError {
            line: 0,
            message: message.to_owned(),
        };
        let title = title.ok_or_else(|| whole("the experiment has no `title` line"))?;
        let load = load.ok_or_else(|| {
            whole("the experiment has no `load` line (e.g. `load users=50 duration=40s`)")
        })?;
        if steady.is_empty() {
            return Err(whole(
                "the experiment has no `steady` line: a hypothesis needs at least one tolerance",
            ));
        }
        if method.is_empty() {
            return Err(whole(
                "the experiment has no `at` line: the method is empty",
            ));
        }
        for s in &method {
            let end = s.at + s.lasts.unwrap_or_default();
            if end > load.duration {
                return Err(ParseError {
                    line: s.line,
                    message: format!(
                        "this fault ends at {:.1} s, after the load's {} s: shorten it or lengthen the load",
                        end.as_secs_f64(),
                        load.duration.as_secs()
                    ),
                });
            }
        }
        method.sort_by_key(|s| s.at);
        Ok(Experiment {
            title,
            requires,
            load,
            steady,
            during,
            method,
            rollbacks,
        })
    }
}

/// A line without its comment: `#` at the start or after a space (`feed#2` is a
/// replica, not a comment).
fn strip_comment(raw: &str) -> &str {
    let t = raw.trim();
    if t.starts_with('#') {
        return "";
    }
    let cut = t
        .char_indices()
        .find(|&(i, c)| c == '#' && t[..i].ends_with(char::is_whitespace))
        .map_or(t.len(), |(i, _)| i);
    t[..cut].trim()
}

fn parse_load(rest: &str) -> Result<LoadPlan, String> {
    let mut plan = LoadPlan {
        users: 50,
        duration: Duration::from_secs(40),
        steady: Duration::from_secs(15),
        rate: None,
        workload: None,
    };
    for w in rest.split_whitespace() {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("load option {w:?}: write key=value"))?;
        match k {
            "users" => {
                plan.users = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=100_000).contains(n))
                    .ok_or_else(|| format!("users={v}: a number from 1"))?
            }
            "duration" => plan.duration = parse_duration(v)?,
            "steady" => plan.steady = parse_duration(v)?,
            "rate" => {
                plan.rate = Some(
                    v.parse()
                        .ok()
                        .filter(|r: &f64| *r > 0.0)
                        .ok_or_else(|| format!("rate={v}: requests per second, above 0"))?,
                )
            }
            "workload" => plan.workload = Some(v.to_owned()),
            other => {
                return Err(format!(
                    "unknown load option {other:?}; options: users, duration, steady, rate, workload"
                ));
            }
        }
    }
    if plan.duration < Duration::from_secs(5) || plan.steady < Duration::from_secs(5) {
        return Err("duration and steady are at least 5s".into());
    }
    Ok(plan)
}

/// `10s kill feed#2 for 8s`: a time, a chaos verb and its arguments, and its duration.
fn parse_step(rest: &str, line: usize) -> Result<Step, ParseError> {
    let err = |message: String| ParseError { line, message };
    let mut words: Vec<&str> = rest.split_whitespace().collect();
    let at = parse_duration(words.remove(0)).map_err(|e| err(format!("at: {e}")))?;
    if words.is_empty() {
        return Err(err(
            "`at TIME` needs a chaos verb after it, e.g. `at 10s kill feed for 8s`".into(),
        ));
    }
    let mut lasts = None;
    if let Some(pos) = words.iter().position(|w| *w == "for") {
        let d = words
            .get(pos + 1)
            .ok_or_else(|| err("`for` needs a time, e.g. `for 8s`".into()))?;
        lasts = Some(parse_duration(d).map_err(|e| err(format!("for: {e}")))?);
        if words.len() > pos + 2 {
            return Err(err(format!(
                "nothing may follow `for {d}`; put the verb's options before it"
            )));
        }
        words.truncate(pos);
    }
    let mut argv: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
    if let Some(d) = lasts {
        argv.push("--duration".into());
        argv.push(format!("{}ms", d.as_millis()));
    }
    Ok(Step {
        at,
        argv,
        lasts,
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
title     A killed replica is covered by retries
requires  feed=2
load      users=20 duration=30s steady=10s
steady    error-rate<1%
steady    complete>=99.5%   # outside fault windows
during    p99<800ms GET /api/feed/timeline
at 20s    latency feed postgres --ms 200 for 5s
at 5s     kill feed#2 for 8s
rollback  heal
";

    #[test]
    fn an_experiment_reads_as_written() {
        let e = Experiment::parse(GOOD).unwrap();
        assert_eq!(e.requires, [("feed".to_owned(), 2)]);
        assert_eq!(e.load.users, 20);
        assert_eq!(e.load.steady, Duration::from_secs(10));
        assert_eq!(e.steady[1], Probe::Complete(99.5));
        assert_eq!(e.steady[0].to_string(), "error-rate<1%");
        // Sorted by time; the duration becomes the verb's flag.
        assert_eq!(e.method[0].argv, ["kill", "feed#2", "--duration", "8000ms"]);
        assert_eq!(e.method[0].line, 8);
        assert_eq!(
            e.method[1].argv[..4],
            ["latency", "feed", "postgres", "--ms"]
        );
        assert!(e.needs_fault_proxy());
        assert_eq!(e.rollbacks[0].argv, ["heal"]);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let cases = [
            (
                GOOD.replace("steady    error-rate<1%", "steady    error-rate<1"),
                4,
                "percentage",
            ),
            (GOOD.replace("at 5s     kill", "at 5x     kill"), 8, "unit"),
            (GOOD.replace("for 8s", "for 28s"), 8, "after the load"),
            (
                GOOD.replace("requires  feed=2", "requires  feed"),
                2,
                "COMPONENT=N",
            ),
            (
                GOOD.replace("rollback  heal", "rollbak heal"),
                9,
                "unknown keyword",
            ),
            (GOOD.replace("users=20", "users=0"), 3, "users"),
        ];
        for (text, line, words) in cases {
            let e = Experiment::parse(&text).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.contains(words), "{e}");
        }
        let e = Experiment::parse("title x\nload users=1\nsteady error-rate<1%\n").unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.message.contains("method is empty"), "{e}");
    }
}
