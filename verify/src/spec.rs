//! Trace specs: the expected shape of one endpoint's trace, kept as small text files
//! under `scenarios/traces/` (data, not code), parsed with line-numbered errors.
//!
//! ```text
//! # A new post: feed stores it, then asks profile who follows the author.
//! endpoint POST /api/feed/posts
//! span     feed    server   POST /api/feed/posts
//! span     feed    client   INSERT posts
//! span     profile server   GET /api/profiles/{username}
//! optional feed    client   PIPELINE        # only when the author has followers
//! ```
//!
//! `span` lines must be present in every trace of the endpoint; `optional` lines
//! document parts that depend on state (cache misses, followers) and are not required.

use std::fmt;
use std::path::Path;

use crate::model::{Span, SpanKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanReq {
    pub service: String,
    pub kind: SpanKind,
    pub name: String,
    pub optional: bool,
    pub line: usize,
}

impl SpanReq {
    pub fn matches(&self, s: &Span) -> bool {
        s.service == self.service && s.kind == self.kind && s.name == self.name
    }
}

impl fmt::Display for SpanReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?} span {:?}", self.service, self.kind, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSpec {
    pub file: String,
    pub endpoint: String,
    pub spans: Vec<SpanReq>,
}

impl TraceSpec {
    pub fn required(&self) -> impl Iterator<Item = &SpanReq> {
        self.spans.iter().filter(|s| !s.optional)
    }
}

/// A spec file that does not parse: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

fn kind(word: &str) -> Option<SpanKind> {
    Some(match word {
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "internal" => SpanKind::Internal,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        _ => return None,
    })
}

/// Parses one spec; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<TraceSpec, SpecError> {
    let err = |line: usize, message: String| SpecError {
        file: file.to_owned(),
        line,
        message,
    };
    let mut endpoint: Option<String> = None;
    let mut spans = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let mut words = content.split_whitespace();
        let keyword = words.next().unwrap_or_default();
        match keyword {
            "endpoint" => {
                let rest: Vec<&str> = words.collect();
                if rest.len() != 2 {
                    return Err(err(line, "expected `endpoint METHOD /route`".into()));
                }
                if endpoint.is_some() {
                    return Err(err(line, "a spec has exactly one `endpoint` line".into()));
                }
                endpoint = Some(rest.join(" "));
            }
            "span" | "optional" => {
                let service = words
                    .next()
                    .ok_or_else(|| err(line, format!("expected `{keyword} SERVICE KIND NAME`")))?;
                let k = words
                    .next()
                    .ok_or_else(|| err(line, format!("expected `{keyword} SERVICE KIND NAME`")))?;
                let kind = kind(k).ok_or_else(|| err(line, format!("unknown span kind {k:?}; use server, client, internal, producer or consumer")))?;
                let name = words.collect::<Vec<_>>().join(" ");
                let name = name.trim_matches('"').to_owned();
                if name.is_empty() {
                    return Err(err(line, "the span name is missing".into()));
                }
                spans.push(SpanReq {
                    service: service.to_owned(),
                    kind,
                    name,
                    optional: keyword == "optional",
                    line,
                });
            }
            other => {
                return Err(err(
                    line,
                    format!("unknown keyword {other:?}; expected endpoint, span or optional"),
                ));
            }
        }
    }
    let endpoint = endpoint.ok_or_else(|| err(1, "the spec has no `endpoint` line".into()))?;
    if !spans.iter().any(|s| !s.optional) {
        return Err(err(
            1,
            "the spec requires no span; add at least one `span` line".into(),
        ));
    }
    Ok(TraceSpec {
        file: file.to_owned(),
        endpoint,
        spans,
    })
}

/// Every `*.spec` file in a directory, sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<TraceSpec>, SpecError> {
    let io = |m: String| SpecError {
        file: dir.display().to_string(),
        line: 0,
        message: m,
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(format!("cannot read the spec directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "spec"))
        .collect();
    paths.sort();
    let mut specs = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p)
            .map_err(|e| io(format!("cannot read {}: {e}", p.display())))?;
        let spec = parse(&p.display().to_string(), &text)?;
        if let Some(other) = specs
            .iter()
            .find(|s: &&TraceSpec| s.endpoint == spec.endpoint)
        {
            return Err(SpecError {
                file: spec.file,
                line: 1,
                message: format!(
                    "endpoint {} is already specified in {}",
                    spec.endpoint, other.file
                ),
            });
        }
        specs.push(spec);
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(text: &str, line: usize, fragment: &str) {
        let e = parse("t.spec", text).expect_err(text);
        assert_eq!(e.line, line, "{e}");
        assert!(e.message.contains(fragment), "{e}");
    }

    #[test]
    fn parses_a_spec() {
        let s = parse(
            "x.spec",
            "# comment\nendpoint POST /api/feed/posts\nspan feed server POST /api/feed/posts\noptional feed client \"PIPELINE\" # note\n",
        )
        .expect("parses");
        assert_eq!(s.endpoint, "POST /api/feed/posts");
        assert_eq!(s.spans.len(), 2);
        assert_eq!(
            s.spans[1],
            SpanReq {
                service: "feed".into(),
                kind: SpanKind::Client,
                name: "PIPELINE".into(),
                optional: true,
                line: 4
            }
        );
        assert_eq!(s.required().count(), 1);
    }

    #[test]
    fn errors_name_the_line() {
        check_err(
            "endpoint GET /x\nspan feed serve GET /x",
            2,
            "unknown span kind",
        );
        check_err("endpoint GET\n", 1, "expected `endpoint METHOD /route`");
        check_err("span feed server GET /x\n", 1, "no `endpoint` line");
        check_err("endpoint GET /x\nendpoint GET /y\n", 2, "exactly one");
        check_err("endpoint GET /x\nspan feed server\n", 2, "name is missing");
        check_err(
            "endpoint GET /x\nspans feed server a\n",
            2,
            "unknown keyword",
        );
        check_err(
            "endpoint GET /x\noptional feed server a\n",
            1,
            "requires no span",
        );
    }
}
