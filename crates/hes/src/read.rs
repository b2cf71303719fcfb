//! `hes read` and `hes action`: a meter engineer's DLMS client, printing one JSON document.
//!
//! Exit codes: 0 everything succeeded; 1 could not connect or associate (the JSON has an
//! `"error"`); 2 some object failed.

// Indexing here is into JSON objects this module builds itself (never into input bytes), where
// `doc["key"] = v` inserts.
#![allow(clippy::indexing_slicing)]

use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Args, ValueEnum};
use dlms::client::{Authentication, ClientConfig, ClientSecurity};
use dlms::cosem::profile_generic;
use dlms::cosem::CaptureObject;
use dlms::hdlc::{HdlcParams, ServerAddress};
use dlms::link::TransportConfig;
use dlms::security::x509::{self, Certificate};
use dlms::security::{CipherKeys, EcPrivateKey, EccConfig, EccSuite, WideKeys};
use dlms::xdlms::{GetDataResult, SelectiveAccess};
use dlms::{
    AttributeDescriptor, Data, DateTime, Mechanism, MethodDescriptor, ObisCode, SecurityLevel,
    SystemTitle,
};
use dlms_net::{Connection, NetError};
use rand::RngCore;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Auth {
    None,
    Lls,
    HlsMd5,
    HlsSha1,
    HlsGmac,
    HlsSha256,
    /// HLS-ECDSA (mechanism 7), suites 1 and 2: needs --key and --server-cert.
    HlsEcdsa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Security {
    None,
    Auth,
    AuthEnc,
}

/// How to reach and associate with one meter.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    #[arg(long)]
    pub host: String,
    #[arg(long, default_value_t = 4059)]
    pub port: u16,
    /// HDLC over TCP instead of the wrapper.
    #[arg(long)]
    pub hdlc: bool,
    /// Client SAP (16 public, 17 reader with LLS, 1 management with HLS on common meters).
    #[arg(long, default_value_t = 16)]
    pub client: u16,
    #[arg(long, default_value_t = 1)]
    pub server_logical: u16,
    #[arg(long, default_value_t = 16)]
    pub server_physical: u16,
    #[arg(long, value_enum, default_value_t = Auth::None)]
    pub auth: Auth,
    /// LLS password, or the HLS secret for MD5/SHA-1/SHA-256.
    #[arg(long, env = "HES_METER_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    #[arg(long, value_enum, default_value_t = Security::None)]
    pub security: Security,
    /// Security suite: 0 AES-GCM-128; 1 ECDH-ECDSA P-256, AES-GCM-128, SHA-256; 2 P-384,
    /// AES-GCM-256 (--ek/--ak of 32 bytes), SHA-384. Suites 1 and 2 need --key.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub suite: u8,
    /// Our private signing key (PEM, PKCS#8 or SEC1; P-256 for suite 1, P-384 for suite 2).
    #[arg(long, value_name = "FILE")]
    pub key: Option<std::path::PathBuf>,
    /// Our signing certificate (PEM), sent in the AARQ.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<std::path::PathBuf>,
    /// The meter's signing certificate (PEM): its key checks the meter's HLS-ECDSA proof.
    #[arg(long, value_name = "FILE")]
    pub server_cert: Option<std::path::PathBuf>,
    /// CA certificates (PEM bundle) the meter's certificate must chain to; without it the
    /// --server-cert is trusted as given (pinned).
    #[arg(long, value_name = "FILE", requires = "server_cert")]
    pub ca: Option<std::path::PathBuf>,
    /// Global unicast encryption key (hex).
    #[arg(long, env = "HES_METER_EK", hide_env_values = true)]
    pub ek: Option<String>,
    /// Authentication key (hex).
    #[arg(long, env = "HES_METER_AK", hide_env_values = true)]
    pub ak: Option<String>,
    /// Our (the client's) system title (hex, 8 bytes).
    #[arg(long, default_value = "4D4D4D0000000001")]
    pub system_title: String,
    /// First invocation counter to use.
    #[arg(long, conflicts_with = "ic_obis")]
    pub invocation_counter: Option<u32>,
    /// Read the invocation counter first through the public client from this object.
    #[arg(long)]
    pub ic_obis: Option<String>,
    #[arg(long, default_value_t = 0xFFFF)]
    pub max_pdu: u16,
    /// Connect and response timeout.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Profile range start (RFC 3339), with --to.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// Profile entries FROM:TO (1-based, TO 0 = last).
    #[arg(long, conflicts_with = "from")]
    pub entries: Option<String>,
    /// Run this many full sessions (associate, read, release) one after the other and print
    /// the rate instead of the values: a benchmark.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// CLASS/OBIS/ATTRIBUTE, e.g. 7/1.0.99.1.0.255/2
    #[arg(required = true)]
    pub objects: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// CLASS/OBIS/METHOD, e.g. 70/0.0.96.3.10.255/1
    pub method: String,
    /// The parameter, A-XDR encoded, in hex (e.g. 0f00 for integer 0).
    #[arg(long)]
    pub param: Option<String>,
}

