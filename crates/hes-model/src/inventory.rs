//! The meter inventory: the exchange format between whoever knows the meters (the simulator's
//! `--inventory`, a utility's asset system) and the head-end's registry, as JSON or CSV, and how
//! to reach a meter's clients.

use dlms::client::{ClientConfig, ClientSecurity};
use dlms::hdlc::{HdlcParams, ServerAddress};
use dlms::link::TransportConfig;
use dlms::security::CipherKeys;
use dlms::{Authentication, SecurityLevel, SystemTitle};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// IEC 62056-47 wrapper over TCP.
    Wrapper,
    /// IEC 62056-46 HDLC over TCP.
    Hdlc,
}

/// Which of a meter's clients to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No authentication, no security (reads the invocation counter, identity).
    Public,
    /// LLS with the password.
    Reader,
    /// HLS-GMAC with authenticated encryption: reads and commands.
    Management,
}

/// Where a meter is and how its clients are addressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    pub client_sap_public: u16,
    pub client_sap_reader: u16,
    pub client_sap_management: u16,
    pub hdlc_server_logical: u16,
    pub hdlc_server_physical: u16,
}

/// What a client needs to prove and protect with, for the roles that need it.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub password: &'a [u8],
    pub ek: [u8; 16],
    pub ak: [u8; 16],
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

impl Endpoint {
    /// The client SAP of `role`.
    pub fn sap(&self, role: Role) -> u16 {
        match role {
            Role::Public => self.client_sap_public,
            Role::Reader => self.client_sap_reader,
            Role::Management => self.client_sap_management,
        }
    }

