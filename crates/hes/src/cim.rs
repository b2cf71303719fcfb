//! The delivery of CIM messages to the MDM (`[cim]` of the node's configuration, docs/cim.md):
//! run by `hes serve` on every node with the api role, and by `hes demo --config FILE` when
//! the file names an MDM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hes_cim::outbound::{Outbound, OutboundConfig};
use hes_model::meter::MeterStatus;
use hes_model::MeterId;
use hes_store::{CimOutbox, Registry, Store};

/// The delivery's settings from the node's `[cim]` (`None`: no MDM configured).
pub fn outbound_config(c: &hes_node::Cim, node: &str) -> Option<OutboundConfig> {
    if c.mdm_url.trim().is_empty() {
        return None;
    }
    Some(OutboundConfig {
        url: c.mdm_url.trim().to_string(),
        // A secret: from the environment only.
        authorization: std::env::var("HES_CIM_AUTHORIZATION")
            .ok()
            .filter(|a| !a.trim().is_empty()),
        ca_file: Some(c.ca_file.clone()).filter(|p| !p.as_os_str().is_empty()),
        node: node.to_string(),
        events: c.events,
        readings: c.readings,
        day_delay_s: c.day_delay_s,
        max_attempts: c.max_attempts,
        backoff_base_s: c.backoff_base_s,
        backoff_max_s: c.backoff_max_s,
        lease_s: c.lease_s,
        poll: Duration::from_millis(c.poll_ms.max(100)),
        timeout: Duration::from_secs(c.timeout_s.max(1)),
    })
}

/// Starts the delivery when an MDM is configured; its task ends on `stop`.
pub fn spawn(
    c: &hes_node::Cim,
    node: &str,
    outbox: Arc<dyn CimOutbox>,
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(cfg) = outbound_config(c, node) else {
        return Ok(None);
    };
    let url = cfg.url.clone();
    // Every meter still in service gets its day; a decommissioned one no longer.
    let meters: Arc<dyn Fn() -> Vec<MeterId> + Send + Sync> = Arc::new(move || {
        registry
            .all()
            .iter()
            .filter(|m| m.status != MeterStatus::Decommissioned)
            .map(|m| m.id.clone())
            .collect::<Vec<_>>()
    });
    let out = Outbound::new(cfg, outbox, store, meters, hes_api::describe_event)
        .map_err(anyhow::Error::msg)
        .context("[cim]")?;
    println!("CIM outbound to {url}");
    Ok(Some(tokio::spawn(out.run(stop))))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_node_section_to_the_delivery_settings() {
        assert!(outbound_config(&hes_node::Cim::default(), "n").is_none());
        let c = hes_node::Cim {
            mdm_url: " http://mdm:8081/cim ".into(),
            max_attempts: 3,
            poll_ms: 1,
            ..hes_node::Cim::default()
        };
        let o = outbound_config(&c, "api-1").unwrap();
        assert_eq!(o.url, "http://mdm:8081/cim");
        assert_eq!((o.node.as_str(), o.max_attempts), ("api-1", 3));
        assert_eq!(o.poll, Duration::from_millis(100), "bounded below");
        assert_eq!(o.ca_file, None);
        assert_eq!(o.day_delay_s, 7200);
    }
}
