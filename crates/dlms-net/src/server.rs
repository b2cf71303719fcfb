//! Serves a meter model (`dlms::server::Objects`) to many TCP clients at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dlms::security::EccConfig;
use dlms::server::{Objects, Server, ServerConfig, ServerEvent};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

/// Limits of one listener.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub max_connections: usize,
    /// How each connection behaves (delays and injected faults).
    pub session: SessionOptions,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            max_connections: 64,
            session: SessionOptions::default(),
        }
    }
}

/// How one served connection behaves: a well-behaved meter by default; a simulator turns on
/// the faults it wants a head-end to meet.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Extra latency before each answer (a slow meter or network).
    pub response_delay: Duration,
    /// Close the connection right after the first block of a long answer.
    pub drop_mid_block: bool,
    /// Corrupt the first answer sent once the association is established: an HDLC frame gets
    /// a wrong check sequence, a wrapper frame an unknown APDU tag.
    pub corrupt_first_answer: bool,
    /// Stop answering for good after the first block of a long answer, keeping the connection
    /// open (a meter that hangs mid-transfer: only the client's timeout ends the session).
    pub stall_mid_block: bool,
}

/// Where a connection finds the meter it serves: a lock around the object model.
pub trait MeterHandle: Send + Sync + 'static {
    fn with_objects(&self, f: &mut dyn FnMut(&mut dyn Objects));

    /// The meter's suite 1 or 2 keys and certificates, asked for at each new connection
    /// (so that a renewed key applies to the next association); `None` serves suite 0.
    fn ecc(&self) -> Option<EccConfig> {
        None
    }
}

impl<M: Objects + Send + 'static> MeterHandle for Mutex<M> {
    fn with_objects(&self, f: &mut dyn FnMut(&mut dyn Objects)) {
        // A poisoned lock means another connection panicked inside the model: keep serving
        // with the data as it stands rather than taking the meter down.
        let mut m = self.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut *m);
    }
}

/// Accepts connections until `shutdown` turns true; each connection gets its own association
/// state machine over the shared meter.
pub async fn serve<H: MeterHandle + ?Sized>(
    listener: TcpListener,
    cfg: ServerConfig,
    lcfg: ListenerConfig,
    meter: Arc<H>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
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
        let opts = lcfg.session.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = serve_connection(stream, cfg, &*meter, &opts) => {
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
pub async fn serve_connection<H: MeterHandle + ?Sized>(
    stream: TcpStream,
    cfg: ServerConfig,
    meter: &H,
    opts: &SessionOptions,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    serve_stream(stream, cfg, meter, opts).await
}

/// Serves one connection over any byte stream: a simulator wraps the socket to emulate a slow
/// or lossy link in user space.
pub async fn serve_stream<S, H>(
    mut stream: S,
    cfg: ServerConfig,
    meter: &H,
    opts: &SessionOptions,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: MeterHandle + ?Sized,
{
    let mut server = Server::new(cfg, Instant::now().into_std());
    if let Some(ecc) = meter.ecc() {
        server.set_ecc(ecc);
    }
    let mut rx = vec![0u8; 8192];
    let mut out = Vec::with_capacity(4096);
    let mut associated = false;
    let mut corrupt_pending = opts.corrupt_first_answer;
    loop {
        out.clear();
        while server.poll_transmit(&mut out) {}
        if !out.is_empty() {
            if !opts.response_delay.is_zero() {
                tokio::time::sleep(opts.response_delay).await;
            }
            if associated && corrupt_pending {
                corrupt_pending = false;
                corrupt(&mut out);
            }
            stream.write_all(&out).await?;
            if opts.drop_mid_block && server.is_sending_blocks() {
                tracing::debug!("dropping the connection mid-block (injected fault)");
                return Ok(());
            }
            if opts.stall_mid_block && server.is_sending_blocks() {
                tracing::debug!("stalling mid-block for good (injected fault)");
                // Nothing more is answered; what the client sends is read and ignored until it
                // gives up and closes, so the session ends with the client's timeout.
                loop {
                    if let Some(0) | None = crate::read_until(&mut stream, &mut rx, None).await? {
                        return Ok(());
                    }
                }
            }
        }
        while let Some(ev) = server.poll_event() {
            if matches!(ev, ServerEvent::Associated(_)) {
                associated = true;
            }
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
                meter.with_objects(&mut |m| server.handle_input(bytes, now, m));
            }
        }
    }
}

/// Spoils one outgoing frame so that any client notices: in HDLC a byte inside the frame (its
/// check sequence no longer matches); in the wrapper the APDU's tag becomes 0xFF, which no
/// APDU has.
fn corrupt(out: &mut [u8]) {
    if out.first() == Some(&0x7E) {
        let at = out.len() / 2;
        if let Some(b) = out.get_mut(at) {
            *b ^= 0xFF;
        }
    } else if let Some(b) = out.get_mut(8) {
        *b = 0xFF;
    }
}
