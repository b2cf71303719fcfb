//! Disconnect control (class 70): the supply breaker, its state and the rules for who may
//! open and close it (the control mode).

use super::value::{boolean, enumerated};
use super::{cosem_value, CosemError};
use crate::axdr::Data;

pub const CLASS_ID: u16 = 70;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
/// `output_state`: boolean, true = supply connected.
pub const OUTPUT_STATE: i8 = 2;
pub const CONTROL_STATE: i8 = 3;
pub const CONTROL_MODE: i8 = 4;

pub const REMOTE_DISCONNECT: i8 = 1;
pub const REMOTE_RECONNECT: i8 = 2;

pub(crate) const ATTRIBUTES: &[&str] = &[
    "logical_name",
    "output_state",
    "control_state",
    "control_mode",
];
pub(crate) const METHODS: &[&str] = &["remote_disconnect", "remote_reconnect"];

/// `control_state` (enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlState {
    Disconnected,
    Connected,
    /// Disconnected, waiting for a local (manual) reconnection.
    ReadyForReconnection,
}

impl ControlState {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        Ok(match enumerated(d)? {
            0 => Self::Disconnected,
            1 => Self::Connected,
            2 => Self::ReadyForReconnection,
            _ => return Err(CosemError::Invalid("control_state not in 0..=2")),
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Enum(match self {
            Self::Disconnected => 0,
            Self::Connected => 1,
            Self::ReadyForReconnection => 2,
        })
    }
}

/// `control_mode` (enum 0..=6): which of remote, manual and local triggers may disconnect and
/// reconnect. 0 means the breaker is always connected; the Blue Book's state-transition table
/// defines 1..=6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlMode(pub u8);

impl ControlMode {
    pub const NONE: ControlMode = ControlMode(0);

    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let m = enumerated(d)?;
        if m <= 6 {
            Ok(Self(m))
        } else {
            Err(CosemError::Invalid("control_mode not in 0..=6"))
        }
    }

    pub fn to_data(&self) -> Data {
        Data::Enum(self.0)
    }

    /// Whether `remote_reconnect` closes the breaker directly (modes 2 and 4) instead of only
    /// arming it for a manual reconnection (modes 1, 3, 5, 6).
    pub fn remote_reconnect_is_direct(&self) -> bool {
        matches!(self.0, 2 | 4)
    }
}

cosem_value!(ControlState, ControlMode);

/// `output_state`.
pub fn output_state_from_data(d: &Data) -> Result<bool, CosemError> {
    boolean(d)
}

/// The parameter of `remote_disconnect` and `remote_reconnect` (`integer (0)`).
pub fn method_params() -> Data {
    Data::Integer(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_modes() {
        for s in [
            ControlState::Disconnected,
            ControlState::Connected,
            ControlState::ReadyForReconnection,
        ] {
            assert_eq!(ControlState::from_data(&s.to_data()), Ok(s));
        }
        assert_eq!(
            ControlState::from_data(&Data::Enum(1)),
            Ok(ControlState::Connected)
        );
        assert!(ControlState::from_data(&Data::Enum(3)).is_err());
        assert!(ControlState::from_data(&Data::Unsigned(1)).is_err());
        for m in 0..=6 {
            assert_eq!(ControlMode::from_data(&Data::Enum(m)), Ok(ControlMode(m)));
        }
        assert!(ControlMode::from_data(&Data::Enum(7)).is_err());
        assert!(ControlMode(4).remote_reconnect_is_direct());
        assert!(!ControlMode(1).remote_reconnect_is_direct());
    }
}
