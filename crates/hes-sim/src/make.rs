//! How a make behaves: the client SAPs its meters accept and the quirks a head-end must cope
//! with, each switched on per meter.

use serde::{Deserialize, Serialize};

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