/// `CLASS/OBIS/N`.
fn parse_ref(s: &str) -> anyhow::Result<(u16, ObisCode, i8)> {
    let mut it = s.split('/');
    let (Some(c), Some(o), Some(n), None) = (it.next(), it.next(), it.next(), it.next()) else {
        bail!("{s:?} is not CLASS/OBIS/ATTRIBUTE");
    };
    let class = c
        .parse::<u16>()
        .with_context(|| format!("bad class id in {s:?}"))?;
    let obis = ObisCode::from_str(o)?;
    let n = n
        .parse::<i8>()
        .with_context(|| format!("bad attribute/method id in {s:?}"))?;
    Ok((class, obis, n))
}

fn key(name: &str, v: &Option<String>) -> anyhow::Result<[u8; 16]> {
    let v = v
        .as_deref()
        .ok_or_else(|| anyhow!("--{name} is required for this security"))?;
    hex::decode(v.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("--{name} must be 16 bytes of hex"))
}

fn wide_key(name: &str, v: &Option<String>) -> anyhow::Result<[u8; 32]> {
    let v = v
        .as_deref()
        .ok_or_else(|| anyhow!("--{name} is required for this security"))?;
    hex::decode(v.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("--{name} must be 32 bytes of hex at suite 2"))
}

/// Suites 1 and 2: our key and certificate, and the meter's key from its certificate, whose
/// chain is checked against --ca now.
fn ecc_config(a: &ConnArgs) -> anyhow::Result<Option<EccConfig>> {
    if a.suite == 0 {
        if a.auth == Auth::HlsEcdsa {
            bail!("--auth hls-ecdsa needs --suite 1 or 2");
        }
        return Ok(None);
    }
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let key_file = a
        .key
        .as_deref()
        .ok_or_else(|| anyhow!("--suite {} needs --key", a.suite))?;
    let signing_key = EcPrivateKey::from_pem(&read(key_file)?)
        .with_context(|| format!("{}", key_file.display()))?;
    if signing_key.suite().id() != a.suite {
        bail!(
            "--key is a {} key, not one of suite {}",
            match signing_key.suite() {
                EccSuite::Suite1 => "P-256",
                EccSuite::Suite2 => "P-384",
            },
            a.suite
        );
    }
    let mut ecc = EccConfig::new(signing_key);
    if let Some(p) = &a.cert {
        ecc.certificate = Some(Certificate::from_pem(&read(p)?)?.der().to_vec());
    }
    if let Some(p) = &a.server_cert {
        let cert = Certificate::from_pem(&read(p)?)?;
        if let Some(ca) = &a.ca {
            let anchors = Certificate::from_pem_bundle(&read(ca)?)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            x509::verify_chain(&cert, &anchors, &anchors, now)
                .with_context(|| format!("the meter's certificate {}", p.display()))?;
        }
        ecc.peer_signing_key = Some(cert.public_key()?);
    } else if a.auth == Auth::HlsEcdsa {
        bail!("--auth hls-ecdsa needs --server-cert (the meter's signing certificate)");
    }
    if a.suite == 2 && a.security != Security::None {
        ecc.wide_keys = Some(WideKeys {
            ek: wide_key("ek", &a.ek)?,
            ak: wide_key("ak", &a.ak)?,
        });
    }
    Ok(Some(ecc))
}

