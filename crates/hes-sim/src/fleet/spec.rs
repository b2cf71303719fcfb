//! What each simulated meter is: its address, transport, client SAPs, keys and quirks, and the
//! inventory file (`--inventory`) a head-end imports as-is.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use hes_model::inventory::{
    password_is_plain, to_csv, Endpoint, InventoryEntry, Role, Transport, CSV_HEADER,
};

use crate::make::{ClientSaps, Quirks};
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

/// The inventory entry of a meter with the keys it holds now.
pub fn inventory_entry(s: &MeterSpec, keys: &KeySet) -> InventoryEntry {
    InventoryEntry {
        id: s.id(),
        serial: format!("{:08}", s.serial),
        logical_device_name: s.logical_device_name(),
        endpoint: Endpoint {
            host: s.addr.ip().to_string(),
            port: s.addr.port(),
            transport: s.transport,
            client_sap_public: s.saps.public,
            client_sap_reader: s.saps.reader,
            client_sap_management: s.saps.management,
            hdlc_server_logical: HDLC_LOGICAL,
            hdlc_server_physical: HDLC_PHYSICAL,
        },
        password: s.password.clone(),
        ek: hex::encode_upper(keys.ek),
        ak: hex::encode_upper(keys.ak),
        kek: hex::encode_upper(keys.kek),
        system_title: hex::encode_upper(s.system_title),
        security: "hls-gmac-authenticated-encrypted".into(),
        max_pdu: s.quirks.max_pdu(),
        quirks: s.quirks.names().into_iter().map(String::from).collect(),
        // Cells of 50 meters, as a data concentrator or a radio cell would group them.
        groups: std::collections::BTreeMap::from([(
            "cell".to_string(),
            format!("cell-{}", s.serial / 50),
        )]),
    }
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
    fn inventory_entries_carry_the_spec() {
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
        let e = inventory_entry(&spec, &spec.keys);
        assert_eq!(e.endpoint.host, "127.1.0.1");
        assert_eq!(e.logical_device_name, "HES0000000000007");
        assert_eq!((e.max_pdu, e.quirks.len()), (128, 2));
        assert_eq!(e.ek, hex::encode_upper(spec.keys.ek));
    }
}
