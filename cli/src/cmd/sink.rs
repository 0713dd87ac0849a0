//! `socialctl sink`: the OTLP receiver and span store on its own.

use std::net::SocketAddr;

use anyhow::Context as _;

#[derive(Debug, Clone, clap::Args)]
pub struct SinkArgs {
    /// OTLP/gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub grpc: SocketAddr,
    /// OTLP/HTTP listen address (also serves the query API under /api/).
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub http: SocketAddr,
    /// Most spans kept in memory (about 850 bytes each); the oldest traces are evicted
    /// (and counted) past it. The default holds a 500-user, 60-second load run (about
    /// 510,000 spans) twice over.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_spans: usize,
}

pub async fn run(a: &SinkArgs) -> anyhow::Result<()> {
    let store = std::sync::Arc::new(verify::SpanStore::new(a.max_spans));
    eprintln!(
        "sink: OTLP/gRPC on {}, OTLP/HTTP and query API on http://{}",
        a.grpc, a.http
    );
    verify::sink::serve(store, a.grpc, a.http, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .with_context(|| {
        format!(
            "the sink could not listen on {} / {} (is another sink or collector running?)",
            a.grpc, a.http
        )
    })
}
