//! How each role of a node is doing, for `/readyz`: a role reports itself (running, or
//! degraded with the reason while it retries: a broker away, a lease not renewed); the node
//! reports one that stopped. Shared by the roles and the API, behind an `Arc`.

use std::collections::BTreeMap;
use std::sync::RwLock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleState {
    Ok(String),
    /// Running, but not doing its work now (retrying); the reason.
    Degraded(String),
    /// Ended: the node is stopping.
    Stopped(String),
}

impl RoleState {
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok(_))
    }
}

/// The roles of one node and their states.
#[derive(Debug, Default)]
pub struct Health {
    roles: RwLock<BTreeMap<String, RoleState>>,
}

impl Health {
    pub fn set(&self, role: &str, state: RoleState) {
        let mut r = self.roles.write().unwrap_or_else(|p| p.into_inner());
        if r.get(role) != Some(&state) {
            r.insert(role.to_string(), state);
        }
    }

    /// Every role and its state, by name.
    pub fn snapshot(&self) -> BTreeMap<String, RoleState> {
        self.roles.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
