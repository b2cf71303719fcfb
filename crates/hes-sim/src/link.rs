//! Realistic links in user space (`tc netem` needs privileges a test machine rarely has): each
//! meter sits behind a link profile with a round-trip time and jitter, a bandwidth applied to
//! every frame, a connect-failure rate, mid-session drops and occasional stalls like a TCP
//! retransmission. A fleet takes a mix of profiles (`gprs=0.6,lte-m=0.3,nb-iot=0.1`); which
//! meter gets which, and its own round trip and bandwidth within the profile's ranges, follow
//! from the fleet seed alone. Meters without a profile have an ideal link (no delay at all).
//!
//! The delays are applied where the meter writes: an answer leaves one round trip (with
//! jitter), plus the transmission time of the request and the answer at the link's bandwidth,
//! after the request arrived, so a client sees what it would see over the real link. The TCP
//! handshake costs one more round trip, charged to the first answer of a connection (the
//! kernel completes it at once on loopback).

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::data::hash;

/// What a kind of link does. Ranges are `[low, high]`: each meter draws its own value once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkProfile {
    #[serde(skip_deserializing)]
    pub name: String,
    /// Round-trip time, milliseconds.
    pub rtt_ms: [u32; 2],
    /// Each exchange's round trip varies by up to this much either way, milliseconds.
    pub jitter_ms: u32,
    /// Bandwidth, kbit/s (0: unlimited).
    pub kbps: [f64; 2],
    /// Share of connection attempts refused (reset at accept; a push that does not connect).
    pub connect_fail: f64,
    /// Chance per answer, after the first, that the link goes away mid-session.
    pub drop: f64,
    /// Chance per answer that it is held up as by a TCP retransmission, and for how long.
    pub stall: f64,
    pub stall_ms: [u32; 2],
}

impl Default for LinkProfile {
    fn default() -> Self {
        Self::ideal()
    }
}

/// The profiles every fleet knows by name.
pub const BUILTIN: [&str; 4] = ["ideal", "gprs", "lte-m", "nb-iot"];

impl LinkProfile {
    /// No delay, no loss: loopback as it is.
    pub fn ideal() -> Self {
        Self {
            name: "ideal".into(),
            rtt_ms: [0, 0],
            jitter_ms: 0,
            kbps: [0.0, 0.0],
            connect_fail: 0.0,
            drop: 0.0,
            stall: 0.0,
            stall_ms: [1000, 3000],
        }
    }

    /// A built-in profile. The figures are typical of field deployments: GPRS round trips of
    /// 0.3-1.5 s at 9.6-56 kbit/s; LTE-M and NB-IoT in power-saving set-ups 1-3 s, LTE-M at
    /// up to 256 kbit/s, NB-IoT at a few tens.
    pub fn builtin(name: &str) -> Option<Self> {
        let p = |rtt_ms, jitter_ms, kbps, connect_fail, drop, stall| Self {
            name: name.to_string(),
            rtt_ms,
            jitter_ms,
            kbps,
            connect_fail,
            drop,
            stall,
            stall_ms: [1000, 3000],
        };
        Some(match name {
            "ideal" => Self::ideal(),
            "gprs" => p([300, 1500], 200, [9.6, 56.0], 0.02, 0.002, 0.01),
            "lte-m" => p([1000, 2000], 300, [64.0, 256.0], 0.01, 0.001, 0.005),
            "nb-iot" => p([1500, 3000], 500, [9.6, 60.0], 0.03, 0.003, 0.02),
            _ => return None,
        })
    }

    pub fn is_ideal(&self) -> bool {
        self.rtt_ms[1] == 0
            && self.jitter_ms == 0
            && self.kbps[1] <= 0.0
            && self.connect_fail <= 0.0
            && self.drop <= 0.0
            && self.stall <= 0.0
    }

