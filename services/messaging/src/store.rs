//! Conversations, members and messages in PostgreSQL: the truth every delivery path
//! (HTTP, socket, backfill) reads and writes through.

use chrono::{DateTime, Utc};
use common::Db;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Result};

/// Members of one conversation, the caller included.
pub const MAX_MEMBERS: usize = 50;
/// Characters in one message.
pub const MAX_BODY: usize = 4000;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Message {
    pub conversation_id: i64,
    /// 1, 2, 3, … within the conversation, in the order the messages were stored.
    pub seq: i64,
    pub sender: String,
    /// The sender's own id for this message; a retry with the same id is stored once.
    pub client_id: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Conversation {
    pub id: i64,
    /// Usernames, sorted.
    pub members: Vec<String>,
    /// The sequence number of its newest message (0: none yet).
    pub last_seq: i64,
    pub last_activity: DateTime<Utc>,
    /// Messages after the caller's read marker.
    pub unread: i64,
}

/// A username as the other services accept it.
pub fn check_username(u: &str) -> Result<()> {
    let ok = (3..=30).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "{u:?} is not a username (3 to 30 of a-z, 0-9 and _)"
        )))
    }
}

const DIRECT: &str = "INSERT INTO conversations (direct_key) VALUES ($1) \
     ON CONFLICT (direct_key) DO UPDATE SET direct_key = EXCLUDED.direct_key \
     RETURNING id, (xmax = 0) AS created";
const GROUP: &str = "INSERT INTO conversations DEFAULT VALUES RETURNING id, true AS created";
const ADD_MEMBERS: &str = "INSERT INTO members (conversation_id, username) \
     SELECT $1, u FROM UNNEST($2::text[]) AS u ON CONFLICT DO NOTHING";

/// Creates a conversation of `me` and `others` (a one-to-one conversation between the
/// same two people is found again, not created twice). Returns it and whether it is new.
pub async fn create(db: &Db, me: &str, others: &[String]) -> Result<(Conversation, bool)> {
    let mut members: Vec<String> = others.to_vec();
    for m in &members {
        check_username(m)?;
    }
    members.push(me.to_owned());
    members.sort();
    members.dedup();
    if members.len() < 2 {
        return Err(ApiError::validation(
            "a conversation needs at least one member besides you",
        ));
    }
    if members.len() > MAX_MEMBERS {
        return Err(ApiError::validation(format!(
            "a conversation has at most {MAX_MEMBERS} members, you included"
        )));
    }
    let mut tx = db.pool.begin().await?;
    let (id, created): (i64, bool) = if members.len() == 2 {
        let key = members.join("\n");
        db.spans
            .run(DIRECT, sqlx::query_as(DIRECT).bind(key).fetch_one(&mut *tx))
            .await?
    } else {
        db.spans
            .run(GROUP, sqlx::query_as(GROUP).fetch_one(&mut *tx))
            .await?
    };
    db.spans
        .run(
            ADD_MEMBERS,
            sqlx::query(ADD_MEMBERS)
                .bind(id)
                .bind(&members)
                .execute(&mut *tx),
        )
        .await?;
    db.spans.run("COMMIT", tx.commit()).await?;
    let c = one(db, me, id).await?;
    Ok((c, created))
}

const LIST: &str = "SELECT c.id, \
       ARRAY(SELECT username FROM members x WHERE x.conversation_id = c.id ORDER BY username) AS members, \
       c.last_seq, c.last_activity, GREATEST(c.last_seq - m.read_seq, 0) AS unread \
     FROM members m JOIN conversations c ON c.id = m.conversation_id \
     WHERE m.username = $1 AND ($2::timestamptz IS NULL OR (c.last_activity, c.id) < ($2, $3)) \
     ORDER BY c.last_activity DESC, c.id DESC LIMIT $4";
const ONE: &str = "SELECT c.id, \
       ARRAY(SELECT username FROM members x WHERE x.conversation_id = c.id ORDER BY username) AS members, \
       c.last_seq, c.last_activity, GREATEST(c.last_seq - m.read_seq, 0) AS unread \
     FROM members m JOIN conversations c ON c.id = m.conversation_id \
     WHERE m.username = $1 AND c.id = $2";

