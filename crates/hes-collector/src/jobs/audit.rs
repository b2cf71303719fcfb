//! What the engine audited: every command's outcome, also written to the store's trail.

use super::*;

/// One line of the audit trail: who asked what of which meter, when, and how it ended.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct AuditRecord {
    pub at: i64,
    pub job: JobId,
    pub meter: MeterId,
    pub requested_by: String,
    pub command: JobKind,
    pub state: JobState,
    pub error: Option<String>,
    pub detail: Value,
}

/// What this engine audited (the trail itself is the store's, the one the API shows: every
/// command's outcome goes there); kept in memory for inspection.
#[derive(Debug, Default)]
pub struct Audit {
    records: Mutex<Vec<AuditRecord>>,
}

impl Audit {
    pub fn in_memory() -> Self {
        Self::default()
    }

    pub(super) fn record(&self, r: AuditRecord) {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(r);
    }

    /// The records written by this process.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
