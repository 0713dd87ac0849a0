//! Media's errors are the shared [`common::ApiError`]: every service answers with the
//! same `{error, message, trace_id}` body.

pub use common::ApiError;

pub type Result<T> = std::result::Result<T, ApiError>;
