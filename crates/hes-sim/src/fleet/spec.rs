//! What each simulated meter is: its address, transport, client SAPs, keys and quirks, and the
//! inventory file (`--inventory`) a head-end imports as-is.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use dlms::client::{ClientConfig, ClientSecurity};
use dlms::hdlc::{HdlcParams, ServerAddress};
use dlms::link::TransportConfig;
use dlms::security::CipherKeys;
use dlms::{Authentication, SecurityLevel, SystemTitle};

use crate::objects::keys::KeySet;

/// The DLMS port meters listen on (IANA `dlms/cosem`, 4059).
pub const DLMS_PORT: u16 = 4059;

/// How the meters of a fleet are addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    /// Every meter has its own loopback address (127.x.y.z) and listens on the same port, as
    /// real meters each have their own IP and the DLMS port. The default.
    Ip,
    /// Every meter listens on its own port of one address.
    Port,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// IEC 62056-47 wrapper over TCP.
    Wrapper,
    /// IEC 62056-46 HDLC over TCP.
    Hdlc,
}

/// Client SAPs a meter accepts. Most makes use 16/17/1; some use other numbers (a quirk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSaps {
    /// No authentication, no security: reads a few objects.
    pub public: u16,
    /// LLS (password): the meter reader.
    pub reader: u16,
    /// HLS-GMAC, authenticated and encrypted: the management client (reads and commands).
    pub management: u16,
}

impl ClientSaps {
    pub const STANDARD: Self = Self {
        public: 16,
        reader: 17,
        management: 1,
    };
    /// The other numbering some makes use.
    pub const ALTERNATIVE: Self = Self {
        public: 16,
        reader: 32,
        management: 48,
    };
}

/// Behaviours of real makes that a head-end must cope with; each can be switched on per meter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quirks {
    /// Speaks HDLC only (the transport says so too).
    pub hdlc_only: bool,
    /// A small PDU (128 bytes): long answers come in many small blocks, long requests must be
    /// cut by the client.
    pub small_pdu: bool,
    /// Refuses SET with block transfer (the conformance block lacks the bit).
    pub no_set_blocks: bool,
    /// Refuses a selective-access range whose date-times carry a deviation (wants 0x8000).
    pub no_deviation_in_range: bool,
    /// Uses client SAPs 16/32/48 instead of 16/17/1.
    pub alternative_saps: bool,
}

impl Quirks {
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.hdlc_only, "hdlc_only"),
            (self.small_pdu, "small_pdu"),
            (self.no_set_blocks, "no_set_blocks"),
            (self.no_deviation_in_range, "no_deviation_in_range"),
            (self.alternative_saps, "alternative_saps"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect()
    }

    pub fn max_pdu(&self) -> u16 {
        if self.small_pdu {
            128
        } else {
            1024
        }
    }
}

/// Distinct keys per meter, derived from a fleet secret and the serial: a test fleet's keys are
/// reproducible, and no two meters share one.
pub fn derive_keys(fleet_secret: &[u8], serial: u32) -> KeySet {
    let k = |label: &[u8]| -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(b"hes-sim key v1\0");
        h.update(label);
        h.update(fleet_secret);
        h.update(serial.to_be_bytes());
        let d = h.finalize();
        let mut out = [0u8; 16];
        for (o, b) in out.iter_mut().zip(d.iter()) {
            *o = *b;
        }
        out
    };
    KeySet {
        ek: k(b"ek"),
        ak: k(b"ak"),
        kek: k(b"kek"),
    }
}

/// Everything fixed about one meter of the fleet.
#[derive(Debug, Clone)]
pub struct MeterSpec {
    /// Index in the fleet (0-based).
    pub index: u32,
    pub serial: u32,
    pub addr: SocketAddr,
    pub transport: Transport,
    pub saps: ClientSaps,
    pub password: String,
    /// The keys the meter starts with (key transfer may change them later).
    pub keys: KeySet,
    pub system_title: [u8; 8],
    pub quirks: Quirks,
}

/// HDLC addresses of every simulated meter: logical 1 (management logical device), physical
/// 16, on a 2-byte server address.
pub const HDLC_LOGICAL: u16 = 1;
pub const HDLC_PHYSICAL: u16 = 16;

impl MeterSpec {
    pub fn id(&self) -> String {
        format!("MTR{:08}", self.serial)
    }

    pub fn logical_device_name(&self) -> String {
        crate::logical_device_name(self.serial)
    }
}

