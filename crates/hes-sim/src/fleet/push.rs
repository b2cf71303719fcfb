//! Pushes: meters connect to the head-end and send data notifications, ciphered like their
//! unicast traffic (general-glo-ciphering with the meter's system title, so the receiver can
//! find the keys; authenticated and encrypted; the meter's own invocation counter).
//!
//! Every push travels in its own TCP connection, from the meter's own address, in a wrapper
//! frame from wPort 1 (the management logical device) to wPort 102 (the IDIS push client), for
//! HDLC meters too. Two kinds: periodic interval data at every interval boundary of meter time,
//! and alarms when something happens (power down/up, tamper, relay change, firmware activated).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::{Fleet, MeterCell, Shared};
use crate::meter::PushKind;

/// The wrapper port pushes are sent to (IDIS push client).
pub const PUSH_WPORT: u16 = 102;

#[derive(Debug, Clone)]
pub struct PushConfig {
    /// The head-end's push listener.
    pub destination: SocketAddr,
    /// Seconds of meter time between interval pushes (`None`: alarms only).
    pub interval_s: Option<i64>,
    /// Pushes in flight at once across the fleet.
    pub concurrency: usize,
    /// Attempts per push (the first one included): the push setups' number_of_retries is one
    /// less, until a client sets it.
    pub attempts: u32,
    /// The push setups' repetition_delay until a client sets it: seconds between attempts.
    pub repetition_delay_s: u16,
}

impl PushConfig {
    pub fn new(destination: SocketAddr) -> Self {
        Self {
            destination,
            interval_s: Some(900),
            concurrency: 256,
            attempts: 3,
            repetition_delay_s: 1,
        }
    }
}

/// Runs the pushes of the whole fleet: alarms as meters raise them, interval data at every
/// boundary.
pub(super) fn spawn(
    fleet: Arc<Fleet>,
    cfg: PushConfig,
    mut alarms: mpsc::Receiver<(u32, PushKind)>,
) -> JoinHandle<()> {
    let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let alarm_fleet = fleet.clone();
    let alarm_cfg = cfg.clone();
    let alarm_permits = permits.clone();
    let alarm_task = tokio::spawn(async move {
        while let Some((index, kind)) = alarms.recv().await {
            let Some(cell) = alarm_fleet.meters().get(index as usize).cloned() else {
                continue;
            };
            let Ok(permit) = alarm_permits.clone().acquire_owned().await else {
                return;
            };
            let shared = alarm_fleet.shared.clone();
            let cfg = alarm_cfg.clone();
            let permits = alarm_permits.clone();
            tokio::spawn(async move {
                send(&cell, &shared, &cfg, kind, permit, &permits).await;
            });
        }
    });
    tokio::spawn(async move {
        // Ends the alarm task with this one (the fleet aborts it at shutdown).
        struct AbortOnDrop(JoinHandle<()>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let _alarms = AbortOnDrop(alarm_task);
        let Some(interval) = cfg.interval_s.filter(|&i| i > 0) else {
            std::future::pending::<()>().await;
            return;
        };
        let clock = fleet.clock();
        loop {
            let now = clock.now();
            let next = (now.div_euclid(interval) + 1) * interval;
            tokio::time::sleep(clock.real_delay_until(next)).await;
            for cell in fleet.meters() {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let cell = cell.clone();
                let shared = fleet.shared.clone();
                let cfg = cfg.clone();
                let permits = permits.clone();
                tokio::spawn(async move {
                    send(
                        &cell,
                        &shared,
                        &cfg,
                        PushKind::Interval(next),
                        permit,
                        &permits,
                    )
                    .await;
                });
            }
        }
    })
}

/// Sends one push of one meter, retried as its push setup says (number_of_retries, each after
/// the repetition_delay, in real seconds: the network does not run faster with the meters'
/// clock). Meters that are down or refusing stay silent. `permit` is one of the pushes in flight
/// (`permits`): let go while waiting to retry, so that one meter's retries hold up no other.
pub(super) async fn send(
    cell: &MeterCell,
    shared: &Shared,
    cfg: &PushConfig,
    kind: PushKind,
    permit: OwnedSemaphorePermit,
    permits: &Arc<Semaphore>,
) {
    let mut permit = Some(permit);
    let (frame, (retries, delay_s)) = {
        let mut m = cell.lock();
        // A meter that refuses connections is off the network; a power-down alarm is the
        // meter's last gasp and still goes out.
        let last_gasp =
            matches!(kind, PushKind::Alarm { code, .. } if code == crate::code::POWER_DOWN);
        if m.faults.refused || (!m.powered() && !last_gasp) {
            return;
        }
        if m.faults.lose_pushes && matches!(kind, PushKind::Interval(_)) {
            drop(m);
            tracing::info!(meter = %cell.spec.id(), ?kind, "push lost (fault lose_pushes)");
            shared.stats.pushes_failed.fetch_add(1, Ordering::Relaxed);
            cell.link
                .log
                .pushes_given_up
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let retry = m.push_retry(matches!(kind, PushKind::Alarm { .. }));
        match m.push_frame(kind, PUSH_WPORT) {
            Some(f) => (f, retry),
            None => return,
        }
    };
    let source = SocketAddr::new(cell.spec.addr.ip(), 0);
    let link = &cell.link;
    for attempt in 0..=u32::from(retries) {
        if attempt > 0 {
            drop(permit.take());
            tokio::time::sleep(Duration::from_secs(u64::from(delay_s))).await;
            match permits.clone().acquire_owned().await {
                Ok(p) => permit = Some(p),
                Err(_) => return,
            }
        }
        shared.stats.push_attempts.fetch_add(1, Ordering::Relaxed);
        link.log.push_attempts.fetch_add(1, Ordering::Relaxed);
        let r = if link.connect_fails() {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the link refused (link profile)",
            ))
        } else {
            tokio::time::sleep(link.push_delay(frame.len())).await;
            deliver(source, cfg.destination, &frame).await
        };
        match r {
            Ok(()) => {
                shared.stats.pushes_sent.fetch_add(1, Ordering::Relaxed);
                link.log.pushes_delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                tracing::debug!(meter = %cell.spec.id(), error = %e, attempt, "push failed");
            }
        }
    }
    tracing::info!(meter = %cell.spec.id(), ?kind, retries, "push given up after its retries");
    shared.stats.pushes_failed.fetch_add(1, Ordering::Relaxed);
    link.log.pushes_given_up.fetch_add(1, Ordering::Relaxed);
}

async fn deliver(source: SocketAddr, dest: SocketAddr, frame: &[u8]) -> std::io::Result<()> {
    let socket = if dest.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // From the meter's own address when it has one of the same family (loopback fleets).
    if source.is_ipv4() == dest.is_ipv4() && !source.ip().is_unspecified() {
        let _ = socket.bind(source);
    }
    let mut stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(dest))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    tokio::time::timeout(Duration::from_secs(5), async {
        stream.write_all(frame).await?;
        stream.shutdown().await
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "send timed out"))?
}
