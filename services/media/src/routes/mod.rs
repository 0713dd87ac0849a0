//! Media's HTTP routes: uploads and their state (`uploads.rs`), the files (`files.rs`).

pub mod files;
pub mod uploads;
