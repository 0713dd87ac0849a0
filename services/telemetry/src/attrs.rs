//! Attribute keys, shared by the code that emits them and by `verify`, which checks them.
//!
//! Standard keys come from `opentelemetry-semantic-conventions` (schema 1.42); the few
//! socialnet-specific keys are namespaced `socialnet.*` or follow the `cache.*` draft.

pub use opentelemetry_semantic_conventions::attribute::{
    AWS_S3_BUCKET, AWS_S3_KEY, CLIENT_ADDRESS, DB_COLLECTION_NAME, DB_NAMESPACE, DB_OPERATION_NAME,
    DB_QUERY_TEXT, DB_SYSTEM_NAME, ERROR_TYPE, HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE, MESSAGING_BATCH_MESSAGE_COUNT, MESSAGING_DESTINATION_NAME,
    MESSAGING_MESSAGE_CONVERSATION_ID, MESSAGING_MESSAGE_ID, MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE, MESSAGING_SYSTEM, NETWORK_PROTOCOL_VERSION, SERVER_ADDRESS,
    SERVER_PORT, SERVICE_INSTANCE_ID, SERVICE_NAME, SERVICE_VERSION, URL_FULL, URL_PATH,
    URL_SCHEME, USER_AGENT_ORIGINAL,
};

/// The pre-1.26 name of `db.system.name`; still emitted because many backends and
/// workshop material key on it.
pub const DB_SYSTEM: &str = "db.system";
/// Whether a cache lookup was served from the cache (`true`) or fell through (`false`).
pub const CACHE_HIT: &str = "cache.hit";
/// Set when the cache could not be used at all (Redis down): the read went to PostgreSQL.
pub const CACHE_BYPASSED: &str = "cache.bypassed";
/// The id NGINX gives each request (`X-Request-Id`), to join gateway logs to traces.
pub const HTTP_REQUEST_ID: &str = "http.request.header.x-request-id";
/// The authenticated caller, when there is one.
pub const USER_ID: &str = "enduser.id";
/// How a home timeline was assembled: `push`, `pull` or `push+pull` (celebrity merge).
pub const FEED_STRATEGY: &str = "socialnet.feed.strategy";
/// Number of followers a new post was pushed to.
pub const FEED_FANOUT_COUNT: &str = "socialnet.feed.fanout.count";
/// Set on a request's server span when its access token belonged to a signed-out session.
pub const SESSION_REVOKED: &str = "socialnet.session.revoked";
/// How many members a chat message was delivered to (on one replica, or in all).
pub const MESSAGING_RECIPIENTS: &str = "socialnet.messaging.recipients";
/// The type of a WebSocket frame a server span handles (`send`, `sync`, …).
pub const WS_FRAME_TYPE: &str = "socialnet.ws.frame.type";
/// One socket on one replica (a number unique within that replica's life).
pub const WS_SOCKET_ID: &str = "socialnet.ws.socket.id";
/// What became of an event handed to a socket: `queued`, `full` (the socket fell behind
/// and is closed) or `closed` (it had gone).
pub const WS_PUSH_OUTCOME: &str = "socialnet.ws.push.outcome";
/// The AWS SDK conventions' RPC attributes on an object-store call (`aws-api`, `S3`,
/// `PutObject`). Spelled here: the crate marks `rpc.system` and `rpc.service` deprecated
/// in favour of newer RPC names, while the AWS SDK conventions and the trace UIs learners
/// use still read these.
pub const RPC_SYSTEM: &str = "rpc.system";
pub const RPC_SERVICE: &str = "rpc.service";
pub const RPC_METHOD: &str = "rpc.method";
/// Set to false on an object-store call that asked whether an object exists and was
/// told it does not (an answer, not a failure).
pub const S3_FOUND: &str = "socialnet.s3.found";