fn client_config(a: &ConnArgs, sap: u16, invocation_counter: u32) -> anyhow::Result<ClientConfig> {
    let transport = if a.hdlc {
        let size = if a.server_logical > 0x7F || a.server_physical > 0x7F {
            4
        } else {
            2
        };
        TransportConfig::Hdlc {
            client_sap: u8::try_from(sap).context("an HDLC client address is one byte")?,
            server: ServerAddress {
                logical: a.server_logical,
                physical: Some(a.server_physical),
                size,
            },
            params: HdlcParams::default(),
        }
    } else {
        TransportConfig::Wrapper {
            client_wport: sap,
            server_wport: a.server_logical,
        }
    };
    let mut cfg = ClientConfig::new(transport);
    cfg.max_receive_pdu = a.max_pdu;
    cfg.response_timeout = Duration::from_secs_f64(a.timeout.max(0.1));
    let secret = || -> anyhow::Result<Vec<u8>> {
        Ok(a.password
            .clone()
            .ok_or_else(|| anyhow!("--password is required for this --auth"))?
            .into_bytes())
    };
    cfg.authentication = match a.auth {
        Auth::None => Authentication::None,
        Auth::Lls => Authentication::Low {
            password: secret()?,
        },
        Auth::HlsMd5 => Authentication::High {
            mechanism: Mechanism::HighMd5,
            secret: secret()?,
        },
        Auth::HlsSha1 => Authentication::High {
            mechanism: Mechanism::HighSha1,
            secret: secret()?,
        },
        Auth::HlsSha256 => Authentication::High {
            mechanism: Mechanism::HighSha256,
            secret: secret()?,
        },
        Auth::HlsGmac => Authentication::HighGmac,
        Auth::HlsEcdsa => Authentication::HighEcdsa,
    };
    cfg.ecc = ecc_config(a)?;
    let level = match a.security {
        Security::None => SecurityLevel::None,
        Security::Auth => SecurityLevel::Authenticated,
        Security::AuthEnc => SecurityLevel::AuthenticatedEncrypted,
    };
    if level != SecurityLevel::None
        || matches!(a.auth, Auth::HlsGmac | Auth::HlsSha256 | Auth::HlsEcdsa)
    {
        let title = hex::decode(a.system_title.trim())
            .ok()
            .and_then(|b| SystemTitle::from_slice(&b))
            .ok_or_else(|| anyhow!("--system-title must be 8 bytes of hex"))?;
        cfg.security = Some(ClientSecurity {
            level,
            // Suite 2 carries its 256-bit keys in the ECC configuration; with no ciphering
            // (HLS-ECDSA alone) there are none.
            keys: if a.suite == 2 || level == SecurityLevel::None {
                CipherKeys {
                    ek: [0; 16],
                    ak: [0; 16],
                }
            } else {
                CipherKeys {
                    ek: key("ek", &a.ek)?,
                    ak: key("ak", &a.ak)?,
                }
            },
            system_title: title,
            invocation_counter,
            dedicated_key: None,
        });
    }
    // HLS-ECDSA challenges are 32 to 64 bytes.
    let mut challenge = vec![0u8; if a.auth == Auth::HlsEcdsa { 32 } else { 16 }];
    rand::thread_rng().fill_bytes(&mut challenge);
    cfg.challenge = challenge;
    Ok(cfg)
}

