//! The meter registry lives in the store (`hes_store::registry`); re-exported here for the
//! collector's modules and their users.

pub use hes_model::meter::{MeterRecord, MeterStatus, OpenKeys, SealedKeys};
pub use hes_store::registry::{Registry, RegistryError};