/// The address of the `i`-th meter. In `Ip` mode, loopback hosts count up from `first`,
/// skipping .0 and .255 in the last octet; in `Port` mode, ports count up from `port`
/// (0 stays 0: any free port each).
pub fn address(mode: Addressing, first: IpAddr, port: u16, i: u32) -> Option<SocketAddr> {
    match mode {
        Addressing::Port => {
            let p = if port == 0 {
                0
            } else {
                u16::try_from(u32::from(port) + i).ok()?
            };
            Some(SocketAddr::new(first, p))
        }
        Addressing::Ip => {
            let IpAddr::V4(v4) = first else { return None };
            let base = u32::from(v4);
            // Count in a space of 254 usable hosts per /24.
            let start_block = base >> 8;
            let start_host = (base & 0xFF).clamp(1, 254) - 1;
            let n = start_host + i;
            let block = start_block.checked_add(n / 254)?;
            let host = n % 254 + 1;
            let ip = Ipv4Addr::from((block << 8) | host);
            // Stay inside 127.0.0.0/8 when the first address is a loopback one.
            if v4.is_loopback() && !ip.is_loopback() {
                return None;
            }
            Some(SocketAddr::new(IpAddr::V4(ip), port))
        }
    }
}

/// One row of the inventory: what a head-end needs to reach and secure the meter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InventoryEntry {
    pub id: String,
    pub serial: String,
    pub logical_device_name: String,
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    pub client_sap_public: u16,
    pub client_sap_reader: u16,
    pub client_sap_management: u16,
    pub hdlc_server_logical: u16,
    pub hdlc_server_physical: u16,
    /// The LLS password of the reader client.
    pub password: String,
    /// Hex, 16 bytes each.
    pub ek: String,
    pub ak: String,
    pub kek: String,
    pub system_title: String,
    /// The security of the management client.
    pub security: String,
    pub max_pdu: u16,
    /// Quirk names, `;`-separated in the CSV.
    pub quirks: Vec<String>,
}

impl InventoryEntry {
    pub fn from_spec(s: &MeterSpec, keys: &KeySet) -> Self {
        Self {
            id: s.id(),
            serial: format!("{:08}", s.serial),
            logical_device_name: s.logical_device_name(),
            host: s.addr.ip().to_string(),
            port: s.addr.port(),
            transport: s.transport,
            client_sap_public: s.saps.public,
            client_sap_reader: s.saps.reader,
            client_sap_management: s.saps.management,
            hdlc_server_logical: HDLC_LOGICAL,
            hdlc_server_physical: HDLC_PHYSICAL,
            password: s.password.clone(),
            ek: hex::encode_upper(keys.ek),
            ak: hex::encode_upper(keys.ak),
            kek: hex::encode_upper(keys.kek),
            system_title: hex::encode_upper(s.system_title),
            security: "hls-gmac-authenticated-encrypted".into(),
            max_pdu: s.quirks.max_pdu(),
            quirks: s.quirks.names().into_iter().map(String::from).collect(),
        }
    }
}

/// Which of a meter's clients to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No authentication, no security.
    Public,
    /// LLS with the password.
    Reader,
    /// HLS-GMAC with authenticated encryption.
    Management,
}

impl InventoryEntry {
    /// A client configuration for this meter in `role` (`None` when the entry's keys are not
    /// 16 bytes of hex). `challenge` is the HLS client challenge (random, 8 to 64 bytes).
    pub fn client_config(
        &self,
        role: Role,
        client_title: SystemTitle,
        invocation_counter: u32,
        challenge: Vec<u8>,
    ) -> Option<ClientConfig> {
        let sap = match role {
            Role::Public => self.client_sap_public,
            Role::Reader => self.client_sap_reader,
            Role::Management => self.client_sap_management,
        };
        let transport = match self.transport {
            Transport::Wrapper => TransportConfig::Wrapper {
                client_wport: sap,
                server_wport: 1,
            },
            Transport::Hdlc => TransportConfig::Hdlc {
                client_sap: u8::try_from(sap).ok()?,
                server: ServerAddress {
                    logical: self.hdlc_server_logical,
                    physical: Some(self.hdlc_server_physical),
                    size: 2,
                },
                params: HdlcParams::default(),
            },
        };
        let mut cfg = ClientConfig::new(transport);
        match role {
            Role::Public => {}
            Role::Reader => {
                cfg.authentication = Authentication::Low {
                    password: self.password.clone().into_bytes(),
                }
            }
            Role::Management => {
                let key = |s: &str| -> Option<[u8; 16]> { hex::decode(s).ok()?.try_into().ok() };
                cfg.authentication = Authentication::HighGmac;
                cfg.challenge = challenge;
                cfg.security = Some(ClientSecurity {
                    level: SecurityLevel::AuthenticatedEncrypted,
                    keys: CipherKeys {
                        ek: key(&self.ek)?,
                        ak: key(&self.ak)?,
                    },
                    system_title: client_title,
                    invocation_counter,
                    dedicated_key: None,
                });
            }
        }
        Some(cfg)
    }
}

