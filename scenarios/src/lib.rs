//! Scenarios as data: the load mix, chaos experiments and expected trace shapes.
//!
//! This crate is filled by the `load` and `verify-traces` work; it depends on no service
//! crate, so socialctl can read scenarios without linking the services.
