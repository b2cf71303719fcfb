//! `hes sim`: one simulated meter serving DLMS over TCP (the fleet comes with `--meters`).
//!
//! Clients: 16 public (no security), 17 LLS with the password, 1 HLS-GMAC with authenticated
//! encryption (security suite 0). The default keys and password are the Green Book's examples:
//! test defaults, never for real meters.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::Args;
use dlms::hdlc::{HdlcParams, ServerAddress};
use dlms::link::TransportConfig;
use dlms::security::CipherKeys;
use dlms::server::{ClientPolicy, ServerConfig};
use dlms::xdlms::Conformance;
use dlms::{Authentication, SecurityLevel, SystemTitle};
use hes_sim::{Meter, MeterConfig, CLIENT_HLS, CLIENT_LLS, CLIENT_PUBLIC};
use tokio::net::TcpListener;

#[derive(Debug, Args)]
pub struct SimArgs {
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// TCP port (0 = any free port; the chosen one is printed as `LISTENING <port>`).
    #[arg(long, default_value_t = 4059)]
    pub port: u16,
    /// Speak HDLC over TCP instead of the wrapper.
    #[arg(long)]
    pub hdlc: bool,
    /// LLS password of client 17 (test default).
    #[arg(long, default_value = hes_sim::TEST_PASSWORD)]
    pub password: String,
    /// Global unicast encryption key (hex; default: the Green Book test key).
    #[arg(long, default_value = "000102030405060708090A0B0C0D0E0F")]
    pub ek: String,
    /// Authentication key (hex; default: the Green Book test key).
    #[arg(long, default_value = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")]
    pub ak: String,
    /// The meter's system title (hex, 8 bytes).
    #[arg(long, default_value = "4D4D4D0000BC614E")]
    pub system_title: String,
    /// Serial number (also seeds the meter's data).
    #[arg(long, default_value_t = 1)]
    pub serial: u32,
}

fn hex16(name: &str, v: &str) -> anyhow::Result<[u8; 16]> {
    hex::decode(v.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("--{name} must be 16 bytes of hex"))
}

/// The server configuration of a simulated meter.
pub fn server_config(args: &SimArgs, title: SystemTitle) -> anyhow::Result<ServerConfig> {
    let transport = if args.hdlc {
        TransportConfig::Hdlc {
            client_sap: 0,
            server: ServerAddress {
                logical: 1,
                physical: Some(16),
                size: 2,
            },
            params: HdlcParams::default(),
        }
    } else {
        TransportConfig::Wrapper {
            client_wport: 0,
            server_wport: 1,
        }
    };
    Ok(ServerConfig {
        transport,
        system_title: title,
        keys: CipherKeys {
            ek: hex16("ek", &args.ek)?,
            ak: hex16("ak", &args.ak)?,
        },
        clients: vec![
            ClientPolicy {
                sap: CLIENT_PUBLIC,
                authentication: Authentication::None,
                security: SecurityLevel::None,
            },
            ClientPolicy {
                sap: CLIENT_LLS,
                authentication: Authentication::Low {
                    password: args.password.clone().into_bytes(),
                },
                security: SecurityLevel::None,
            },
            ClientPolicy {
                sap: CLIENT_HLS,
                authentication: Authentication::HighGmac,
                security: SecurityLevel::AuthenticatedEncrypted,
            },
        ],
        max_receive_pdu: 1024,
        conformance: Conformance::DEFAULT_SERVER,
        max_request_bytes: 64 * 1024,
        inactivity_timeout: Duration::from_secs(120),
    })
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
    let title = hex::decode(args.system_title.trim())
        .ok()
        .and_then(|b| SystemTitle::from_slice(&b))
        .ok_or_else(|| anyhow!("--system-title must be 8 bytes of hex"))?;
    let cfg = server_config(&args, title)?;
    let mut mc = MeterConfig::new(args.serial);
    mc.system_title = title;
    let meter = Arc::new(Mutex::new(Meter::new(mc)));
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .context("--host/--port")?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let port = listener.local_addr()?.port();
    println!("SYSTEM_TITLE {}", hex::encode_upper(title.0));
    println!("LISTENING {port}");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    let lcfg = dlms_net::ListenerConfig::default();
    dlms_net::serve(listener, cfg, lcfg, meter, stop_rx).await?;
    Ok(())
}
