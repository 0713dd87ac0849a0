//! verify's tests: hand-built traces with each defect (children delivered before
//! parents), real OpenTelemetry SDK exporters into the sink over gRPC and HTTP, and
//! fuzzing of the OTLP decoders.

mod checks;
mod fuzz;
mod sink;
