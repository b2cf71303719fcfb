//! The HDLC control field (IEC 62056-46 clause 6.4.3): I, S and U frames with modulo-8
//! sequence numbers.

use super::HdlcError;

/// The poll (command) / final (response) bit.
const PF: u8 = 0x10;
// Supervisory frames: low two bits 01, type in bits 2-3.
const RR: u8 = 0x01;
const RNR: u8 = 0x05;
// Unnumbered frames, P/F bit cleared.
const SNRM: u8 = 0x83;
const DISC: u8 = 0x43;
const UA: u8 = 0x63;
const DM: u8 = 0x0F;
const FRMR: u8 = 0x87;
const UI: u8 = 0x03;

/// A decoded control byte. Sequence numbers are taken modulo 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    I { ns: u8, nr: u8, poll: bool },
    Rr { nr: u8, poll: bool },
    Rnr { nr: u8, poll: bool },
    Snrm { poll: bool },
    Disc { poll: bool },
    Ua { fin: bool },
    Dm { fin: bool },
    Frmr { fin: bool },
    Ui { poll: bool },
}

fn pf(bit: bool) -> u8 {
    if bit {
        PF
    } else {
        0
    }
}

impl Control {
    pub fn to_byte(self) -> u8 {
        match self {
            Control::I { ns, nr, poll } => ((nr & 7) << 5) | pf(poll) | ((ns & 7) << 1),
            Control::Rr { nr, poll } => ((nr & 7) << 5) | pf(poll) | RR,
            Control::Rnr { nr, poll } => ((nr & 7) << 5) | pf(poll) | RNR,
            Control::Snrm { poll } => SNRM | pf(poll),
            Control::Disc { poll } => DISC | pf(poll),
            Control::Ua { fin } => UA | pf(fin),
            Control::Dm { fin } => DM | pf(fin),
            Control::Frmr { fin } => FRMR | pf(fin),
            Control::Ui { poll } => UI | pf(poll),
        }
    }

    pub fn from_byte(b: u8) -> Result<Self, HdlcError> {
        let bit = b & PF != 0;
        let nr = b >> 5;
        if b & 1 == 0 {
            return Ok(Control::I {
                ns: (b >> 1) & 7,
                nr,
                poll: bit,
            });
        }
        if b & 0x0F == RR {
            return Ok(Control::Rr { nr, poll: bit });
        }
        if b & 0x0F == RNR {
            return Ok(Control::Rnr { nr, poll: bit });
        }
        match b & !PF {
            SNRM => Ok(Control::Snrm { poll: bit }),
            DISC => Ok(Control::Disc { poll: bit }),
            UA => Ok(Control::Ua { fin: bit }),
            DM => Ok(Control::Dm { fin: bit }),
            FRMR => Ok(Control::Frmr { fin: bit }),
            UI => Ok(Control::Ui { poll: bit }),
            // REJ, SREJ and the unnumbered frames DLMS does not use.
            _ => Err(HdlcError::UnknownControl(b)),
        }
    }

    /// The P/F bit, whichever name it has in this frame.
    pub fn poll_final(self) -> bool {
        match self {
            Control::I { poll, .. }
            | Control::Rr { poll, .. }
            | Control::Rnr { poll, .. }
            | Control::Snrm { poll }
            | Control::Disc { poll }
            | Control::Ui { poll } => poll,
            Control::Ua { fin } | Control::Dm { fin } | Control::Frmr { fin } => fin,
        }
    }

    /// N(R) of I and S frames.
    pub fn nr(self) -> Option<u8> {
        match self {
            Control::I { nr, .. } | Control::Rr { nr, .. } | Control::Rnr { nr, .. } => Some(nr),
            _ => None,
        }
    }
}
