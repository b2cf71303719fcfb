//! Serves a meter model (`dlms::server::Objects`) to many TCP clients at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dlms::server::{Objects, Server, ServerConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

/// Limits of one listener.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub max_connections: usize,
    /// Extra latency before each answer (a simulated slow meter or network).
    pub response_delay: Duration,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            max_connections: 64,
            response_delay: Duration::ZERO,
        }
    }
}

/// Accepts connections until `shutdown` turns true; each connection gets its own association
/// state machine over the shared meter.
pub async fn serve<M>(
    listener: TcpListener,
    cfg: ServerConfig,
    lcfg: ListenerConfig,
    meter: Arc<Mutex<M>>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()>
where
    M: Objects + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(lcfg.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
            _ = shutdown.changed() => return Ok(()),
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => r?,
            _ = shutdown.changed() => return Ok(()),
        };
        let cfg = cfg.clone();
        let meter = meter.clone();
        let delay = lcfg.response_delay;
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = serve_connection(stream, cfg, meter, delay) => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = stop.changed() => {}
            }
            drop(permit);
        });
    }
}

/// Runs one connection to its end.
pub async fn serve_connection<M>(
    mut stream: TcpStream,
    cfg: ServerConfig,
    meter: Arc<Mutex<M>>,
    delay: Duration,
) -> std::io::Result<()>
where
    M: Objects + Send + 'static,
{
    stream.set_nodelay(true)?;
    let mut server = Server::new(cfg, Instant::now().into_std());
    let mut rx = vec![0u8; 8192];
    let mut out = Vec::with_capacity(4096);
    loop {
        out.clear();
        while server.poll_transmit(&mut out) {}
        if !out.is_empty() {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            stream.write_all(&out).await?;
        }
        while let Some(ev) = server.poll_event() {
            tracing::trace!(?ev, "server event");
        }
        if server.is_closed() {
            let _ = stream.shutdown().await;
            return Ok(());
        }
        let n = crate::read_until(&mut stream, &mut rx, server.poll_timeout()).await?;
        let now = Instant::now().into_std();
        match n {
            None => server.handle_timeout(now),
            Some(0) => return Ok(()),
            Some(n) => {
                let bytes = rx.get(..n).unwrap_or_default();
                // A poisoned lock means another connection panicked inside the model: keep
                // serving with the data as it stands rather than taking every meter down.
                let mut m = meter.lock().unwrap_or_else(|p| p.into_inner());
                server.handle_input(bytes, now, &mut *m);
            }
        }
    }
}
