//! socialctl end to end: the real binary boots a real stack (PostgreSQL, Redis, NGINX,
//! the services, the sink) as local processes on private ports, and is driven like a
//! user drives it.

mod compose;
mod docker_stack;
mod local_stack;
