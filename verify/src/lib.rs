//! Trace verification for socialnet: the OTLP sink that receives every span, the
//! bounded store it keeps them in, and (as it grows) the checks `socialctl
//! verify-traces` runs over them.
//!
//! Depends on no service crate: it judges the system from its telemetry alone.

pub mod checks;
pub mod faults;
pub mod grpc;
pub mod jaeger;
pub mod model;
pub mod otlp;
pub mod report;
pub mod sink;
pub mod skew;
pub mod spec;
pub mod store;

pub use model::{Event, Link, Span, SpanKind, StatusCode};
pub use store::{SpanStore, StoreStats};