    fn check(&self) -> Result<(), String> {
        let rate = |x: f64| (0.0..=1.0).contains(&x);
        if self.rtt_ms[0] > self.rtt_ms[1]
            || self.stall_ms[0] > self.stall_ms[1]
            || !self.kbps.iter().all(|k| k.is_finite() && *k >= 0.0)
            || self.kbps[0] > self.kbps[1]
        {
            return Err(format!(
                "profile {}: a range's low is above its high",
                self.name
            ));
        }
        if !(rate(self.connect_fail) && rate(self.drop) && rate(self.stall)) {
            return Err(format!("profile {}: rates must be in 0..=1", self.name));
        }
        Ok(())
    }
}

/// A fleet's mix of link profiles: each with its share; the rest of the fleet is ideal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkMix {
    pub shares: Vec<(Arc<LinkProfile>, f64)>,
}

/// Profiles defined in a file (`--network-file`), with the shares the file gives.
#[derive(Debug, Clone, Default)]
pub struct NetworkFile {
    pub profiles: BTreeMap<String, LinkProfile>,
    pub shares: Vec<(String, f64)>,
}

/// One profile in a TOML network file: the profile's fields and its share of the fleet.
#[derive(Debug, Deserialize)]
struct TomlProfile {
    share: Option<f64>,
    #[serde(flatten)]
    profile: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    profile: BTreeMap<String, TomlProfile>,
}

/// The columns of a CSV network file.
pub const CSV_COLUMNS: &str = "name,share,rtt_min_ms,rtt_max_ms,jitter_ms,kbps_min,kbps_max,\
connect_fail,drop,stall,stall_min_ms,stall_max_ms";

impl NetworkFile {
    /// Reads a network file: TOML (`[profile.NAME]` tables with the [`LinkProfile`] fields and
    /// an optional `share`) or, for a `.csv` path, one profile a line under [`CSV_COLUMNS`]
    /// (an empty share: defined, not used unless `--network` names it).
    pub fn parse(text: &str, csv: bool) -> Result<Self, String> {
        let mut out = Self::default();
        if csv {
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') || line.starts_with("name,") {
                    continue;
                }
                let cells: Vec<&str> = line.split(',').map(str::trim).collect();
                let [name, share, r0, r1, jit, k0, k1, cf, dr, st, s0, s1] = cells[..] else {
                    return Err(format!(
                        "line {}: 12 columns expected ({CSV_COLUMNS})",
                        n + 1
                    ));
                };
                let bad = |what: &str| format!("line {}: bad {what}", n + 1);
                let int = |s: &str, what| s.parse::<u32>().map_err(|_| bad(what));
                let num = |s: &str, what| s.parse::<f64>().map_err(|_| bad(what));
                let p = LinkProfile {
                    name: name.to_string(),
                    rtt_ms: [int(r0, "rtt_min_ms")?, int(r1, "rtt_max_ms")?],
                    jitter_ms: int(jit, "jitter_ms")?,
                    kbps: [num(k0, "kbps_min")?, num(k1, "kbps_max")?],
                    connect_fail: num(cf, "connect_fail")?,
                    drop: num(dr, "drop")?,
                    stall: num(st, "stall")?,
                    stall_ms: [int(s0, "stall_min_ms")?, int(s1, "stall_max_ms")?],
                };
                if !share.is_empty() {
                    out.shares.push((name.to_string(), num(share, "share")?));
                }
                out.insert(p)?;
            }
        } else {
            let file: TomlFile = toml::from_str(text).map_err(|e| e.to_string())?;
            for (name, t) in file.profile {
                let table: toml::Table = t.profile.into_iter().collect();
                let mut p: LinkProfile = toml::Value::Table(table)
                    .try_into()
                    .map_err(|e| format!("profile {name}: {e}"))?;
                p.name = name.clone();
                if let Some(s) = t.share {
                    out.shares.push((name, s));
                }
                out.insert(p)?;
            }
        }
        Ok(out)
    }

    fn insert(&mut self, p: LinkProfile) -> Result<(), String> {
        p.check()?;
        if p.name.is_empty() || p.name.contains(['=', ',', ' ']) {
            return Err(format!("bad profile name {:?}", p.name));
        }
        if self.profiles.insert(p.name.clone(), p).is_some() {
            return Err("a profile is defined twice".into());
        }
        Ok(())
    }
}

