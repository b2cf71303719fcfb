//! `hes sim`: simulated meters serving DLMS over TCP, one or a fleet of thousands.
//!
//! Clients of every meter: 16 public (no security), 17 LLS with the password, 1 HLS-GMAC with
//! authenticated encryption (security suite 0); 16/32/48 with the `alternative_saps` quirk.
//! A single meter uses the Green Book's example keys unless told otherwise; a fleet's meters
//! each have their own keys, derived from `--fleet-secret` and written to the inventory. All
//! defaults are test values, never for real meters.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use clap::{Args, ValueEnum};
use hes_sim::fleet::{
    pick, Addressing, Clock, Faults, Fleet, FleetConfig, ListenMode, PushConfig, QuirkName,
};
use hes_sim::link::{NetworkFile, NetworkMix};
use hes_sim::objects::keys::KeySet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AddressingArg {
    /// Each meter its own loopback address (counting up from --host), all on --port.
    Ip,
    /// Each meter its own port (counting up from --port), all on --host.
    Port,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListenArg {
    PerMeter,
    Shared,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// How many meters to run.
    #[arg(long, default_value_t = 1)]
    pub meters: u32,
    /// The (first) meter's address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// TCP port (0 = any free port per meter; the first is printed as `LISTENING <port>`).
    #[arg(long, default_value_t = 4059)]
    pub port: u16,
    #[arg(long, value_enum, default_value_t = AddressingArg::Ip)]
    pub addressing: AddressingArg,
    /// Every meter speaks HDLC over TCP instead of the wrapper (the `hdlc_only` quirk).
    #[arg(long)]
    pub hdlc: bool,
    /// A quirk for a share of the fleet: NAME or NAME=FRACTION (repeatable). Names:
    /// hdlc_only, small_pdu, no_set_blocks, no_deviation_in_range, alternative_saps.
    #[arg(long = "quirk", value_name = "NAME[=FRACTION]")]
    pub quirks: Vec<String>,
    /// LLS password of the reader client (test default).
    #[arg(long, default_value = hes_sim::TEST_PASSWORD)]
    pub password: String,
    /// Global unicast encryption key for every meter (hex; default: the Green Book key for one
    /// meter, derived per meter for a fleet).
    #[arg(long)]
    pub ek: Option<String>,
    /// Authentication key for every meter (hex).
    #[arg(long)]
    pub ak: Option<String>,
    /// Master key (KEK) for every meter (hex).
    #[arg(long)]
    pub kek: Option<String>,
    /// Seeds the per-meter keys of a fleet.
    #[arg(long, default_value = "hes-sim test fleet")]
    pub fleet_secret: String,
    /// The system title of a single meter (hex, 8 bytes; default "HES", 0, the serial).
    #[arg(long)]
    pub system_title: Option<String>,
    /// Serial number of the first meter (each meter's data is seeded by its serial).
    #[arg(long, default_value_t = 1)]
    pub serial: u32,
    /// Seeds the data of the whole fleet and the choice of quirky meters.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Meter time runs this many times faster than real time (1440: a day per minute).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Meter time at start, Unix seconds (default: now).
    #[arg(long)]
    pub start: Option<i64>,
    /// Entries of the 15-minute load profile (960: ten days).
    #[arg(long, default_value_t = 960)]
    pub profile_entries: u32,
    /// Send pushes to this address (the head-end's push listener).
    #[arg(long)]
    pub push_to: Option<SocketAddr>,
    /// Seconds of meter time between interval pushes (0: alarms only).
    #[arg(long, default_value_t = 900)]
    pub push_interval: i64,
    /// The push setups' number_of_retries: a push that does not get through is tried this
    /// many more times (a client may change it, as on a real meter).
    #[arg(long, default_value_t = 2)]
    pub push_retries: u8,
    /// The push setups' repetition_delay: real seconds before each retry.
    #[arg(long, default_value_t = 1)]
    pub push_repetition_delay: u16,
    /// The meters' links, a mix of profiles by share: e.g. `gprs=0.6,lte-m=0.3,nb-iot=0.1`
    /// (built in: ideal, gprs, lte-m, nb-iot; more in --network-file). The rest of the fleet
    /// is ideal (no delay). Which meter gets which follows from --seed.
    #[arg(long, value_name = "NAME=SHARE,...")]
    pub network: Option<String>,
    /// Link profiles defined in a file (TOML `[profile.NAME]` tables, or CSV with the columns
    /// of docs/simulator.md); without --network, the file's own shares are the mix.
    #[arg(long, value_name = "FILE")]
    pub network_file: Option<PathBuf>,
    /// A fault for a share of the fleet from the start: NAME or NAME=FRACTION (repeatable).
    /// Names: refused, drop_mid_block, corrupt_frame, refuse_association, trickle (answers at
    /// one byte a second), stall_mid_block (hangs for good mid-transfer), slow (answers 1 s
    /// late). More through the control API.
    #[arg(long = "fault", value_name = "NAME[=FRACTION]")]
    pub faults: Vec<String>,
    /// Write the inventory here (`.csv`: CSV, otherwise JSON; repeat for both).
    #[arg(long)]
    pub inventory: Vec<PathBuf>,
    /// Serve the control API (ground truth, faults) here, e.g. 127.0.0.1:8059: a loopback
    /// address unless --control-any-address.
    #[arg(long)]
    pub control: Option<SocketAddr>,
    /// Let --control bind an address other than loopback (the API has no authentication).
    #[arg(long)]
    pub control_any_address: bool,
    /// A host name requests may address the control API by, besides loopback and its own
    /// address (repeatable; the Host header is checked).
    #[arg(long = "control-host", value_name = "NAME")]
    pub control_hosts: Vec<String>,
    /// One listening socket per meter (a refused meter really refuses; needs an open file per
    /// meter), or one shared socket on the wildcard address for the whole fleet (`ip`
    /// addressing; for 100,000 meters and more).
    #[arg(long, value_enum, default_value_t = ListenArg::PerMeter)]
    pub listen: ListenArg,
    /// Worker threads of the runtime (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Security suite of the meters: 1 (P-256) or 2 (P-384) gives each meter a signing key
    /// and certificate from a test CA, and client 1 authenticates with HLS-ECDSA (at suite 2
    /// with AES-GCM-256 keys derived from the meter's --ek/--ak).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub suite: u8,
    /// Where suites 1 and 2 write the CA and the head-end's key and certificate (printed as
    /// `PKI <dir>`).
    #[arg(long, default_value = "hes-sim-pki")]
    pub pki_dir: PathBuf,
}

fn hex16(name: &str, v: &str) -> anyhow::Result<[u8; 16]> {
    hex::decode(v.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("--{name} must be 16 bytes of hex"))
}

fn name_and_fraction<'a>(flag: &str, s: &'a str) -> anyhow::Result<(&'a str, f64)> {
    Ok(match s.split_once('=') {
        Some((n, f)) => (
            n,
            f.parse::<f64>()
                .ok()
                .filter(|f| (0.0..=1.0).contains(f))
                .ok_or_else(|| anyhow!("--{flag} {s}: the fraction must be in 0..=1"))?,
        ),
        None => (s, 1.0),
    })
}

