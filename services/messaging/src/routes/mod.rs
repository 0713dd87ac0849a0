//! Messaging's HTTP routes: conversations, messages, and the live socket with presence.

pub mod conversations;
pub mod live;
pub mod messages;