impl NetworkMix {
    /// `NAME=SHARE,…` over the built-in profiles and those of `file`; shares add up to 1 at
    /// most (the rest is ideal). An empty spec takes the file's own shares.
    pub fn parse(spec: &str, file: Option<&NetworkFile>) -> Result<Self, String> {
        let pairs: Vec<(String, f64)> = if spec.trim().is_empty() {
            file.map(|f| f.shares.clone()).unwrap_or_default()
        } else {
            spec.split(',')
                .map(|part| {
                    let (name, share) = part.trim().split_once('=').ok_or_else(|| {
                        format!("--network {part}: NAME=SHARE expected (e.g. gprs=0.6)")
                    })?;
                    let share = share
                        .trim()
                        .parse::<f64>()
                        .map_err(|_| format!("--network {part}: bad share"))?;
                    Ok((name.trim().to_string(), share))
                })
                .collect::<Result<_, String>>()?
        };
        let mut shares = Vec::new();
        let mut total = 0.0;
        for (name, share) in pairs {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("{name}: the share must be in 0..=1"));
            }
            total += share;
            let profile = file
                .and_then(|f| f.profiles.get(&name).cloned())
                .or_else(|| LinkProfile::builtin(&name))
                .ok_or_else(|| {
                    format!(
                        "unknown link profile {name:?} (built in: {}; or define it in \
                         --network-file)",
                        BUILTIN.join(", ")
                    )
                })?;
            shares.push((Arc::new(profile), share));
        }
        if total > 1.0 + 1e-9 {
            return Err(format!("the shares add up to {total}, more than 1"));
        }
        Ok(Self { shares })
    }

    pub fn is_ideal(&self) -> bool {
        self.shares.iter().all(|(p, s)| *s <= 0.0 || p.is_ideal())
    }

    /// The link of meter `index`: its profile by its share, its round trip and bandwidth drawn
    /// within the profile's ranges, all from `(seed, index)`.
    pub fn link(&self, seed: u64, index: u32) -> Link {
        let u = unit(hash(seed, 0x11_4C, i64::from(index)));
        let mut acc = 0.0;
        let profile = self
            .shares
            .iter()
            .find(|(_, s)| {
                acc += s;
                u < acc
            })
            .map_or_else(|| Arc::new(LinkProfile::ideal()), |(p, _)| p.clone());
        Link::new(profile, hash(seed, 0x11_4D, i64::from(index)))
    }
}

/// `x` as a number in `[0, 1)`.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn between(lo: f64, hi: f64, u: f64) -> f64 {
    lo + (hi - lo) * u
}

/// What one meter's link went through (ground truth).
#[derive(Debug, Default)]
pub struct LinkLog {
    /// Connections the link let through, and those it refused at accept.
    pub sessions: AtomicU64,
    pub connects_refused: AtomicU64,
    /// Sessions cut mid-way, and answers held up by a stall (with the time lost).
    pub drops: AtomicU64,
    pub stalls: AtomicU64,
    pub stall_ms: AtomicU64,
    /// Pushes: attempts (retries included), delivered, given up after the last retry.
    pub push_attempts: AtomicU64,
    pub pushes_delivered: AtomicU64,
    pub pushes_given_up: AtomicU64,
}

/// One meter's link: its profile and the values it drew.
#[derive(Debug)]
pub struct Link {
    pub profile: Arc<LinkProfile>,
    /// This meter's base round trip, milliseconds.
    pub rtt_ms: u32,
    /// This meter's bandwidth, kbit/s (0: unlimited).
    pub kbps: f64,
    seed: u64,
    /// Numbers the connection attempts and sessions, so each draws its own chances.
    attempts: AtomicU64,
    pub log: LinkLog,
}

/// What a link is, for the ground truth.
#[derive(Debug, Serialize)]
pub struct LinkTruth {
    pub profile: String,
    pub rtt_ms: u32,
    pub jitter_ms: u32,
    pub kbps: f64,
    pub sessions: u64,
    pub connects_refused: u64,
    pub drops: u64,
    pub stalls: u64,
    pub stall_ms: u64,
    pub push_attempts: u64,
    pub pushes_delivered: u64,
    pub pushes_given_up: u64,
}

