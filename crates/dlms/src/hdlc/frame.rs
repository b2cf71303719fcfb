//! HDLC frame format type 3: addresses, control field, HCS/FCS, parameter negotiation, and a
//! deframer for a byte stream.

use super::HdlcError;

pub const FLAG: u8 = 0x7E;
/// The largest frame the 11-bit length field can describe.
pub const MAX_FRAME_LEN: usize = 0x7FF;

/// CRC-16/X-25 as RFC 1662 specifies for HDLC (the HCS and the FCS).
pub fn fcs16(bytes: &[u8]) -> u16 {
    let mut fcs: u16 = 0xFFFF;
    for b in bytes {
        fcs ^= u16::from(*b);
        for _ in 0..8 {
            fcs = if fcs & 1 != 0 {
                (fcs >> 1) ^ 0x8408
            } else {
                fcs >> 1
            };
        }
    }
    !fcs
}

/// A server's HDLC address: upper (logical device) and lower (physical device) parts, and the
/// size (1, 2 or 4 bytes) used to send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerAddress {
    pub logical: u16,
    pub physical: Option<u16>,
    pub size: u8,
}

impl ServerAddress {
    pub fn encode(&self) -> Vec<u8> {
        let l = self.logical;
        let p = self.physical.unwrap_or(0);
        match self.size {
            1 => vec![((l as u8) << 1) | 1],
            4 => vec![
                ((l >> 7) as u8 & 0x7F) << 1,
                (l as u8 & 0x7F) << 1,
                ((p >> 7) as u8 & 0x7F) << 1,
                ((p as u8 & 0x7F) << 1) | 1,
            ],
            _ => vec![(l as u8 & 0x7F) << 1, ((p as u8 & 0x7F) << 1) | 1],
        }
    }

    /// From the raw bytes of an extended address.
    pub fn decode(raw: &[u8]) -> Option<Self> {
        let v: Vec<u16> = raw.iter().map(|b| u16::from(b >> 1)).collect();
        match v.as_slice() {
            [l] => Some(Self {
                logical: *l,
                physical: None,
                size: 1,
            }),
            [l, p] => Some(Self {
                logical: *l,
                physical: Some(*p),
                size: 2,
            }),
            [l1, l2, p1, p2] => Some(Self {
                logical: (l1 << 7) | l2,
                physical: Some((p1 << 7) | p2),
                size: 4,
            }),
            _ => None,
        }
    }

    /// Whether `other` names the same device (whatever size it was sent in).
    pub fn matches(&self, other: &ServerAddress) -> bool {
        self.logical == other.logical
            && (other.physical.is_none()
                || self.physical.is_none()
                || self.physical == other.physical)
    }
}

/// A client address: one byte, the SAP.
pub fn client_address(sap: u8) -> Vec<u8> {
    vec![(sap << 1) | 1]
}

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

const PF: u8 = 0x10;

impl Control {
    pub fn to_byte(self) -> u8 {
        let pf = |b: bool| if b { PF } else { 0 };
        match self {
            Control::I { ns, nr, poll } => ((nr & 7) << 5) | pf(poll) | ((ns & 7) << 1),
            Control::Rr { nr, poll } => ((nr & 7) << 5) | pf(poll) | 0x01,
            Control::Rnr { nr, poll } => ((nr & 7) << 5) | pf(poll) | 0x05,
            Control::Snrm { poll } => 0x83 | pf(poll),
            Control::Disc { poll } => 0x43 | pf(poll),
            Control::Ua { fin } => 0x63 | pf(fin),
            Control::Dm { fin } => 0x0F | pf(fin),
            Control::Frmr { fin } => 0x87 | pf(fin),
            Control::Ui { poll } => 0x03 | pf(poll),
        }
    }

    pub fn from_byte(c: u8) -> Result<Self, HdlcError> {
        let pf = c & PF != 0;
        let nr = c >> 5;
        if c & 1 == 0 {
            return Ok(Control::I {
                ns: (c >> 1) & 7,
                nr,
                poll: pf,
            });
        }
        Ok(match c & 0x0F {
            0x01 => Control::Rr { nr, poll: pf },
            0x05 => Control::Rnr { nr, poll: pf },
            _ => match c & !PF {
                0x83 => Control::Snrm { poll: pf },
                0x43 => Control::Disc { poll: pf },
                0x63 => Control::Ua { fin: pf },
                0x0F => Control::Dm { fin: pf },
                0x87 => Control::Frmr { fin: pf },
                0x03 => Control::Ui { poll: pf },
                _ => return Err(HdlcError::Malformed("unknown control field")),
            },
        })
    }
}