/// Associates, first reading the invocation counter through the public client if asked.
async fn open(a: &ConnArgs) -> Result<Connection, Value> {
    let timeout = Duration::from_secs_f64(a.timeout.max(0.1));
    let usage = |e: anyhow::Error| json!({"reason": "usage", "message": format!("{e:#}")});
    let mut ic = a.invocation_counter.unwrap_or(1);
    if let Some(obis) = &a.ic_obis {
        let obis = ObisCode::from_str(obis).map_err(|e| usage(e.into()))?;
        let mut public = ConnArgs {
            auth: Auth::None,
            security: Security::None,
            ..a.clone()
        };
        public.client = 16;
        let cfg = client_config(&public, 16, 0).map_err(usage)?;
        let mut conn = Connection::connect(&a.host, a.port, cfg, timeout)
            .await
            .map_err(net_error)?;
        let r = conn
            .get(AttributeDescriptor::new(1, obis, 2), None)
            .await
            .map_err(net_error)?;
        let _ = conn.release().await;
        ic = match r {
            GetDataResult::Data(d) => d
                .as_i128()
                .and_then(|v| u32::try_from(v + 1).ok())
                .ok_or_else(|| json!({"reason": "protocol", "message": "the invocation counter is not a number"}))?,
            GetDataResult::Error(e) => {
                return Err(json!({"reason": "invocation-counter", "message": format!("reading {obis}: {}", e.name())}))
            }
        };
    }
    let cfg = client_config(a, a.client, ic).map_err(usage)?;
    Connection::connect(&a.host, a.port, cfg, timeout)
        .await
        .map_err(net_error)
}

fn net_error(e: NetError) -> Value {
    json!({"reason": e.reason(), "message": e.to_string()})
}

fn print(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into())
    );
}

fn fail(target: Value, error: Value) -> u8 {
    let mut doc = target;
    doc["error"] = error;
    print(&doc);
    1
}

/// The selective access the range/entry options ask for.
fn selective_access(args: &ReadArgs) -> anyhow::Result<Option<SelectiveAccess>> {
    if let (Some(from), Some(to)) = (&args.from, &args.to) {
        let clock = CaptureObject {
            class_id: 8,
            logical_name: ObisCode::new(0, 0, 1, 0, 0, 255),
            attribute_index: 2,
            data_index: 0,
        };
        let parameters =
            profile_generic::range_descriptor(&clock, &rfc3339(from)?, &rfc3339(to)?, &[]);
        return Ok(Some(SelectiveAccess {
            selector: profile_generic::RANGE_DESCRIPTOR,
            parameters,
        }));
    }
    if let Some(e) = &args.entries {
        let (f, t) = e
            .split_once(':')
            .ok_or_else(|| anyhow!("--entries is FROM:TO"))?;
        let parameters = profile_generic::entry_descriptor(f.parse()?, t.parse()?, 1, 0);
        return Ok(Some(SelectiveAccess {
            selector: profile_generic::ENTRY_DESCRIPTOR,
            parameters,
        }));
    }
    Ok(None)
}

/// An RFC 3339 instant as a COSEM date-time octet-string in the same UTC offset.
fn rfc3339(s: &str) -> anyhow::Result<Data> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{s:?} is not an RFC 3339 date-time"))?;
    let offset = t.offset().whole_minutes();
    let dt = DateTime::from_unix(t.unix_timestamp(), offset, 0);
    Ok(Data::OctetString(dt.to_octets()))
}

fn target(a: &ConnArgs) -> Value {
    json!({"host": a.host, "port": a.port, "transport": if a.hdlc {"hdlc"} else {"wrapper"}, "client": a.client})
}

pub async fn read(args: ReadArgs) -> u8 {
    let mut doc = target(&args.conn);
    let usage = |e: anyhow::Error| json!({"reason": "usage", "message": format!("{e:#}")});
    let refs: Vec<_> = match args
        .objects
        .iter()
        .map(|s| parse_ref(s))
        .collect::<anyhow::Result<_>>()
    {
        Ok(r) => r,
        Err(e) => return fail(doc, usage(e)),
    };
    let access = match selective_access(&args) {
        Ok(a) => a,
        Err(e) => return fail(doc, usage(e)),
    };
    if args.repeat > 1 {
        return repeat(&args, &refs, access).await;
    }
    let mut conn = match open(&args.conn).await {
        Ok(c) => c,
        Err(e) => return fail(doc, e),
    };
    let mut objects = Vec::new();
    let mut failed = false;
    for (class, obis, attribute) in refs {
        let mut o = json!({"class": class, "obis": obis.to_string(), "attribute": attribute});
        if let Some(n) = obis.name() {
            o["name"] = n.into();
        }
        // Range and entry selection apply to profile buffers only.
        let sa = (class == 7 && attribute == 2)
            .then(|| access.clone())
            .flatten();
        match conn
            .get(AttributeDescriptor::new(class, obis, attribute), sa)
            .await
        {
            Ok(GetDataResult::Data(d)) => o["value"] = hes_model::data_json::typed(&d),
            Ok(GetDataResult::Error(e)) => {
                failed = true;
                o["error"] = json!({"name": e.name(), "code": e.code()});
            }
            Err(e) => {
                // The association broke mid-way: report what was read, then the reason.
                doc["objects"] = Value::Array(objects);
                return fail(doc, net_error(e));
            }
        }
        objects.push(o);
    }
    if let Some(ic) = conn.next_invocation_counter() {
        doc["next_invocation_counter"] = ic.into();
    }
    let _ = conn.release().await;
    doc["objects"] = Value::Array(objects);
    print(&doc);
    if failed {
        2
    } else {
        0
    }
}