impl Link {
    pub fn new(profile: Arc<LinkProfile>, seed: u64) -> Self {
        let rtt_ms = between(
            f64::from(profile.rtt_ms[0]),
            f64::from(profile.rtt_ms[1]),
            unit(hash(seed, 1, 0)),
        )
        .round() as u32;
        let kbps = between(profile.kbps[0], profile.kbps[1], unit(hash(seed, 2, 0)));
        Self {
            profile,
            rtt_ms,
            kbps,
            seed,
            attempts: AtomicU64::new(0),
            log: LinkLog::default(),
        }
    }

    pub fn ideal() -> Self {
        Self::new(Arc::new(LinkProfile::ideal()), 0)
    }

    pub fn is_ideal(&self) -> bool {
        self.profile.is_ideal()
    }

    /// Draws whether the next connection attempt fails (and counts it when it does).
    pub fn connect_fails(&self) -> bool {
        if self.profile.connect_fail <= 0.0 {
            return false;
        }
        let n = self.attempts.fetch_add(1, Ordering::Relaxed);
        let fails = unit(hash(self.seed, 3, n as i64)) < self.profile.connect_fail;
        if fails {
            self.log.connects_refused.fetch_add(1, Ordering::Relaxed);
        }
        fails
    }

    /// How long `bytes` take at the link's bandwidth.
    pub fn transmission(&self, bytes: usize) -> Duration {
        if self.kbps <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(bytes as f64 * 8.0 / (self.kbps * 1000.0))
    }

    /// One round trip as it happens now: the base with jitter, and a stall now and then.
    fn round_trip(&self, rng: &mut SessionRng) -> Duration {
        let jitter = f64::from(self.profile.jitter_ms);
        let ms = (f64::from(self.rtt_ms) + between(-jitter, jitter, rng.unit())).max(0.0);
        let mut d = Duration::from_secs_f64(ms / 1000.0);
        if self.profile.stall > 0.0 && rng.unit() < self.profile.stall {
            let [lo, hi] = self.profile.stall_ms;
            let stall = between(f64::from(lo), f64::from(hi), rng.unit()) as u64;
            self.log.stalls.fetch_add(1, Ordering::Relaxed);
            self.log.stall_ms.fetch_add(stall, Ordering::Relaxed);
            d += Duration::from_millis(stall);
        }
        d
    }

    /// What a push costs before it is in the head-end's hands: the handshake's round trip and
    /// the frame's transmission (nothing for an ideal link).
    pub fn push_delay(&self, bytes: usize) -> Duration {
        if self.is_ideal() {
            return Duration::ZERO;
        }
        let mut rng = self.session_rng();
        self.round_trip(&mut rng) + self.transmission(bytes)
    }

    fn session_rng(&self) -> SessionRng {
        let n = self.attempts.fetch_add(1, Ordering::Relaxed);
        SessionRng(hash(self.seed, 4, n as i64))
    }

    pub fn truth(&self) -> LinkTruth {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let l = &self.log;
        LinkTruth {
            profile: self.profile.name.clone(),
            rtt_ms: self.rtt_ms,
            jitter_ms: self.profile.jitter_ms,
            kbps: (self.kbps * 10.0).round() / 10.0,
            sessions: n(&l.sessions),
            connects_refused: n(&l.connects_refused),
            drops: n(&l.drops),
            stalls: n(&l.stalls),
            stall_ms: n(&l.stall_ms),
            push_attempts: n(&l.push_attempts),
            pushes_delivered: n(&l.pushes_delivered),
            pushes_given_up: n(&l.pushes_given_up),
        }
    }
}

/// SplitMix64 steps for one session's chances.
#[derive(Debug)]
struct SessionRng(u64);

impl SessionRng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        unit(hash(self.0, 5, 0))
    }
}