pub const CSV_HEADER: &str = "id,serial,logical_device_name,host,port,transport,\
client_sap_public,client_sap_reader,client_sap_management,hdlc_server_logical,\
hdlc_server_physical,password,ek,ak,kek,system_title,security,max_pdu,quirks";

/// The inventory as CSV (a header line, then one line per meter). No field needs quoting:
/// passwords are restricted to printable ASCII without commas or quotes.
pub fn to_csv(rows: &[InventoryEntry]) -> String {
    let mut out = String::with_capacity(rows.len() * 200 + CSV_HEADER.len() + 1);
    out.push_str(CSV_HEADER);
    out.push('\n');
    for r in rows {
        let transport = match r.transport {
            Transport::Wrapper => "wrapper",
            Transport::Hdlc => "hdlc",
        };
        let line = format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.id,
            r.serial,
            r.logical_device_name,
            r.host,
            r.port,
            transport,
            r.client_sap_public,
            r.client_sap_reader,
            r.client_sap_management,
            r.hdlc_server_logical,
            r.hdlc_server_physical,
            r.password,
            r.ek,
            r.ak,
            r.kek,
            r.system_title,
            r.security,
            r.max_pdu,
            r.quirks.join(";"),
        );
        out.push_str(&line);
    }
    out
}

/// A password a CSV line can hold unquoted.
pub fn password_is_plain(p: &str) -> bool {
    !p.is_empty()
        && p.bytes()
            .all(|b| b.is_ascii_graphic() && b != b',' && b != b'"')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn ip_addresses_skip_network_and_broadcast_octets() {
        let first: IpAddr = "127.1.0.1".parse().unwrap();
        let a = |i| address(Addressing::Ip, first, 4059, i).unwrap().to_string();
        assert_eq!(a(0), "127.1.0.1:4059");
        assert_eq!(a(253), "127.1.0.254:4059");
        assert_eq!(a(254), "127.1.1.1:4059");
        assert_eq!(a(100_000), "127.2.137.179:4059");
        // 10 million meters would leave 127/8: refused, not wrapped.
        assert!(address(Addressing::Ip, first, 4059, 200_000_000).is_none());
        let p = |i| {
            address(Addressing::Port, first, 20000, i)
                .unwrap()
                .to_string()
        };
        assert_eq!(p(5), "127.1.0.1:20005");
        assert!(address(Addressing::Port, first, 65535, 1).is_none());
    }

    #[test]
    fn keys_are_distinct_and_reproducible() {
        let a = derive_keys(b"s", 1);
        let same = |x: &KeySet, y: &KeySet| x.ek == y.ek && x.ak == y.ak && x.kek == y.kek;
        assert!(same(&a, &derive_keys(b"s", 1)));
        assert!(!same(&a, &derive_keys(b"s", 2)));
        assert!(!same(&a, &derive_keys(b"t", 1)));
        assert_ne!(a.ek, a.ak);
        assert!(!format!("{a:?}").contains(&hex::encode_upper(a.ek)));
    }

    #[test]
    fn csv_has_one_line_per_meter_and_the_header_columns() {
        let spec = MeterSpec {
            index: 0,
            serial: 7,
            addr: "127.1.0.1:4059".parse().unwrap(),
            transport: Transport::Hdlc,
            saps: ClientSaps::STANDARD,
            password: "12345678".into(),
            keys: derive_keys(b"x", 7),
            system_title: *b"HES\0\0\0\0\x07",
            quirks: Quirks {
                hdlc_only: true,
                small_pdu: true,
                ..Quirks::default()
            },
        };
        let row = InventoryEntry::from_spec(&spec, &spec.keys);
        let csv = to_csv(&[row]);
        let lines: Vec<_> = csv.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0].split(',').count(),
            lines[1].split(',').count(),
            "{csv}"
        );
        assert!(lines[1].starts_with("MTR00000007,00000007,HES0000000000007,127.1.0.1,4059,hdlc"));
        assert!(lines[1].ends_with(",128,hdlc_only;small_pdu"));
    }
}
