//! tokio drivers for the sans-I/O `dlms` state machines: a client connection that reads and
//! commands one meter, and a listener that serves a meter model to many clients.

mod client;
mod server;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// Reads what has arrived, or `None` when `deadline` passes first (`Some(0)`: the peer closed).
pub(crate) async fn read_until<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    deadline: Option<std::time::Instant>,
) -> std::io::Result<Option<usize>> {
    let read = stream.read(buf);
    match deadline.map(Instant::from_std) {
        Some(d) => match tokio::time::timeout_at(d, read).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        },
        None => read.await.map(Some),
    }
}

pub use client::{Connection, NetError};
pub use server::{
    serve, serve_connection, serve_stream, ListenerConfig, MeterHandle, SessionOptions,
};