/// A conversation as `me` sees it.
pub async fn one(db: &Db, me: &str, id: i64) -> Result<Conversation> {
    let c: Option<Conversation> = db
        .spans
        .run(
            ONE,
            sqlx::query_as(ONE)
                .bind(me)
                .bind(id)
                .fetch_optional(&db.pool),
        )
        .await?;
    match c {
        Some(c) => Ok(c),
        None => Err(not_member(db, id).await),
    }
}

/// `me`'s conversations, newest activity first, after `cursor` (from a previous page).
pub async fn list(
    db: &Db,
    me: &str,
    cursor: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Vec<Conversation>> {
    let (at, id) = match cursor {
        Some((at, id)) => (Some(at), id),
        None => (None, 0),
    };
    Ok(db
        .spans
        .run(
            LIST,
            sqlx::query_as(LIST)
                .bind(me)
                .bind(at)
                .bind(id)
                .bind(limit)
                .fetch_all(&db.pool),
        )
        .await?)
}

const EXISTS: &str = "SELECT id FROM conversations WHERE id = $1";

/// Why `me` may not touch conversation `id`: it does not exist (404) or `me` is not in
/// it (403).
async fn not_member(db: &Db, id: i64) -> ApiError {
    let found: std::result::Result<Option<(i64,)>, _> = db
        .spans
        .run(
            EXISTS,
            sqlx::query_as(EXISTS).bind(id).fetch_optional(&db.pool),
        )
        .await;
    match found {
        Ok(Some(_)) => ApiError::Forbidden(format!("you are not a member of conversation {id}")),
        Ok(None) => ApiError::NotFound(format!("no conversation {id}")),
        Err(e) => e.into(),
    }
}

const IS_MEMBER: &str = "SELECT 1 FROM members WHERE conversation_id = $1 AND username = $2";

/// Ok when `me` is a member of conversation `id`.
pub async fn check_member(db: &Db, me: &str, id: i64) -> Result<()> {
    let found: Option<(i32,)> = db
        .spans
        .run(
            IS_MEMBER,
            sqlx::query_as(IS_MEMBER)
                .bind(id)
                .bind(me)
                .fetch_optional(&db.pool),
        )
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(not_member(db, id).await),
    }
}

const MEMBERS: &str = "SELECT username FROM members WHERE conversation_id = $1";

pub async fn members(db: &Db, id: i64) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = db
        .spans
        .run(
            MEMBERS,
            sqlx::query_as(MEMBERS).bind(id).fetch_all(&db.pool),
        )
        .await?;
    Ok(rows.into_iter().map(|(u,)| u).collect())
}

const BEFORE: &str = "SELECT conversation_id, seq, sender, client_id, body, created_at FROM messages \
     WHERE conversation_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3";
const AFTER: &str = "SELECT conversation_id, seq, sender, client_id, body, created_at FROM messages \
     WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";

/// Up to `limit` messages before sequence `before`, newest first.
pub async fn history(db: &Db, me: &str, id: i64, before: i64, limit: i64) -> Result<Vec<Message>> {
    check_member(db, me, id).await?;
    Ok(db
        .spans
        .run(
            BEFORE,
            sqlx::query_as(BEFORE)
                .bind(id)
                .bind(before)
                .bind(limit)
                .fetch_all(&db.pool),
        )
        .await?)
}

/// Up to `limit` messages after sequence `after`, oldest first (a reconnect's backfill).
pub async fn after(db: &Db, me: &str, id: i64, after: i64, limit: i64) -> Result<Vec<Message>> {
    check_member(db, me, id).await?;
    Ok(db
        .spans
        .run(
            AFTER,
            sqlx::query_as(AFTER)
                .bind(id)
                .bind(after)
                .bind(limit)
                .fetch_all(&db.pool),
        )
        .await?)
}

const EXISTING: &str = "SELECT conversation_id, seq, sender, client_id, body, created_at FROM messages \
     WHERE conversation_id = $1 AND sender = $2 AND client_id = $3";