fn parse_quirk(s: &str) -> anyhow::Result<(QuirkName, f64)> {
    let (name, fraction) = name_and_fraction("quirk", s)?;
    Ok((name.parse().map_err(|e: String| anyhow!(e))?, fraction))
}

fn parse_fault(s: &str) -> anyhow::Result<(Faults, f64)> {
    let (name, fraction) = name_and_fraction("fault", s)?;
    let f = Faults::switch(name).ok_or_else(|| {
        anyhow!(
            "--fault {s}: unknown fault (one of {})",
            hes_sim::faults::SWITCHES.join(", ")
        )
    })?;
    Ok((f, fraction))
}

/// The faults each meter starts with: every `--fault` picks its own share of the fleet
/// (reproducibly from --seed); a meter picked by several has them all.
pub fn initial_faults(args: &SimArgs) -> anyhow::Result<Vec<(u32, Faults)>> {
    let mut by_meter: std::collections::BTreeMap<u32, Faults> = Default::default();
    for (k, spec) in args.faults.iter().enumerate() {
        let (f, fraction) = parse_fault(spec)?;
        let seed = args.seed ^ (0xFA_0000 + k as u64).wrapping_mul(0x1000_0000_01B3);
        for i in pick(args.meters, fraction, seed) {
            let m = by_meter.entry(i).or_default();
            m.refused |= f.refused;
            m.drop_mid_block |= f.drop_mid_block;
            m.corrupt_frame |= f.corrupt_frame;
            m.refuse_association |= f.refuse_association;
            m.trickle |= f.trickle;
            m.stall_mid_block |= f.stall_mid_block;
            m.slow_ms = m.slow_ms.max(f.slow_ms);
        }
    }
    Ok(by_meter.into_iter().collect())
}

