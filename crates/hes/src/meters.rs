//! The meters a command works on: an inventory file (JSON, or CSV for `.csv`) imported into a
//! registry whose secrets are sealed under `HES_KEK`/`HES_KEK_FILE`, or under a random key that
//! lives only as long as the process.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use hes_collector::registry::Registry;
use hes_collector::secrets::Kek;
use hes_model::inventory::InventoryEntry;
use rand::RngCore;

/// Reads an inventory file.
pub fn read_inventory(path: &Path) -> anyhow::Result<Vec<InventoryEntry>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "csv") {
        Ok(hes_model::inventory::from_csv(&text)?)
    } else {
        serde_json::from_str(&text).context("inventory JSON")
    }
}

/// The inventory's meters in an in-memory registry.
pub fn registry_from(path: &Path) -> anyhow::Result<(Arc<Registry>, Vec<InventoryEntry>)> {
    let entries = read_inventory(path)?;
    let kek = match Kek::from_env() {
        Ok(k) => k,
        Err(_) => {
            let mut k = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut k);
            Kek::from_bytes(&k)?
        }
    };
    let registry = Arc::new(Registry::in_memory(kek));
    registry.import(&entries, |_| BTreeMap::new())?;
    Ok((registry, entries))
}
