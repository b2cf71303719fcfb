//! A client association over TCP.

use std::time::Duration;

use dlms::client::{AssociationInfo, Client, ClientConfig, Event, Response};
use dlms::xdlms::{ActionResult, DataAccessResult, GetDataResult, SelectiveAccess};
use dlms::{AttributeDescriptor, Data, MethodDescriptor};
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NetError {
    #[error("connection refused: {0}")]
    Refused(std::io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Dlms(#[from] dlms::client::Error),
    #[error("the server closed the connection")]
    Closed,
}

impl NetError {
    /// A short machine-readable reason (for JSON output and metrics).
    pub fn reason(&self) -> &'static str {
        match self {
            NetError::Refused(_) => "refused",
            NetError::ConnectTimeout => "timeout",
            NetError::Io(_) | NetError::Closed => "link",
            NetError::Dlms(e) => e.reason(),
        }
    }
}

/// One association with one meter.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    client: Client,
    out: Vec<u8>,
    rx: Box<[u8]>,
    /// Bytes written and read on the stream so far (for the collector's metrics).
    sent: u64,
    received: u64,
}

impl Connection {
    /// Opens TCP (bounded by `connect_timeout`) and associates.
    pub async fn connect(
        host: &str,
        port: u16,
        cfg: ClientConfig,
        connect_timeout: Duration,
    ) -> Result<Self, NetError> {
        let stream =
            match tokio::time::timeout(connect_timeout, TcpStream::connect((host, port))).await {
                Err(_) => return Err(NetError::ConnectTimeout),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(NetError::Refused(e))
                }
                Ok(Err(e)) => return Err(NetError::Io(e)),
                Ok(Ok(s)) => s,
            };
        stream.set_nodelay(true)?;
        Self::associate(stream, cfg).await
    }

    /// Associates over an already connected stream.
    pub async fn associate(stream: TcpStream, cfg: ClientConfig) -> Result<Self, NetError> {
        let mut conn = Self {
            stream,
            client: Client::new(cfg),
            out: Vec::with_capacity(4096),
            rx: vec![0u8; 16 * 1024].into_boxed_slice(),
            sent: 0,
            received: 0,
        };
        conn.client.connect(Instant::now().into_std());
        match conn.next_event().await? {
            Event::Associated(_) => Ok(conn),
            Event::Closed(Some(e)) => Err(e.into()),
            _ => Err(NetError::Closed),
        }
    }

    pub fn association(&self) -> Option<&AssociationInfo> {
        self.client.association()
    }

    /// Bytes sent and received on this connection so far.
    pub fn bytes(&self) -> (u64, u64) {
        (self.sent, self.received)
    }

    pub fn next_invocation_counter(&self) -> Option<u32> {
        self.client.next_invocation_counter()
    }

    pub async fn get(
        &mut self,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
    ) -> Result<GetDataResult, NetError> {
        self.client
            .get(attribute, access, Instant::now().into_std())?;
        match self.response().await? {
            Response::Get(mut r) if r.len() == 1 => Ok(r.remove(0)),
            _ => Err(dlms::client::Error::Protocol("unexpected answer to GET").into()),
        }
    }

    pub async fn get_list(
        &mut self,
        items: Vec<(AttributeDescriptor, Option<SelectiveAccess>)>,
    ) -> Result<Vec<GetDataResult>, NetError> {
        self.client.get_list(items, Instant::now().into_std())?;
        match self.response().await? {
            Response::Get(r) => Ok(r),
            _ => Err(dlms::client::Error::Protocol("unexpected answer to GET").into()),
        }
    }

    pub async fn set(
        &mut self,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
        value: Data,
    ) -> Result<DataAccessResult, NetError> {
        self.client
            .set(attribute, access, value, Instant::now().into_std())?;
        match self.response().await? {
            Response::Set(r) if r.len() == 1 => Ok(r
                .into_iter()
                .next()
                .unwrap_or(DataAccessResult::OtherReason)),
            _ => Err(dlms::client::Error::Protocol("unexpected answer to SET").into()),
        }
    }

    pub async fn action(
        &mut self,
        method: MethodDescriptor,
        parameters: Option<Data>,
    ) -> Result<(ActionResult, Option<GetDataResult>), NetError> {
        self.client
            .action(method, parameters, Instant::now().into_std())?;
        match self.response().await? {
            Response::Action(r) => r
                .into_iter()
                .next()
                .ok_or_else(|| dlms::client::Error::Protocol("empty action answer").into()),
            _ => Err(dlms::client::Error::Protocol("unexpected answer to ACTION").into()),
        }
    }

    /// Releases the association and closes the connection.
    pub async fn release(mut self) -> Result<(), NetError> {
        self.client.release(Instant::now().into_std());
        loop {
            match self.next_event().await {
                Ok(Event::Closed(None)) | Err(NetError::Closed) => break,
                Ok(Event::Closed(Some(e))) => return Err(e.into()),
                Ok(_) => continue,
                Err(e) => return Err(e),
            }
        }
        let _ = self.stream.shutdown().await;
        Ok(())
    }

    async fn response(&mut self) -> Result<Response, NetError> {
        loop {
            match self.next_event().await? {
                Event::Response(r) => return Ok(r),
                Event::Closed(Some(e)) => return Err(e.into()),
                Event::Closed(None) => return Err(NetError::Closed),
                // Notifications during a request are not this driver's business.
                _ => continue,
            }
        }
    }

    /// Flushes what the state machine has to send, then waits for input or its deadline.
    async fn next_event(&mut self) -> Result<Event, NetError> {
        loop {
            self.out.clear();
            while self.client.poll_transmit(&mut self.out) {}
            if !self.out.is_empty() {
                tracing::trace!(bytes = %Hex(&self.out), "tx");
                self.stream.write_all(&self.out).await?;
                self.sent = self.sent.saturating_add(self.out.len() as u64);
            }
            if let Some(ev) = self.client.poll_event() {
                return Ok(ev);
            }
            if self.client.is_closed() {
                return Err(NetError::Closed);
            }
            let n = crate::read_until(&mut self.stream, &mut self.rx, self.client.poll_timeout())
                .await?;
            let now = Instant::now().into_std();
            match n {
                None => self.client.handle_timeout(now),
                Some(0) => {
                    // The peer closed: the state machine reports what that means.
                    self.client.abort(now);
                    if let Some(ev) = self.client.poll_event() {
                        return match ev {
                            Event::Closed(Some(dlms::client::Error::Aborted)) => {
                                Err(NetError::Closed)
                            }
                            other => Ok(other),
                        };
                    }
                    return Err(NetError::Closed);
                }
                Some(n) => {
                    let bytes = self.rx.get(..n).unwrap_or_default();
                    self.received = self.received.saturating_add(bytes.len() as u64);
                    tracing::trace!(bytes = %Hex(bytes), "rx");
                    self.client.handle_input(bytes, now);
                }
            }
        }
    }
}

/// Bytes as hex in trace logs (framing only: APDUs of ciphered associations stay ciphered).
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