/// The link mix of `--network` and `--network-file`.
pub fn network(args: &SimArgs) -> anyhow::Result<NetworkMix> {
    let file = match &args.network_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let csv = path.extension().is_some_and(|e| e == "csv");
            Some(
                NetworkFile::parse(&text, csv)
                    .map_err(|e| anyhow!("--network-file {}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    if args.network.is_none() && file.is_none() {
        return Ok(NetworkMix::default());
    }
    NetworkMix::parse(args.network.as_deref().unwrap_or(""), file.as_ref())
        .map_err(|e| anyhow!("--network: {e}"))
}

/// The fleet configuration the arguments describe.
pub fn fleet_config(args: &SimArgs) -> anyhow::Result<FleetConfig> {
    if args.meters == 0 {
        bail!("--meters must be at least 1");
    }
    let mut cfg = FleetConfig::new(args.meters);
    cfg.first_serial = args.serial;
    cfg.addressing = match args.addressing {
        AddressingArg::Ip => Addressing::Ip,
        AddressingArg::Port => Addressing::Port,
    };
    cfg.first_host = args.host;
    cfg.listen = match args.listen {
        ListenArg::PerMeter => ListenMode::PerMeter,
        ListenArg::Shared => ListenMode::Shared,
    };
    cfg.port = args.port;
    cfg.seed = args.seed;
    cfg.fleet_secret = args.fleet_secret.clone().into_bytes();
    cfg.password = args.password.clone();
    cfg.profile_entries = args.profile_entries.clamp(1, 100_000);
    let single = args.meters == 1;
    let given = [&args.ek, &args.ak, &args.kek];
    if single || given.iter().any(|k| k.is_some()) {
        let key = |name, v: &Option<String>, default| match v {
            Some(v) => hex16(name, v),
            None if single => Ok(default),
            None => Err(anyhow!("--ek, --ak and --kek go together for a fleet")),
        };
        cfg.keys = Some(KeySet {
            ek: key("ek", &args.ek, hes_sim::TEST_EK)?,
            ak: key("ak", &args.ak, hes_sim::TEST_AK)?,
            kek: key("kek", &args.kek, hes_sim::TEST_KEK)?,
        });
    }
    if let Some(t) = &args.system_title {
        if !single {
            bail!("--system-title is for a single meter (a fleet's are \"HES\", 0, serial)");
        }
        cfg.system_title = Some(
            hex::decode(t.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| anyhow!("--system-title must be 8 bytes of hex"))?,
        );
    }
    if args.hdlc {
        cfg.quirks.push((QuirkName::HdlcOnly, 1.0));
    }
    for q in &args.quirks {
        cfg.quirks.push(parse_quirk(q)?);
    }
    cfg.clock = Clock::new(args.start, args.speed);
    if let Some(dest) = args.push_to {
        let mut p = PushConfig::new(dest);
        p.interval_s = (args.push_interval > 0).then_some(args.push_interval);
        p.attempts = u32::from(args.push_retries) + 1;
        p.repetition_delay_s = args.push_repetition_delay;
        cfg.push = Some(p);
    }
    if let Some(suite) = dlms::security::EccSuite::from_id(args.suite) {
        cfg.pki = Some(std::sync::Arc::new(hes_sim::pki::FleetPki::new(suite)?));
    }
    cfg.network = network(args)?;
    if let Some(c) = args.control {
        if !c.ip().is_loopback() && !args.control_any_address {
            bail!(
                "--control {c} is not a loopback address: the control API has no \
                 authentication (add --control-any-address to serve it there anyway)"
            );
        }
    }
    Ok(cfg)
}

pub async fn run(args: SimArgs) -> u8 {
    match serve(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hes sim: {e:#}");
            1
        }
    }
}

async fn serve(args: SimArgs) -> anyhow::Result<()> {
    let cfg = fleet_config(&args)?;
    if let Some(pki) = &cfg.pki {
        pki.write(&args.pki_dir)?;
        println!("PKI {}", args.pki_dir.display());
    }
    let faults = initial_faults(&args)?;
    let started = Instant::now();
    let suites = cfg.pki.is_some();
    let fleet = Fleet::start(cfg).await?;
    let first = fleet.meters().first().ok_or_else(|| anyhow!("no meters"))?;
    if suites {
        // Each meter's certificate, for `hes read --server-cert`.
        let dir = args.pki_dir.join("meters");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for m in fleet.meters() {
            let Some(der) = m.ecc.as_ref().and_then(|e| e.certificate.as_deref()) else {
                continue;
            };
            let pem = dlms::security::x509::Certificate::from_der(der)?.to_pem()?;
            let path = dir.join(format!("{}.pem", m.spec.id()));
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    for (i, f) in &faults {
        if let Some(cell) = fleet.meters().get(*i as usize) {
            fleet.set_faults(&cell.spec.id(), *f).await?;
        }
    }
    for path in &args.inventory {
        let inv = fleet.inventory();
        let text = if path.extension().is_some_and(|e| e == "csv") {
            hes_sim::fleet::to_csv(&inv)
        } else {
            serde_json::to_string_pretty(&inv)?
        };
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.meters == 1 {
        println!(
            "SYSTEM_TITLE {}",
            hex::encode_upper(first.spec.system_title)
        );
    }
    println!("LISTENING {}", first.addr().port());
    println!(
        "METERS {} from {} in {:.2} s",
        fleet.len(),
        first.addr(),
        started.elapsed().as_secs_f64()
    );
    if args.network.is_some() || args.network_file.is_some() {
        let mut by_profile: std::collections::BTreeMap<&str, u32> = Default::default();
        for c in fleet.meters() {
            *by_profile.entry(c.link.profile.name.as_str()).or_default() += 1;
        }
        let mix: Vec<String> = by_profile.iter().map(|(p, n)| format!("{p}={n}")).collect();
        println!("NETWORK {}", mix.join(" "));
    }
    if !faults.is_empty() {
        println!("FAULTS {} meters", faults.len());
    }
    let control = match args.control {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the control API on {addr}"))?;
            println!("{}", hes_sim::control::describe(listener.local_addr()?));
            let f = fleet.clone();
            let hosts = args.control_hosts.clone();
            Some(tokio::spawn(async move {
                if let Err(e) = hes_sim::control::serve_with(listener, f, hosts).await {
                    eprintln!("hes sim: control API: {e}");
                }
            }))
        }
        None => None,
    };
    println!("READY");
    let _ = tokio::signal::ctrl_c().await;
    fleet.shutdown();
    if let Some(c) = control {
        c.abort();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn args(line: &[&str]) -> SimArgs {
        Cli::try_parse_from(std::iter::once("sim").chain(line.iter().copied()))
            .unwrap()
            .sim
    }

    #[test]
    fn a_network_mix_and_faults_from_the_command_line() {
        let a = args(&[
            "--meters",
            "1000",
            "--network",
            "gprs=0.6,lte-m=0.3,nb-iot=0.1",
        ]);
        let cfg = fleet_config(&a).unwrap();
        let names: Vec<&str> = cfg
            .network
            .shares
            .iter()
            .map(|(p, _)| p.name.as_str())
            .collect();
        assert_eq!(names, ["gprs", "lte-m", "nb-iot"]);
        assert!(fleet_config(&args(&["--network", "gprs=0.9,lte-m=0.2"])).is_err());
        assert!(fleet_config(&args(&["--network", "wifi=0.1"])).is_err());
        assert!(fleet_config(&args(&[])).unwrap().network.shares.is_empty());

        let a = args(&[
            "--meters",
            "1000",
            "--fault",
            "trickle=0.1",
            "--fault",
            "refused=0.2",
        ]);
        let f = initial_faults(&a).unwrap();
        let trickle = f.iter().filter(|(_, f)| f.trickle).count();
        let refused = f.iter().filter(|(_, f)| f.refused).count();
        assert!((60..140).contains(&trickle), "{trickle}");
        assert!((150..250).contains(&refused), "{refused}");
        assert_eq!(f, initial_faults(&a).unwrap());
        assert!(initial_faults(&args(&["--fault", "sleepy"])).is_err());
    }

    #[test]
    fn a_network_file_defines_profiles() {
        let dir = std::env::temp_dir().join(format!("hes-sim-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("links.toml");
        std::fs::write(&path, "[profile.rural]\nshare = 0.5\nrtt_ms = [800, 900]\n").unwrap();
        let p = path.to_str().unwrap();
        let cfg = fleet_config(&args(&["--network-file", p])).unwrap();
        assert_eq!(cfg.network.shares[0].0.rtt_ms, [800, 900]);
        let cfg = fleet_config(&args(&["--network-file", p, "--network", "gprs=1"])).unwrap();
        assert_eq!(cfg.network.shares[0].0.name, "gprs");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_control_api_stays_on_loopback_unless_told() {
        assert!(fleet_config(&args(&["--control", "127.0.0.1:0"])).is_ok());
        assert!(fleet_config(&args(&["--control", "0.0.0.0:8059"])).is_err());
        let told = args(&["--control", "0.0.0.0:8059", "--control-any-address"]);
        assert!(fleet_config(&told).is_ok());
    }
}