/// A connection as the meter's link carries it: answers delayed, trickled, held up or cut as
/// the link profile (and the trickle fault) say.
#[derive(Debug)]
pub struct LinkStream<S> {
    inner: S,
    link: Arc<Link>,
    rng: SessionRng,
    /// One byte a second (the `trickle` fault), whatever the profile.
    trickle: bool,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The delay of the bytes being written has been waited out.
    cleared: bool,
    /// A request has arrived since the last answer: the next answer costs a round trip.
    answer_due: bool,
    /// Bytes received since the last answer (their transmission time is charged to it).
    received: usize,
    /// Bytes of the pending write whose transmission time is already paid.
    paid: usize,
    /// Answers sent so far (the first pays the handshake; drops come after it).
    answers: u64,
    /// The link goes away once the current delay is over.
    cut: bool,
    dropped: bool,
}

impl<S> LinkStream<S> {
    pub fn new(inner: S, link: Arc<Link>, trickle: bool) -> Self {
        link.log.sessions.fetch_add(1, Ordering::Relaxed);
        let rng = link.session_rng();
        Self {
            inner,
            link,
            rng,
            trickle,
            sleep: None,
            cleared: false,
            answer_due: false,
            received: 0,
            paid: 0,
            answers: 0,
            cut: false,
            dropped: false,
        }
    }

    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Nothing to emulate: the stream can go to the server as it is.
    pub fn is_transparent(&self) -> bool {
        !self.trickle && self.link.is_ideal()
    }