    /// A client configuration for `role` (`None`: an HDLC SAP above 255). `challenge` is the
    /// HLS client challenge (random, 8 to 64 bytes); `client_title` our system title.
    pub fn client_config(
        &self,
        role: Role,
        creds: Credentials<'_>,
        client_title: SystemTitle,
        invocation_counter: u32,
        challenge: Vec<u8>,
    ) -> Option<ClientConfig> {
        let sap = self.sap(role);
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
                    password: creds.password.to_vec(),
                }
            }
            Role::Management => {
                cfg.authentication = Authentication::HighGmac;
                cfg.challenge = challenge;
                cfg.security = Some(ClientSecurity {
                    level: SecurityLevel::AuthenticatedEncrypted,
                    keys: CipherKeys {
                        ek: creds.ek,
                        ak: creds.ak,
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

/// One row of the inventory: what a head-end needs to reach and secure the meter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InventoryEntry {
    pub id: String,
    pub serial: String,
    pub logical_device_name: String,
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// The LLS password of the reader client.
    pub password: String,
    /// Hex, 16 bytes each: encryption, authentication and master key.
    pub ek: String,
    pub ak: String,
    pub kek: String,
    /// Hex, 8 bytes.
    pub system_title: String,
    /// The security of the management client.
    pub security: String,
    pub max_pdu: u16,
    /// Quirk names, `;`-separated in the CSV.
    #[serde(default)]
    pub quirks: Vec<String>,
    /// Groups (`key` → `value`: region, feeder, transformer, cell …), `k=v;k=v` in the CSV.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub groups: std::collections::BTreeMap<String, String>,
}

impl InventoryEntry {
    /// The entry's keys as bytes (`None` when one is not 16 bytes of hex).
    pub fn keys(&self) -> Option<([u8; 16], [u8; 16], [u8; 16])> {
        let k = |s: &str| -> Option<[u8; 16]> { hex::decode(s).ok()?.try_into().ok() };
        Some((k(&self.ek)?, k(&self.ak)?, k(&self.kek)?))
    }

    /// A client configuration for `role`, with the entry's own password and keys.
    pub fn client_config(
        &self,
        role: Role,
        client_title: SystemTitle,
        invocation_counter: u32,
        challenge: Vec<u8>,
    ) -> Option<ClientConfig> {
        let (ek, ak, _) = self.keys()?;
        let creds = Credentials {
            password: self.password.as_bytes(),
            ek,
            ak,
        };
        self.endpoint
            .client_config(role, creds, client_title, invocation_counter, challenge)
    }
}

pub const CSV_HEADER: &str = "id,serial,logical_device_name,host,port,transport,\
client_sap_public,client_sap_reader,client_sap_management,hdlc_server_logical,\
hdlc_server_physical,password,ek,ak,kek,system_title,security,max_pdu,quirks,groups";

/// A password a CSV line can hold unquoted: printable ASCII without commas or quotes.
pub fn password_is_plain(p: &str) -> bool {
    !p.is_empty()
        && p.bytes()
            .all(|b| b.is_ascii_graphic() && b != b',' && b != b'"')
}

/// The inventory as CSV (a header line, then one line per meter), RFC 4180: a field with a
/// comma, a quote or a line break is quoted.
pub fn to_csv(rows: &[InventoryEntry]) -> String {
    // Writing into memory has no I/O to fail, and every field is UTF-8.
    write_csv(rows)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

fn write_csv(rows: &[InventoryEntry]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::with_capacity(rows.len() * 200 + CSV_HEADER.len() + 1));
    w.write_record(CSV_HEADER.split(','))?;
    for r in rows {
        let e = &r.endpoint;
        let transport = match e.transport {
            Transport::Wrapper => "wrapper",
            Transport::Hdlc => "hdlc",
        };
        w.write_record([
            r.id.as_str(),
            &r.serial,
            &r.logical_device_name,
            &e.host,
            &e.port.to_string(),
            transport,
            &e.client_sap_public.to_string(),
            &e.client_sap_reader.to_string(),
            &e.client_sap_management.to_string(),
            &e.hdlc_server_logical.to_string(),
            &e.hdlc_server_physical.to_string(),
            &r.password,
            &r.ek,
            &r.ak,
            &r.kek,
            &r.system_title,
            &r.security,
            &r.max_pdu.to_string(),
            &r.quirks.join(";"),
            &r.groups
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";"),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("inventory line {line}: {why}")]
pub struct CsvError {
    pub line: usize,
    pub why: String,
}

/// Reads an inventory CSV with the header [`CSV_HEADER`] (columns in any order; quoted fields
/// as RFC 4180 has them; blank lines skipped).
pub fn from_csv(text: &str) -> Result<Vec<InventoryEntry>, CsvError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        // Counted below, to say which line and how many.
        .flexible(true)
        .from_reader(text.as_bytes());
    let line_of = |e: &csv::Error| {
        e.position()
            .and_then(|p| usize::try_from(p.line()).ok())
            .unwrap_or(0)
    };
    let names = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Err(CsvError {
                line: line_of(&e),
                why: e.to_string(),
            })
        }
    };
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for record in rdr.records() {
        let cells = record.map_err(|e| CsvError {
            line: line_of(&e),
            why: e.to_string(),
        })?;
        let line = cells
            .position()
            .and_then(|p| usize::try_from(p.line()).ok())
            .unwrap_or(0);
        let err = |why: String| CsvError { line, why };
        if cells.len() != names.len() {
            return Err(err(format!(
                "{} fields, the header has {}",
                cells.len(),
                names.len()
            )));
        }
        let get = |name: &str| -> Result<&str, CsvError> {
            names
                .iter()
                .position(|h| h == name)
                .and_then(|i| cells.get(i))
                .ok_or_else(|| err(format!("no column {name}")))
        };
        let num = |name: &str| -> Result<u16, CsvError> {
            get(name)?
                .parse()
                .map_err(|_| err(format!("{name} is not a number")))
        };
        let transport = match get("transport")? {
            "wrapper" => Transport::Wrapper,
            "hdlc" => Transport::Hdlc,
            other => return Err(err(format!("unknown transport {other:?}"))),
        };
        out.push(InventoryEntry {
            id: get("id")?.to_string(),
            serial: get("serial")?.to_string(),
            logical_device_name: get("logical_device_name")?.to_string(),
            endpoint: Endpoint {
                host: get("host")?.to_string(),
                port: num("port")?,
                transport,
                client_sap_public: num("client_sap_public")?,
                client_sap_reader: num("client_sap_reader")?,
                client_sap_management: num("client_sap_management")?,
                hdlc_server_logical: num("hdlc_server_logical")?,
                hdlc_server_physical: num("hdlc_server_physical")?,
            },
            password: get("password")?.to_string(),
            ek: get("ek")?.to_string(),
            ak: get("ak")?.to_string(),
            kek: get("kek")?.to_string(),
            system_title: get("system_title")?.to_string(),
            security: get("security")?.to_string(),
            max_pdu: num("max_pdu")?,
            quirks: get("quirks")?
                .split(';')
                .filter(|q| !q.is_empty())
                .map(String::from)
                .collect(),
            // Optional (older files have no such column): `key=value;key=value`.
            groups: match names.iter().position(|h| h == "groups") {
                None => Default::default(),
                Some(_) => get("groups")?
                    .split(';')
                    .filter(|g| !g.is_empty())
                    .map(|g| {
                        g.split_once('=')
                            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                            .ok_or_else(|| err(format!("group {g:?} is not key=value")))
                    })
                    .collect::<Result<_, _>>()?,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn entry() -> InventoryEntry {
        InventoryEntry {
            id: "MTR00000007".into(),
            serial: "00000007".into(),
            logical_device_name: "HES0000000000007".into(),
            endpoint: Endpoint {
                host: "127.1.0.7".into(),
                port: 4059,
                transport: Transport::Hdlc,
                client_sap_public: 16,
                client_sap_reader: 17,
                client_sap_management: 1,
                hdlc_server_logical: 1,
                hdlc_server_physical: 16,
            },
            password: "12345678".into(),
            ek: "000102030405060708090A0B0C0D0E0F".into(),
            ak: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF".into(),
            kek: "000102030405060708090A0B0C0D0E0F".into(),
            system_title: "4845530000000007".into(),
            security: "hls-gmac-authenticated-encrypted".into(),
            max_pdu: 128,
            quirks: vec!["hdlc_only".into(), "small_pdu".into()],
            groups: [
                ("cell".to_string(), "c7".to_string()),
                ("feeder".to_string(), "F 2".to_string()),
            ]
            .into(),
        }
    }

    #[test]
    fn csv_and_json_round_trip_with_flat_fields() {
        let e = entry();
        let csv = to_csv(std::slice::from_ref(&e));
        assert!(csv
            .lines()
            .nth(1)
            .unwrap()
            .ends_with(",128,hdlc_only;small_pdu,cell=c7;feeder=F 2"));
        assert_eq!(from_csv(&csv).unwrap(), vec![e.clone()]);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["host"], "127.1.0.7");
        assert_eq!(json["transport"], "hdlc");
        assert_eq!(serde_json::from_value::<InventoryEntry>(json).unwrap(), e);
        let bad = csv.replace(",hdlc,", ",serial-port,");
        assert_eq!(from_csv(&bad).unwrap_err().line, 2);
        assert!(from_csv(&csv.replace(",4059,", ",,x,")).is_err());
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let mut e = entry();
        e.password = "pa,ss\"word".into();
        e.serial = " 7 ".into();
        let csv = to_csv(std::slice::from_ref(&e));
        assert!(csv.contains(",\"pa,ss\"\"word\","), "{csv}");
        let back = from_csv(&csv).unwrap();
        assert_eq!(back[0].password, "pa,ss\"word");
        // Fields are trimmed, as the hand-edited files this reads often need.
        assert_eq!(back[0].serial, "7");
        // Blank lines are skipped; errors name the line of the file.
        let gappy = format!("\n{}\n\n{}", CSV_HEADER, csv.lines().nth(1).unwrap());
        assert_eq!(from_csv(&gappy).unwrap().len(), 1);
        let broken = format!("{csv}{}\n", "MTR9,9,x");
        assert_eq!(from_csv(&broken).unwrap_err().line, 3);
        assert_eq!(from_csv("").unwrap(), vec![]);
    }

    #[test]
    fn client_configs_follow_the_role() {
        let e = entry();
        let title = SystemTitle(*b"HESCLNT1");
        let cfg = e
            .client_config(Role::Management, title, 9, vec![1; 16])
            .unwrap();
        assert!(cfg
            .security
            .as_ref()
            .is_some_and(|s| s.invocation_counter == 9));
        let cfg = e.client_config(Role::Reader, title, 9, vec![]).unwrap();
        assert!(cfg.security.is_none());
        assert!(matches!(
            cfg.transport,
            TransportConfig::Hdlc { client_sap: 17, .. }
        ));
        let mut big = e;
        big.endpoint.client_sap_reader = 300;
        assert!(big.client_config(Role::Reader, title, 1, vec![]).is_none());
    }
}