/// One HDLC frame (flags excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub segmented: bool,
    pub dest: Vec<u8>,
    pub src: Vec<u8>,
    pub control: Control,
    pub info: Vec<u8>,
}

impl Frame {
    /// Appends the frame with its flags.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let header_len = 2 + self.dest.len() + self.src.len() + 1;
        let len = header_len
            + if self.info.is_empty() {
                2
            } else {
                2 + self.info.len() + 2
            };
        let start = out.len() + 1;
        out.push(FLAG);
        out.push(0xA0 | (u8::from(self.segmented) << 3) | ((len >> 8) as u8 & 0x07));
        out.push(len as u8);
        out.extend_from_slice(&self.dest);
        out.extend_from_slice(&self.src);
        out.push(self.control.to_byte());
        if !self.info.is_empty() {
            let hcs = fcs16(out.get(start..).unwrap_or_default());
            out.extend_from_slice(&hcs.to_le_bytes());
            out.extend_from_slice(&self.info);
        }
        let fcs = fcs16(out.get(start..).unwrap_or_default());
        out.extend_from_slice(&fcs.to_le_bytes());
        out.push(FLAG);
    }

    /// Decodes the bytes between the flags.
    pub fn decode(body: &[u8]) -> Result<Self, HdlcError> {
        if body.len() < 7 {
            return Err(HdlcError::Malformed("frame too short"));
        }
        let (content, fcs) = body.split_at(body.len() - 2);
        if fcs16(content).to_le_bytes() != fcs {
            return Err(HdlcError::BadFcs);
        }
        let (&f0, rest) = content.split_first().ok_or(HdlcError::Malformed("empty"))?;
        let (&f1, rest) = rest
            .split_first()
            .ok_or(HdlcError::Malformed("no length"))?;
        if f0 & 0xF0 != 0xA0 {
            return Err(HdlcError::Malformed("not frame format type 3"));
        }
        let len = (usize::from(f0 & 0x07) << 8) | usize::from(f1);
        if len != body.len() {
            return Err(HdlcError::Malformed(
                "length field disagrees with the frame",
            ));
        }
        let (dest, rest) = split_address(rest)?;
        let (src, rest) = split_address(rest)?;
        let (&c, rest) = rest
            .split_first()
            .ok_or(HdlcError::Malformed("no control field"))?;
        let control = Control::from_byte(c)?;
        let info = if rest.is_empty() {
            Vec::new()
        } else {
            if rest.len() < 2 {
                return Err(HdlcError::Malformed("no HCS"));
            }
            let header_end = content.len() - rest.len();
            let (hcs, info) = rest.split_at(2);
            let header = content
                .get(..header_end)
                .ok_or(HdlcError::Malformed("header"))?;
            if fcs16(header).to_le_bytes() != hcs {
                return Err(HdlcError::BadHcs);
            }
            info.to_vec()
        };
        Ok(Frame {
            segmented: f0 & 0x08 != 0,
            dest: dest.to_vec(),
            src: src.to_vec(),
            control,
            info,
        })
    }
}

fn split_address(b: &[u8]) -> Result<(&[u8], &[u8]), HdlcError> {
    for (i, byte) in b.iter().enumerate().take(4) {
        if byte & 1 == 1 {
            return Ok(b.split_at(i + 1));
        }
    }
    Err(HdlcError::Malformed(
        "address longer than 4 bytes or missing",
    ))
}

/// Cuts a byte stream into frames. Garbage between frames is skipped; a bad frame is reported
/// once and skipped; the buffer never grows past one maximal frame plus one read.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
    /// The last frame's closing flag may open the next one.
    after_flag: bool,
}

