//! A CLIENT span for every SQL query.
//!
//! Queries in socialnet are static strings with bind parameters (`$1`), never values
//! spliced in, so the query text can go on the span as `db.query.text` without leaking
//! user data. The span name is `{operation} {table}`, e.g. `SELECT posts`.

use std::fmt::Display;
use std::future::Future;

use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attrs::*;

/// Connection facts every SQL span of one pool carries.
#[derive(Debug, Clone)]
pub struct SqlSpans {
    namespace: String,
    server_address: String,
    server_port: u16,
}

impl SqlSpans {
    /// Reads database name, host and port from a `postgres://` URL. A URL that does not
    /// parse still yields spans, with `unknown` for what could not be read.
    pub fn from_url(url: &str) -> Self {
        match reqwest::Url::parse(url) {
            Ok(u) => Self {
                namespace: u.path().trim_start_matches('/').to_owned(),
                server_address: u.host_str().unwrap_or("localhost").to_owned(),
                server_port: u.port().unwrap_or(5432),
            },
            Err(_) => Self {
                namespace: "unknown".into(),
                server_address: "unknown".into(),
                server_port: 5432,
            },
        }
    }

    /// A span for `sql`; enter it or instrument the query future with it.
    pub fn span(&self, sql: &'static str) -> Span {
        let (op, table) = summarize(sql);
        let name = match &table {
            Some(t) => format!("{op} {t}"),
            None => op.clone(),
        };
        let span = tracing::info_span!("db.query", otel.name = %name, otel.kind = "client");
        span.set_attribute(DB_SYSTEM_NAME, "postgresql");
        span.set_attribute(DB_SYSTEM, "postgresql");
        span.set_attribute(DB_NAMESPACE, self.namespace.clone());
        span.set_attribute(DB_OPERATION_NAME, op);
        if let Some(t) = table {
            span.set_attribute(DB_COLLECTION_NAME, t);
        }
        span.set_attribute(DB_QUERY_TEXT, collapse_whitespace(sql));
        span.set_attribute(SERVER_ADDRESS, self.server_address.clone());
        span.set_attribute(SERVER_PORT, i64::from(self.server_port));
        span
    }

    /// Runs one query future inside its span and records a failure on it.
    pub async fn run<T, E, F>(&self, sql: &'static str, query: F) -> Result<T, E>
    where
        E: Display,
        F: Future<Output = Result<T, E>>,
    {
        let span = self.span(sql);
        let result = query.instrument(span.clone()).await;
        if let Err(e) = &result {
            crate::record_error(&span, "db.error", e.to_string());
        }
        result
    }
}

fn collapse_whitespace(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The operation keyword and main table of a query, for the span name.
pub fn summarize(sql: &str) -> (String, Option<String>) {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let op = words
        .first()
        .map(|w| w.to_ascii_uppercase())
        .unwrap_or_else(|| "QUERY".into());
    // The first plain identifier after `kw`: `FROM UNNEST($1) ... FROM posts` names
    // `posts`, since a function call is not a table.
    let after = |kw: &str| {
        words
            .iter()
            .enumerate()
            .filter(|(_, w)| w.eq_ignore_ascii_case(kw))
            .filter_map(|(i, _)| words.get(i + 1))
            .map(|t| t.trim_end_matches([',', ';', ')']))
            .find(|t| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
            })
            .map(|t| t.to_ascii_lowercase())
    };
    let table = match op.as_str() {
        "SELECT" | "DELETE" => after("FROM"),
        "INSERT" => after("INTO"),
        "UPDATE" => words.get(1).map(|t| t.to_ascii_lowercase()),
        "WITH" => after("FROM"),
        _ => None,
    };
    (op, table)
}

#[cfg(test)]
mod tests {
    use super::summarize;

    fn check(sql: &str, op: &str, table: Option<&str>) {
        assert_eq!(
            summarize(sql),
            (op.to_owned(), table.map(str::to_owned)),
            "{sql}"
        );
    }

    #[test]
    fn summaries() {
        check(
            "SELECT id FROM posts WHERE id = $1",
            "SELECT",
            Some("posts"),
        );
        check(
            "select * from\n  follows f join profiles p",
            "SELECT",
            Some("follows"),
        );
        check(
            "INSERT INTO likes (post_id) VALUES ($1)",
            "INSERT",
            Some("likes"),
        );
        check("UPDATE profiles SET bio = $1", "UPDATE", Some("profiles"));
        check(
            "DELETE FROM likes WHERE post_id = $1",
            "DELETE",
            Some("likes"),
        );
        check("SELECT 1", "SELECT", None);
        check(
            "SELECT p.id FROM UNNEST($1::uuid[]) AS a(x) CROSS JOIN LATERAL (SELECT id FROM posts WHERE x = $2) p",
            "SELECT",
            Some("posts"),
        );
        check("", "QUERY", None);
    }
}
