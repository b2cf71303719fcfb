//! tokio drivers for the sans-I/O `dlms` state machines: a client connection that reads and
//! commands one meter, and a listener that serves a meter model to many clients.

mod client;
mod server;

pub use client::{Connection, NetError};
pub use server::{serve, serve_connection, ListenerConfig};
