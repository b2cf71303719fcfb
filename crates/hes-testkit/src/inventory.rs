//! Inventory entries like the simulator writes (`hes_model::inventory`), for tests that build
//! a registry or an inventory file without running a fleet.

use std::net::Ipv4Addr;
use std::path::Path;

use hes_model::inventory::{Endpoint, InventoryEntry, Transport};

/// The address of meter `i` (from 1) counting from 127.1.0.1 as the simulator does (see
/// `docs/simulator.md`): 127.1.0.1, 127.1.0.2, …, skipping .0 and .255 in the last octet.
pub fn host(i: u32) -> Ipv4Addr {
    let n = i.saturating_sub(1);
    let block = (127u32 << 16 | 1 << 8).saturating_add(n / 254);
    Ipv4Addr::from((block << 8) | (n % 254 + 1))
}

/// Meter `i`'s entry: id `MTR` and the 8-digit serial `i`, on [`host`]`(i)` port 4059 over the
/// wrapper, the usual client SAPs (16, 17, 1), the test password and keys of `hes sim`'s
/// single meter, HLS-GMAC. Change fields as the test needs.
pub fn entry(i: u32) -> InventoryEntry {
    InventoryEntry {
        id: format!("MTR{i:08}"),
        serial: format!("{i:08}"),
        logical_device_name: format!("HES{i:013}"),
        endpoint: Endpoint {
            host: host(i).to_string(),
            port: 4059,
            transport: Transport::Wrapper,
            client_sap_public: 16,
            client_sap_reader: 17,
            client_sap_management: 1,
            hdlc_server_logical: 1,
            hdlc_server_physical: 16,
        },
        password: "12345678".into(),
        ek: "000102030405060708090A0B0C0D0E0F".into(),
        ak: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF".into(),
        kek: "101112131415161718191A1B1C1D1E1F".into(),
        system_title: format!("48455300{i:08X}"),
        security: "hls-gmac-authenticated-encrypted".into(),
        max_pdu: 1024,
        quirks: vec![],
        groups: Default::default(),
    }
}

/// Meters `1..=n`.
pub fn entries(n: u32) -> Vec<InventoryEntry> {
    (1..=n).map(entry).collect()
}

/// Writes `entries` as an inventory file (JSON, the form `hes sim --inventory x.json`
/// writes).
pub fn write_json(path: &Path, entries: &[InventoryEntry]) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(entries).map_err(std::io::Error::other)?;
    std::fs::write(path, json)
}

/// The first of `count` serials that no run of the last hour used, for a
/// fleet whose readings land on long-lived Kafka topics, where earlier runs' readings are
/// told apart by meter id only.
pub fn fresh_serials(count: u32) -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // Within one process, blocks follow each other; across processes, the clock moves the
    // base by 1000 serials a millisecond, wrapping after about 67 minutes.
    let within = NEXT.fetch_add(count.max(1), Ordering::Relaxed) % 1000;
    let base = 10_000_000 + (millis % 4_000_000) as u32 * 1000;
    base + within
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn hosts_count_like_the_simulator() {
        assert_eq!(host(1).to_string(), "127.1.0.1");
        assert_eq!(host(6).to_string(), "127.1.0.6");
        assert_eq!(host(254).to_string(), "127.1.0.254");
        assert_eq!(host(255).to_string(), "127.1.1.1");
        assert_eq!(host(100_000).to_string(), "127.2.137.178");
    }

    #[test]
    fn entries_are_valid_inventory() {
        let es = entries(3);
        let csv = hes_model::inventory::to_csv(&es);
        assert_eq!(hes_model::inventory::from_csv(&csv).unwrap(), es);
        assert!(es[2].keys().is_some());
        assert_eq!(es[2].id, "MTR00000003");
    }
}
