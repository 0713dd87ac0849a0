//! Official-image mode: the pinned images used where a registry answers, and the
//! Collector's configuration. Offline (the default here) every image is built locally.

/// Where the infrastructure images come from.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum ImageMode {
    /// Everything from images socialctl builds (debootstrap base): no registry needed.
    #[default]
    Local,
    /// Official images, pinned by version, plus the Collector and Jaeger; only the
    /// services' image is built locally.
    Official,
}

/// The official images of official-image mode, pinned (never `latest`).
pub const POSTGRES_IMAGE: &str = "postgres:16.4-bookworm";
pub const REDIS_IMAGE: &str = "redis:7.4.1-bookworm";
pub const NGINX_IMAGE: &str = "nginx:1.27.3-bookworm";
pub const COLLECTOR_IMAGE: &str = "otel/opentelemetry-collector-contrib:0.114.0";
pub const JAEGER_IMAGE: &str = "jaegertracing/all-in-one:1.62.0";
/// The object store in official-image mode, in place of `socialnet objects`; media makes
/// its bucket at start.
pub const MINIO_IMAGE: &str = "minio/minio:RELEASE.2025-04-22T22-12-26Z";
/// Base of the services' image in official-image mode (instead of the debootstrap one).
pub const DEBIAN_IMAGE: &str = "debian:bookworm-20241111-slim";
pub const OFFICIAL_IMAGES: &[&str] = &[
    POSTGRES_IMAGE,
    REDIS_IMAGE,
    NGINX_IMAGE,
    COLLECTOR_IMAGE,
    JAEGER_IMAGE,
    MINIO_IMAGE,
    DEBIAN_IMAGE,
];

/// The Collector's configuration in official-image mode: OTLP in, batched, out to
/// Jaeger (OTLP/gRPC) and to socialctl's sink (OTLP/HTTP), so `verify-traces` and the
/// Jaeger UI see the same spans.
pub const COLLECTOR_CONFIG: &str = "\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  batch:
    timeout: 500ms
exporters:
  otlp/jaeger:
    endpoint: jaeger:4317
    tls:
      insecure: true
  otlphttp/sink:
    endpoint: http://sink:4318
extensions:
  health_check:
    endpoint: 0.0.0.0:13133
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp/jaeger, otlphttp/sink]
";