/// One round trip for a new message: the next sequence number (the conversation's row
/// lock orders concurrent senders), the insert, the sender's read marker, and the
/// members to deliver to. No row: a retry of a stored client id, or not a member.
/// (Two attempts with one client id racing each other can leave one number unused:
/// sequence numbers order messages; `sync` asks for what comes after one.)
const SEND: &str = "WITH next AS ( \
       UPDATE conversations SET last_seq = last_seq + 1, last_activity = now() \
       WHERE id = $1 \
         AND NOT EXISTS (SELECT 1 FROM messages WHERE conversation_id = $1 AND sender = $2 AND client_id = $3) \
         AND EXISTS (SELECT 1 FROM members WHERE conversation_id = $1 AND username = $2) \
       RETURNING last_seq), \
     ins AS ( \
       INSERT INTO messages (conversation_id, seq, sender, client_id, body) \
       SELECT $1, last_seq, $2, $3, $4 FROM next \
       ON CONFLICT (conversation_id, sender, client_id) DO NOTHING \
       RETURNING conversation_id, seq, sender, client_id, body, created_at), \
     mark AS ( \
       UPDATE members SET read_seq = GREATEST(read_seq, ins.seq) FROM ins \
       WHERE members.conversation_id = $1 AND members.username = $2) \
     SELECT ins.conversation_id, ins.seq, ins.sender, ins.client_id, ins.body, ins.created_at, \
       ARRAY(SELECT username FROM members WHERE conversation_id = $1) AS members \
     FROM ins";

#[derive(sqlx::FromRow)]
struct Sent {
    #[sqlx(flatten)]
    message: Message,
    members: Vec<String>,
}

/// Stores a message from `me` with the conversation's next sequence number; returns it
/// with the members to deliver it to. The same `client_id` again returns the stored
/// message, no members, and `true` (a duplicate), storing nothing.
pub async fn send(
    db: &Db,
    me: &str,
    id: i64,
    client_id: &str,
    body: &str,
) -> Result<(Message, Vec<String>, bool)> {
    common::error::check_text("body", body, 1, MAX_BODY)?;
    common::error::check_len("client_id", client_id, 1, 64)?;
    let sent: Option<Sent> = db
        .spans
        .run(
            SEND,
            sqlx::query_as(SEND)
                .bind(id)
                .bind(me)
                .bind(client_id)
                .bind(body)
                .fetch_optional(&db.pool),
        )
        .await?;
    if let Some(s) = sent {
        return Ok((s.message, s.members, false));
    }
    match existing(db, me, id, client_id).await? {
        Some(m) => Ok((m, Vec::new(), true)),
        None => Err(not_member(db, id).await),
    }
}

async fn existing(db: &Db, me: &str, id: i64, client_id: &str) -> Result<Option<Message>> {
    Ok(db
        .spans
        .run(
            EXISTING,
            sqlx::query_as(EXISTING)
                .bind(id)
                .bind(me)
                .bind(client_id)
                .fetch_optional(&db.pool),
        )
        .await?)
}

/// Moves `me`'s read marker forward to `seq` (never back). Returns the marker.
pub async fn mark_read(db: &Db, me: &str, id: i64, seq: i64) -> Result<i64> {
    const MARK: &str = "UPDATE members SET read_seq = LEAST(GREATEST(read_seq, $3), \
         (SELECT last_seq FROM conversations WHERE id = $1)) \
         WHERE conversation_id = $1 AND username = $2 RETURNING read_seq";
    let r: Option<(i64,)> = db
        .spans
        .run(
            MARK,
            sqlx::query_as(MARK)
                .bind(id)
                .bind(me)
                .bind(seq)
                .fetch_optional(&db.pool),
        )
        .await?;
    match r {
        Some((s,)) => Ok(s),
        None => Err(not_member(db, id).await),
    }
}

const PEERS: &str = "SELECT DISTINCT o.username FROM members m \
     JOIN members o ON o.conversation_id = m.conversation_id \
     WHERE m.username = $1 AND o.username <> $1 LIMIT 10000";

/// Everyone who shares a conversation with `me` (who sees `me`'s presence).
pub async fn peers(db: &Db, me: &str) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = db
        .spans
        .run(PEERS, sqlx::query_as(PEERS).bind(me).fetch_all(&db.pool))
        .await?;
    Ok(rows.into_iter().map(|(u,)| u).collect())
}
