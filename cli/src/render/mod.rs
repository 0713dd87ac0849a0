//! The component table rendered for other engines: Compose now, Kubernetes next.

pub mod compose;