    /// The delay before `len` bytes of an answer may leave.
    fn delay_for(&mut self, len: usize) -> Duration {
        if self.trickle {
            return Duration::from_secs(1);
        }
        let mut d = Duration::ZERO;
        if self.answer_due {
            self.answer_due = false;
            if self.answers == 0 {
                d += self.link.round_trip(&mut self.rng); // the TCP handshake
            }
            d += self.link.round_trip(&mut self.rng);
            d += self.link.transmission(std::mem::take(&mut self.received));
            if self.answers > 0
                && self.link.profile.drop > 0.0
                && self.rng.unit() < self.link.profile.drop
            {
                self.cut = true;
            }
            self.answers += 1;
        }
        d += self.link.transmission(len.saturating_sub(self.paid));
        self.paid = self.paid.max(len);
        d
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LinkStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.dropped {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let n = buf.filled().len() - before;
        if n > 0 {
            this.answer_due = true;
            this.received += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LinkStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if this.dropped {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            if let Some(sleep) = this.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                this.sleep = None;
                this.cleared = true;
                if this.cut {
                    this.dropped = true;
                    this.link.log.drops.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            if !this.cleared {
                let d = this.delay_for(buf.len());
                if d.is_zero() && !this.cut {
                    this.cleared = true;
                } else {
                    this.sleep = Some(Box::pin(tokio::time::sleep(d)));
                    continue;
                }
            }
            let n = if this.trickle {
                buf.len().min(1)
            } else {
                buf.len()
            };
            let written =
                ready!(Pin::new(&mut this.inner).poll_write(cx, buf.get(..n).unwrap_or(buf)))?;
            this.cleared = false;
            this.paid = this.paid.saturating_sub(written);
            return Poll::Ready(Ok(written));
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn mix(spec: &str) -> NetworkMix {
        NetworkMix::parse(spec, None).unwrap()
    }

    #[test]
    fn profiles_are_drawn_by_share_and_reproducibly() {
        let m = mix("gprs=0.6,lte-m=0.3,nb-iot=0.1");
        let n = 20_000;
        let mut count: BTreeMap<String, u32> = BTreeMap::new();
        for i in 0..n {
            let l = m.link(7, i);
            *count.entry(l.profile.name.clone()).or_default() += 1;
            let again = m.link(7, i);
            assert_eq!(
                (l.profile.name.as_str(), l.rtt_ms),
                (again.profile.name.as_str(), again.rtt_ms)
            );
            let [lo, hi] = l.profile.rtt_ms;
            assert!((lo..=hi).contains(&l.rtt_ms), "{l:?}");
            assert!(
                l.kbps >= l.profile.kbps[0] && l.kbps <= l.profile.kbps[1],
                "{l:?}"
            );
        }
        let share = |name: &str| f64::from(count.get(name).copied().unwrap_or(0)) / f64::from(n);
        assert!((share("gprs") - 0.6).abs() < 0.02, "{count:?}");
        assert!((share("lte-m") - 0.3).abs() < 0.02, "{count:?}");
        assert!((share("nb-iot") - 0.1).abs() < 0.02, "{count:?}");
        assert_eq!(share("ideal"), 0.0);
        // Another seed deals the profiles differently.
        let other = (0..100).filter(|&i| m.link(8, i).profile.name != m.link(7, i).profile.name);
        assert!(other.count() > 10);
        // What the shares leave is ideal.
        let half = mix("gprs=0.5");
        let ideal = (0..10_000).filter(|&i| half.link(1, i).is_ideal()).count();
        assert!((4_700..5_300).contains(&ideal), "{ideal}");
        assert!(NetworkMix::default().link(1, 0).is_ideal());
    }

    #[test]
    fn bad_mixes_are_refused() {
        for bad in [
            "gprs=0.8,lte-m=0.3",
            "gprs",
            "wifi=0.1",
            "gprs=-1",
            "gprs=x",
        ] {
            assert!(NetworkMix::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn connect_failures_follow_the_rate() {
        let mut p = LinkProfile::ideal();
        p.connect_fail = 0.25;
        let link = Link::new(Arc::new(p), 3);
        let fails = (0..4000).filter(|_| link.connect_fails()).count();
        assert!((850..1150).contains(&fails), "{fails}");
        assert_eq!(link.truth().connects_refused, fails as u64);
    }

    #[test]
    fn network_files_define_profiles_in_toml_and_csv() {
        let toml = r#"
            [profile.rural]
            share = 0.25
            rtt_ms = [800, 2500]
            jitter_ms = 100
            kbps = [9.6, 20.0]
            connect_fail = 0.1
            [profile.spare]
            rtt_ms = [10, 20]
        "#;
        let f = NetworkFile::parse(toml, false).unwrap();
        assert_eq!(f.shares, vec![("rural".to_string(), 0.25)]);
        let rural = &f.profiles["rural"];
        assert_eq!(
            (rural.rtt_ms, rural.connect_fail, rural.drop),
            ([800, 2500], 0.1, 0.0)
        );
        let m = NetworkMix::parse("", Some(&f)).unwrap();
        assert_eq!(m.shares.len(), 1);
        let m = NetworkMix::parse("spare=0.5,gprs=0.5", Some(&f)).unwrap();
        assert_eq!(m.shares[0].0.rtt_ms, [10, 20]);
        assert!(NetworkFile::parse("[profile.x]\nrtt = 3", false).is_err());
        assert!(NetworkFile::parse("[profile.x]\nrtt_ms = [5, 1]", false).is_err());

        let csv = format!(
            "{CSV_COLUMNS}\nplc,0.4,2000,4000,500,2.4,4.8,0.05,0.01,0.02,1000,5000\nspare,,1,2,0,0,0,0,0,0,0,0\n"
        );
        let f = NetworkFile::parse(&csv, true).unwrap();
        assert_eq!(f.shares, vec![("plc".to_string(), 0.4)]);
        assert_eq!(f.profiles["plc"].kbps, [2.4, 4.8]);
        assert!(NetworkFile::parse("plc,0.4,1,2", true).is_err());
    }

    #[tokio::test]
    async fn answers_wait_a_round_trip_and_their_transmission() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut p = LinkProfile::ideal();
        p.name = "slow".into();
        p.rtt_ms = [200, 200];
        p.kbps = [8.0, 8.0]; // a byte per millisecond
        let link = Arc::new(Link::new(Arc::new(p), 1));
        let (client, server) = tokio::io::duplex(4096);
        let mut s = LinkStream::new(server, link.clone(), false);
        let mut client = client;
        let t = tokio::time::Instant::now();
        client.write_all(&[0; 100]).await.unwrap();
        let mut buf = [0u8; 100];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(&[1; 100]).await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        // Handshake and the exchange: two round trips; 200 bytes at a byte per millisecond.
        assert!(
            t.elapsed() >= Duration::from_millis(600),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(link.truth().sessions, 1);
    }
}