impl Deframer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn next_frame(&mut self) -> Result<Option<Frame>, HdlcError> {
        loop {
            // Find the opening flag (or a frame right after a shared flag).
            let start = if self.after_flag && self.buf.first().is_some_and(|b| b & 0xF0 == 0xA0) {
                None
            } else {
                match self.buf.iter().position(|b| *b == FLAG) {
                    Some(p) => Some(p),
                    None => {
                        self.buf.clear();
                        self.after_flag = false;
                        return Ok(None);
                    }
                }
            };
            if let Some(p) = start {
                self.buf.drain(..p);
                // Runs of flags between frames.
                let flags = self.buf.iter().take_while(|b| **b == FLAG).count();
                if flags == self.buf.len() {
                    self.buf.clear();
                    self.after_flag = flags > 0;
                    return Ok(None);
                }
                self.buf.drain(..flags);
            }
            self.after_flag = false;
            let (Some(&f0), Some(&f1)) = (self.buf.first(), self.buf.get(1)) else {
                self.after_flag = true;
                return Ok(None);
            };
            if f0 & 0xF0 != 0xA0 {
                // Not a frame start: skip to the next flag.
                self.buf.drain(..1);
                continue;
            }
            let len = (usize::from(f0 & 0x07) << 8) | usize::from(f1);
            if self.buf.len() < len + 1 {
                self.after_flag = true;
                return Ok(None);
            }
            if self.buf.get(len) != Some(&FLAG) || len < 7 {
                self.buf.drain(..1);
                return Err(HdlcError::Malformed(
                    "no closing flag where the length says",
                ));
            }
            let body: Vec<u8> = self.buf.drain(..len).collect();
            self.buf.drain(..1);
            self.after_flag = true;
            return Frame::decode(&body).map(Some);
        }
    }
}

/// HDLC parameters negotiated by SNRM/UA (IEC 62056-46 6.4.4.4.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HdlcParams {
    pub max_info_tx: u16,
    pub max_info_rx: u16,
    pub window_tx: u8,
    pub window_rx: u8,
}

impl Default for HdlcParams {
    fn default() -> Self {
        Self {
            max_info_tx: 128,
            max_info_rx: 128,
            window_tx: 1,
            window_rx: 1,
        }
    }
}

impl HdlcParams {
    /// The information field of SNRM/UA: `81 80 len 05 .. 06 .. 07 .. 08 ..`.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        let put_len = |v: &mut Vec<u8>, id: u8, x: u16| {
            if x <= 0xFF {
                v.extend_from_slice(&[id, 1, x as u8]);
            } else {
                v.extend_from_slice(&[id, 2, (x >> 8) as u8, x as u8]);
            }
        };
        put_len(&mut v, 0x05, self.max_info_tx);
        put_len(&mut v, 0x06, self.max_info_rx);
        v.extend_from_slice(&[0x07, 4, 0, 0, 0, self.window_tx]);
        v.extend_from_slice(&[0x08, 4, 0, 0, 0, self.window_rx]);
        let mut out = vec![0x81, 0x80, v.len() as u8];
        out.extend_from_slice(&v);
        out
    }

    /// Reads a negotiation field; absent parameters keep their defaults.
    pub fn decode(info: &[u8]) -> Result<Self, HdlcError> {
        let mut p = HdlcParams::default();
        if info.is_empty() {
            return Ok(p);
        }
        let bad = HdlcError::Malformed("parameter negotiation field");
        let [0x81, 0x80, len, rest @ ..] = info else {
            return Err(bad);
        };
        let mut rest = rest
            .get(..usize::from(*len))
            .ok_or(HdlcError::Malformed("parameter field length"))?;
        while let [id, n, tail @ ..] = rest {
            let n = usize::from(*n);
            if n == 0 || n > 4 || tail.len() < n {
                return Err(HdlcError::Malformed("parameter value length"));
            }
            let (value, tail) = tail.split_at(n);
            let v = value.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b));
            match id {
                0x05 => p.max_info_tx = v.min(u32::from(u16::MAX)) as u16,
                0x06 => p.max_info_rx = v.min(u32::from(u16::MAX)) as u16,
                0x07 => p.window_tx = v.clamp(1, 7) as u8,
                0x08 => p.window_rx = v.clamp(1, 7) as u8,
                _ => {}
            }
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(HdlcError::Malformed("parameter field trailing byte"));
        }
        // Lengths below 32 cannot carry the LLC header and an APDU's start.
        p.max_info_tx = p.max_info_tx.max(32);
        p.max_info_rx = p.max_info_rx.max(32);
        Ok(p)
    }
}
