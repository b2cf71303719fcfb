//! The handlers, one module per resource.

pub mod admin;
pub mod analytics;
pub mod auth;
pub mod cim;
pub mod events;
pub mod jobs;
pub mod meters;
pub mod readings;
pub mod stats;
pub mod webhooks;

use std::sync::Arc;

use hes_model::meter::MeterRecord;
use hes_model::MeterId;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;

/// The meter if it exists and the principal's scope covers it; a meter outside the scope is
/// "not found", so that its existence does not leak.
pub(crate) fn visible_meter(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<Arc<MeterRecord>, ApiError> {
    state
        .registry
        .get(&MeterId(id.to_string()))
        .filter(|m| who.sees_groups(&m.groups))
        .ok_or_else(|| ApiError::NotFound(format!("meter {id}")))
}

/// Ids of the meters the principal sees (`None`: every meter, no filter needed).
pub(crate) fn visible_ids(state: &AppState, who: &Principal) -> Option<Vec<String>> {
    if who.unrestricted() {
        return None;
    }
    Some(
        state
            .registry
            .all()
            .iter()
            .filter(|m| who.sees_groups(&m.groups))
            .map(|m| m.id.0.clone())
            .collect(),
    )
}