/// `--repeat N`: sequential full sessions, timed. The invocation counter carries over from one
/// session to the next, as a head-end's does.
async fn repeat(
    args: &ReadArgs,
    refs: &[(u16, ObisCode, i8)],
    access: Option<SelectiveAccess>,
) -> u8 {
    let doc = target(&args.conn);
    let mut conn_args = args.conn.clone();
    let started = std::time::Instant::now();
    let mut failures = 0u32;
    let mut values = 0u64;
    for _ in 0..args.repeat {
        let mut conn = match open(&conn_args).await {
            Ok(c) => c,
            Err(e) => return fail(doc, e),
        };
        for (class, obis, attribute) in refs {
            let sa = (*class == 7 && *attribute == 2)
                .then(|| access.clone())
                .flatten();
            match conn
                .get(AttributeDescriptor::new(*class, *obis, *attribute), sa)
                .await
            {
                Ok(GetDataResult::Data(_)) => values += 1,
                Ok(GetDataResult::Error(_)) | Err(_) => failures += 1,
            }
        }
        if let Some(ic) = conn.next_invocation_counter() {
            conn_args.ic_obis = None;
            conn_args.invocation_counter = Some(ic);
        }
        let _ = conn.release().await;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut doc = doc;
    doc["sessions"] = args.repeat.into();
    doc["values"] = values.into();
    doc["failures"] = failures.into();
    doc["seconds"] = secs.into();
    doc["per_second"] = (f64::from(args.repeat) / secs).into();
    print(&doc);
    if failures > 0 {
        2
    } else {
        0
    }
}

pub async fn action(args: ActionArgs) -> u8 {
    let doc = target(&args.conn);
    let usage = |e: anyhow::Error| json!({"reason": "usage", "message": format!("{e:#}")});
    let (class, obis, method) = match parse_ref(&args.method) {
        Ok(r) => r,
        Err(e) => return fail(doc, usage(e)),
    };
    let param = match args.param.as_deref().map(|p| {
        let bytes = hex::decode(p.trim()).context("--param must be hex")?;
        dlms::Codec::decode_exact(&bytes).map_err(|e| anyhow!("--param is not A-XDR data: {e}"))
    }) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => return fail(doc, usage(e)),
    };
    let mut conn = match open(&args.conn).await {
        Ok(c) => c,
        Err(e) => return fail(doc, e),
    };
    let mut doc = doc;
    let mut o = json!({"class": class, "obis": obis.to_string(), "method": method});
    let code = match conn
        .action(MethodDescriptor::new(class, obis, method), param)
        .await
    {
        Ok((result, ret)) => {
            o["result"] = json!({"name": result.name(), "code": result.code()});
            match ret {
                Some(GetDataResult::Data(d)) => o["return"] = hes_model::data_json::typed(&d),
                Some(GetDataResult::Error(e)) => {
                    o["return_error"] = json!({"name": e.name(), "code": e.code()})
                }
                None => {}
            }
            if result.code() == 0 {
                0
            } else {
                2
            }
        }
        Err(e) => return fail(doc, net_error(e)),
    };
    let _ = conn.release().await;
    doc["objects"] = json!([o]);
    print(&doc);
    code
}
