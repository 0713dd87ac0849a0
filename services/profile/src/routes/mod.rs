//! Profile's HTTP routes, one file per resource.

pub mod follows;
pub mod profiles;
pub mod search;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user as shown in lists (followers, following, search results).
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ProfileSummary {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub follower_count: i64,
}

/// One page of a keyset-paginated list; pass `next_cursor` back as `cursor`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Uuid>,
}
