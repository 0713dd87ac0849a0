//! What feed's clients of other services share: their base URL (the gateway), and one
//! traced GET that reads a JSON answer, takes a 404 as "none", and calls anything else
//! the service being unavailable (a 503 for feed's caller, the cause in the log).

use serde::de::DeserializeOwned;
use telemetry::HttpClient;

use crate::error::{ApiError, Result};

#[derive(Debug, Clone)]
pub struct ServiceClient {
    http: HttpClient,
    base: String,
    /// The service's name, for the error and the log line.
    name: &'static str,
}

impl ServiceClient {
    pub fn new(http: HttpClient, base: String, name: &'static str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            name,
        }
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> ApiError {
        tracing::warn!(error = %e, "{} service call failed", self.name);
        ApiError::Unavailable(format!(
            "the {} service did not answer; retry shortly",
            self.name
        ))
    }

    /// `GET <base><path>?<query>` with the caller's token and the current trace context
    /// (a CLIENT span); `None` when the service answers 404.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        token: &str,
    ) -> Result<Option<T>> {
        let url = format!("{}{path}", self.base);
        let res = self
            .http
            .send(self.http.reqwest().get(url).query(query).bearer_auth(token))
            .await
            .map_err(|e| self.unavailable(e))?;
        if res.status() == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !res.status().is_success() {
            return Err(self.unavailable(format!("HTTP {}", res.status())));
        }
        res.json().await.map(Some).map_err(|e| self.unavailable(e))
    }
}
