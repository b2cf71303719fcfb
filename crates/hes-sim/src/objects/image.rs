//! Image transfer (class 18, `0.0.44.0.0.255`): firmware upgrade by block transfer, verification
//! and activation, on a real image buffer.
//!
//! # The simulated meters' image format
//!
//! A "signed" image of the simulator is laid out as:
//!
//! | bytes              | content                                                       |
//! |--------------------|---------------------------------------------------------------|
//! | 8                  | magic `b"HESIMG1\0"`                                          |
//! | 1                  | `n`, the length of the version string in bytes (1..=255)      |
//! | `n`                | the version string, UTF-8 (what [`ImageTransfer::running_version`] becomes) |
//! | any                | payload (opaque)                                              |
//! | 32                 | SHA-256 over every byte before it                             |
//!
//! [`build_image`] writes one and [`image_version`] checks one. The hash stands in for a
//! signature: it catches corruption in transfer, not forgery.
//!
//! # Behaviour
//!
//! * `image_transfer_initiate` sizes a buffer for the image (at most [`MAX_IMAGE_SIZE`] bytes).
//!   Initiating again with the same identifier and size keeps the blocks already received, so a
//!   head-end resumes after a dropped connection by re-initiating and reading
//!   `image_first_not_transferred_block_number` (and the blocks status). Another identifier or
//!   size starts over.
//! * `image_block_transfer` takes blocks in any order; each must be `image_block_size` bytes
//!   long, except the last, which must be exactly the rest of the image. Sending a block again
//!   overwrites it, and any block puts the status back to "transfer initiated", so a new
//!   verification is needed.
//! * `image_verify` passes when every block arrived and the image is well formed with a
//!   matching hash; otherwise the status becomes "verification failed" and the method fails.
//! * `image_activate` needs a successful verification: the running version becomes the
//!   image's version and the image buffer is released.
//!
//! Results: a missing or malformed parameter is `type-unmatched`; a method in the wrong state
//! (activation before verification, a block with no transfer initiated, transfers disabled) is
//! `read-write-denied`; an invalid value (too large, block number out of range, wrong block
//! length, failed verification) is `other-reason`.

use dlms::axdr::{BitString, Data};
use dlms::cosem::image_transfer::{
    block_count, ImageBlockTransfer, ImageToActivateInfo, ImageTransferInitiate,
    ImageTransferStatus, IMAGE_ACTIVATE, IMAGE_BLOCK_SIZE, IMAGE_BLOCK_TRANSFER,
    IMAGE_FIRST_NOT_TRANSFERRED_BLOCK_NUMBER, IMAGE_TO_ACTIVATE_INFO,
    IMAGE_TRANSFERRED_BLOCKS_STATUS, IMAGE_TRANSFER_ENABLED, IMAGE_TRANSFER_INITIATE,
    IMAGE_TRANSFER_STATUS, IMAGE_VERIFY,
};
use dlms::xdlms::{ActionResult, DataAccessResult};
use sha2::{Digest, Sha256};

/// The magic the simulated meters' images start with.
pub const IMAGE_MAGIC: &[u8; 8] = b"HESIMG1\0";
/// Length of the SHA-256 trailer of an image.
pub const IMAGE_HASH_LEN: usize = 32;
/// The largest image a meter accepts (4 MiB).
pub const MAX_IMAGE_SIZE: u32 = 4 * 1024 * 1024;
/// The longest image identifier a meter accepts, in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 64;

/// Builds an image in the simulator's format (see the module documentation). A version longer
/// than 255 bytes is cut at the last character boundary within 255 bytes; an empty version
/// gives an image that [`image_version`] (and so verification) rejects.
pub fn build_image(version: &str, payload: &[u8]) -> Vec<u8> {
    let mut end = version.len().min(255);
    while !version.is_char_boundary(end) {
        end -= 1;
    }
    let version = version.get(..end).unwrap_or_default().as_bytes();
    let mut image =
        Vec::with_capacity(IMAGE_MAGIC.len() + 1 + version.len() + payload.len() + IMAGE_HASH_LEN);
    image.extend_from_slice(IMAGE_MAGIC);
    image.push(version.len() as u8);
    image.extend_from_slice(version);
    image.extend_from_slice(payload);
    let hash = Sha256::digest(&image);
    image.extend_from_slice(&hash);
    image
}

/// The version an image carries, if it is a well-formed image (magic, a non-empty UTF-8
/// version) whose SHA-256 trailer matches its content.
pub fn image_version(image: &[u8]) -> Option<String> {
    let body_len = image.len().checked_sub(IMAGE_HASH_LEN)?;
    let (body, hash) = image.split_at_checked(body_len)?;
    let rest = body.strip_prefix(IMAGE_MAGIC.as_slice())?;
    let (&len, rest) = rest.split_first()?;
    let version = rest.get(..usize::from(len))?;
    if version.is_empty() || Sha256::digest(body).as_slice() != hash {
        return None;
    }
    String::from_utf8(version.to_vec()).ok()
}

/// A transfer in progress: the image buffer and which blocks arrived.
struct Session {
    identifier: Vec<u8>,
    size: u32,
    blocks: u32,
    /// One bit per block, most significant bit first (the `image_transferred_blocks_status`).
    received: Vec<u8>,
    image: Vec<u8>,
    /// The image's version, once verification succeeded.
    verified_version: Option<String>,
}

impl Session {
    fn has(&self, block: u32) -> bool {
        let i = block as usize;
        self.received
            .get(i / 8)
            .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
    }

    fn first_missing(&self) -> u32 {
        (0..self.blocks)
            .find(|n| !self.has(*n))
            .unwrap_or(self.blocks)
    }
}

/// The state of one image transfer object. When no transfer is in progress it holds no image
/// buffer.
pub struct ImageTransfer {
    running_version: String,
    block_size: u32,
    enabled: bool,
    status: ImageTransferStatus,
    session: Option<Session>,
}

impl std::fmt::Debug for ImageTransfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ImageTransfer");
        d.field("running_version", &self.running_version)
            .field("block_size", &self.block_size)
            .field("enabled", &self.enabled)
            .field("status", &self.status);
        if let Some(s) = &self.session {
            d.field("image_size", &s.size)
                .field("first_missing", &s.first_missing());
        }
        d.finish()
    }
}

fn no_params(params: Option<&Data>) -> Result<(), ActionResult> {
    match params {
        None | Some(Data::Integer(_)) => Ok(()),
        Some(_) => Err(ActionResult::TypeUnmatched),
    }
}

impl ImageTransfer {
    /// A meter running `running_version` that takes blocks of `block_size` bytes (0 is taken
    /// as 1).
    pub fn new(running_version: &str, block_size: u32) -> Self {
        Self {
            running_version: running_version.to_owned(),
            block_size: block_size.max(1),
            enabled: true,
            status: ImageTransferStatus::NotInitiated,
            session: None,
        }
    }

    /// The version of the firmware the meter runs (changed by a successful activation).
    pub fn running_version(&self) -> &str {
        &self.running_version
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    pub fn status(&self) -> ImageTransferStatus {
        self.status
    }

    /// Whether an image buffer is held (a transfer is in progress).
    pub fn holds_image(&self) -> bool {
        self.session.is_some()
    }

    pub fn get(&self, attribute: i8, _now: i64) -> Result<Data, DataAccessResult> {
        match attribute {
            IMAGE_BLOCK_SIZE => Ok(Data::DoubleLongUnsigned(self.block_size)),
            IMAGE_TRANSFERRED_BLOCKS_STATUS => Ok(Data::BitString(match &self.session {
                Some(s) => BitString::new(s.blocks as usize, s.received.clone()),
                None => BitString::new(0, Vec::new()),
            })),
            IMAGE_FIRST_NOT_TRANSFERRED_BLOCK_NUMBER => Ok(Data::DoubleLongUnsigned(
                self.session.as_ref().map_or(0, Session::first_missing),
            )),
            IMAGE_TRANSFER_ENABLED => Ok(Data::Boolean(self.enabled)),
            IMAGE_TRANSFER_STATUS => Ok(self.status.to_data()),
            IMAGE_TO_ACTIVATE_INFO => {
                let info = self.session.as_ref().and_then(|s| {
                    s.verified_version.as_ref()?;
                    let sig = s.image.len().checked_sub(IMAGE_HASH_LEN)?;
                    Some(ImageToActivateInfo {
                        image_to_activate_size: s.size,
                        image_to_activate_identification: s.identifier.clone(),
                        image_to_activate_signature: s.image.get(sig..)?.to_vec(),
                    })
                });
                Ok(Data::Array(info.iter().map(|i| i.to_data()).collect()))
            }
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    /// Only `image_transfer_enabled` (boolean) is writable.
    pub fn set(&mut self, attribute: i8, value: Data, _now: i64) -> DataAccessResult {
        match attribute {
            IMAGE_TRANSFER_ENABLED => match value {
                Data::Boolean(b) => {
                    self.enabled = b;
                    DataAccessResult::Success
                }
                _ => DataAccessResult::TypeUnmatched,
            },
            1..=7 => DataAccessResult::ReadWriteDenied,
            _ => DataAccessResult::ObjectUndefined,
        }
    }

    pub fn action(
        &mut self,
        method: i8,
        params: Option<Data>,
        _now: i64,
    ) -> Result<Option<Data>, ActionResult> {
        match method {
            IMAGE_TRANSFER_INITIATE => self.initiate(params.as_ref()),
            IMAGE_BLOCK_TRANSFER => self.block(params.as_ref()),
            IMAGE_VERIFY => {
                no_params(params.as_ref())?;
                self.verify()
            }
            IMAGE_ACTIVATE => {
                no_params(params.as_ref())?;
                self.activate()
            }
            _ => Err(ActionResult::ObjectUndefined),
        }
        .map(|()| None)
    }

    fn initiate(&mut self, params: Option<&Data>) -> Result<(), ActionResult> {
        let p = params
            .and_then(|d| ImageTransferInitiate::from_data(d).ok())
            .ok_or(ActionResult::TypeUnmatched)?;
        if !self.enabled {
            return Err(ActionResult::ReadWriteDenied);
        }
        if p.image_size == 0
            || p.image_size > MAX_IMAGE_SIZE
            || p.image_identifier.len() > MAX_IDENTIFIER_LEN
        {
            return Err(ActionResult::OtherReason);
        }
        let resume = self
            .session
            .as_ref()
            .is_some_and(|s| s.identifier == p.image_identifier && s.size == p.image_size);
        if let (true, Some(s)) = (resume, self.session.as_mut()) {
            s.verified_version = None;
        } else {
            let blocks = block_count(p.image_size, self.block_size).unwrap_or(0);
            // Drop the old buffer before allocating the new one: one image at a time.
            self.session = None;
            self.session = Some(Session {
                identifier: p.image_identifier,
                size: p.image_size,
                blocks,
                received: vec![0; (blocks as usize).div_ceil(8)],
                image: vec![0; p.image_size as usize],
                verified_version: None,
            });
        }
        self.status = ImageTransferStatus::TransferInitiated;
        Ok(())
    }

    fn block(&mut self, params: Option<&Data>) -> Result<(), ActionResult> {
        let p = params
            .and_then(|d| ImageBlockTransfer::from_data(d).ok())
            .ok_or(ActionResult::TypeUnmatched)?;
        if !self.enabled {
            return Err(ActionResult::ReadWriteDenied);
        }
        let s = self.session.as_mut().ok_or(ActionResult::ReadWriteDenied)?;
        let n = p.image_block_number;
        if n >= s.blocks {
            return Err(ActionResult::OtherReason);
        }
        let start = u64::from(n) * u64::from(self.block_size);
        let end = (start + u64::from(self.block_size)).min(u64::from(s.size));
        if p.image_block_value.len() as u64 != end - start {
            return Err(ActionResult::OtherReason);
        }
        s.image
            .get_mut(start as usize..end as usize)
            .ok_or(ActionResult::OtherReason)?
            .copy_from_slice(&p.image_block_value);
        let i = n as usize;
        if let Some(b) = s.received.get_mut(i / 8) {
            *b |= 0x80 >> (i % 8);
        }
        s.verified_version = None;
        self.status = ImageTransferStatus::TransferInitiated;
        Ok(())
    }

    fn verify(&mut self) -> Result<(), ActionResult> {
        let s = self.session.as_mut().ok_or(ActionResult::ReadWriteDenied)?;
        let version = if s.first_missing() == s.blocks {
            image_version(&s.image)
        } else {
            None
        };
        match version {
            Some(v) => {
                s.verified_version = Some(v);
                self.status = ImageTransferStatus::VerificationSuccessful;
                Ok(())
            }
            None => {
                s.verified_version = None;
                self.status = ImageTransferStatus::VerificationFailed;
                Err(ActionResult::OtherReason)
            }
        }
    }

    /// Needs a successful verification since the last change to the image (a block or a
    /// re-initiate clears it).
    fn activate(&mut self) -> Result<(), ActionResult> {
        let version = self
            .session
            .as_ref()
            .and_then(|s| s.verified_version.clone())
            .ok_or(ActionResult::ReadWriteDenied)?;
        self.running_version = version;
        self.session = None;
        self.status = ImageTransferStatus::ActivationSuccessful;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::expect_used,
        clippy::panic
    )]
    use super::*;
    use dlms::cosem::image_transfer::{
        image_block_transfer_params, image_transfer_initiate_params, missing_blocks,
    };

    const BS: u32 = 200;

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn blocks(image: &[u8]) -> Vec<(u32, Vec<u8>)> {
        image
            .chunks(BS as usize)
            .enumerate()
            .map(|(i, c)| (i as u32, c.to_vec()))
            .collect()
    }

    fn send(it: &mut ImageTransfer, n: u32, v: &[u8]) -> Result<Option<Data>, ActionResult> {
        it.action(2, Some(image_block_transfer_params(n, v)), 0)
    }

    fn initiate(it: &mut ImageTransfer, id: &[u8], size: usize) -> Result<(), ActionResult> {
        it.action(1, Some(image_transfer_initiate_params(id, size as u32)), 0)
            .map(|r| assert_eq!(r, None))
    }

    fn status(it: &ImageTransfer) -> Data {
        it.get(6, 0).unwrap()
    }

    fn first_missing(it: &ImageTransfer) -> u32 {
        match it.get(4, 0).unwrap() {
            Data::DoubleLongUnsigned(n) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn image_format_round_trips_and_detects_corruption() {
        let img = build_image("2.0.1", b"payload");
        assert_eq!(&img[..8], b"HESIMG1\0");
        assert_eq!(img[8], 5);
        assert_eq!(image_version(&img).as_deref(), Some("2.0.1"));
        for i in [0, 8, 10, img.len() - 40, img.len() - 1] {
            let mut bad = img.clone();
            bad[i] ^= 0x01;
            assert_eq!(image_version(&bad), None, "flip at {i}");
        }
        assert_eq!(image_version(&img[..img.len() - 1]), None);
        assert_eq!(image_version(&[]), None);
        assert_eq!(image_version(&build_image("", b"x")), None);
        // A version length pointing past the end is rejected, not a panic.
        let mut body = IMAGE_MAGIC.to_vec();
        body.push(200);
        let hash = Sha256::digest(&body);
        body.extend_from_slice(&hash);
        assert_eq!(image_version(&body), None);
        let long = "é".repeat(200);
        let v = image_version(&build_image(&long, b"")).unwrap();
        assert_eq!(v.len(), 254);
    }

    #[test]
    fn full_transfer_out_of_order_verify_activate() {
        let image = build_image("2.0.0", &payload(10_000));
        let mut it = ImageTransfer::new("1.0.0", BS);
        assert!(!it.holds_image());
        assert_eq!(status(&it), Data::Enum(0));
        assert_eq!(it.get(5, 0), Ok(Data::Boolean(true)));
        assert_eq!(it.get(2, 0), Ok(Data::DoubleLongUnsigned(BS)));
        initiate(&mut it, b"FW-2.0.0", image.len()).unwrap();
        assert!(it.holds_image());
        assert_eq!(status(&it), Data::Enum(1));
        let mut bl = blocks(&image);
        assert_eq!(bl.len(), image.len().div_ceil(200));
        assert_ne!(image.len() % 200, 0, "the test wants a short last block");
        // Out of order: odd blocks descending, then even ones ascending.
        bl.sort_by_key(|(n, _)| (n % 2 == 0, if n % 2 == 1 { u32::MAX - n } else { *n }));
        assert_ne!(bl[0].0, 0);
        for (n, v) in &bl {
            send(&mut it, *n, v).unwrap();
        }
        assert_eq!(first_missing(&it), bl.len() as u32);
        let Data::BitString(bits) = it.get(3, 0).unwrap() else {
            panic!()
        };
        assert_eq!(bits.bits, bl.len());
        assert!(missing_blocks(&bits, bl.len() as u32).is_empty());
        assert_eq!(it.get(7, 0), Ok(Data::Array(vec![])));
        assert_eq!(it.action(3, Some(Data::Integer(0)), 0), Ok(None));
        assert_eq!(status(&it), Data::Enum(3));
        assert_eq!(
            it.get(7, 0),
            Ok(Data::Array(vec![Data::Structure(vec![
                Data::DoubleLongUnsigned(image.len() as u32),
                Data::OctetString(b"FW-2.0.0".to_vec()),
                Data::OctetString(image[image.len() - 32..].to_vec()),
            ])]))
        );
        assert_eq!(it.running_version(), "1.0.0");
        assert_eq!(it.action(4, Some(Data::Integer(0)), 0), Ok(None));
        assert_eq!(status(&it), Data::Enum(6));
        assert_eq!(it.running_version(), "2.0.0");
        assert!(!it.holds_image(), "the buffer is dropped after activation");
        // Nothing left to activate again.
        assert_eq!(it.action(4, None, 0), Err(ActionResult::ReadWriteDenied));
    }

    #[test]
    fn resume_after_reinitiate_with_same_identifier_and_size() {
        let image = build_image("3.1", &payload(9_999));
        let bl = blocks(&image);
        let mut it = ImageTransfer::new("3.0", BS);
        initiate(&mut it, b"FW-3.1", image.len()).unwrap();
        // The first half, but with block 3 lost.
        let half = bl.len() / 2;
        for (n, v) in bl.iter().take(half).filter(|(n, _)| *n != 3) {
            send(&mut it, *n, v).unwrap();
        }
        assert_eq!(first_missing(&it), 3);
        // The connection drops; the head-end initiates again with the same image.
        initiate(&mut it, b"FW-3.1", image.len()).unwrap();
        assert_eq!(status(&it), Data::Enum(1));
        assert_eq!(first_missing(&it), 3);
        let Data::BitString(bits) = it.get(3, 0).unwrap() else {
            panic!()
        };
        let missing = missing_blocks(&bits, bl.len() as u32);
        let expect: Vec<u32> = std::iter::once(3)
            .chain(half as u32..bl.len() as u32)
            .collect();
        assert_eq!(missing, expect);
        // Verification before the rest arrived fails.
        assert_eq!(it.action(3, None, 0), Err(ActionResult::OtherReason));
        assert_eq!(status(&it), Data::Enum(4));
        for n in missing {
            let (_, v) = &bl[n as usize];
            send(&mut it, n, v).unwrap();
        }
        assert_eq!(status(&it), Data::Enum(1));
        assert_eq!(it.action(3, None, 0), Ok(None));
        assert_eq!(it.action(4, None, 0), Ok(None));
        assert_eq!(it.running_version(), "3.1");
    }

    #[test]
    fn another_identifier_starts_over() {
        let image = build_image("4", &payload(1_000));
        let mut it = ImageTransfer::new("3", BS);
        initiate(&mut it, b"A", image.len()).unwrap();
        send(&mut it, 0, &image[..200]).unwrap();
        assert_eq!(first_missing(&it), 1);
        initiate(&mut it, b"B", image.len()).unwrap();
        assert_eq!(first_missing(&it), 0);
        initiate(&mut it, b"B", image.len() + 1).unwrap();
        let Data::BitString(bits) = it.get(3, 0).unwrap() else {
            panic!()
        };
        assert_eq!(bits.bits, (image.len() + 1).div_ceil(200));
        assert!(bits.bytes.iter().all(|b| *b == 0));
    }

    #[test]
    fn corrupted_image_fails_verification_and_activation() {
        let mut image = build_image("9.9", &payload(5_000));
        image[3_000] ^= 0x40;
        let mut it = ImageTransfer::new("1.0", BS);
        initiate(&mut it, b"BAD", image.len()).unwrap();
        for (n, v) in blocks(&image) {
            send(&mut it, n, &v).unwrap();
        }
        assert_eq!(it.action(3, None, 0), Err(ActionResult::OtherReason));
        assert_eq!(status(&it), Data::Enum(4));
        assert_eq!(it.get(7, 0), Ok(Data::Array(vec![])));
        assert_eq!(it.action(4, None, 0), Err(ActionResult::ReadWriteDenied));
        assert_eq!(it.running_version(), "1.0");
        // Resending the damaged block fixes it.
        let good = build_image("9.9", &payload(5_000));
        send(&mut it, 15, &good[3_000..3_200]).unwrap();
        assert_eq!(it.action(3, None, 0), Ok(None));
        assert_eq!(it.action(4, None, 0), Ok(None));
        assert_eq!(it.running_version(), "9.9");
    }

    #[test]
    fn bad_requests_are_rejected_without_changes() {
        let mut it = ImageTransfer::new("1", BS);
        // Nothing initiated.
        assert_eq!(
            send(&mut it, 0, &[0; 200]),
            Err(ActionResult::ReadWriteDenied)
        );
        assert_eq!(it.action(3, None, 0), Err(ActionResult::ReadWriteDenied));
        assert_eq!(it.action(4, None, 0), Err(ActionResult::ReadWriteDenied));
        // Oversized and empty images.
        assert_eq!(
            initiate(&mut it, b"X", MAX_IMAGE_SIZE as usize + 1),
            Err(ActionResult::OtherReason)
        );
        assert_eq!(
            it.action(1, Some(image_transfer_initiate_params(b"X", u32::MAX)), 0),
            Err(ActionResult::OtherReason)
        );
        assert_eq!(initiate(&mut it, b"X", 0), Err(ActionResult::OtherReason));
        assert_eq!(
            initiate(&mut it, &[b'i'; 65], 100),
            Err(ActionResult::OtherReason)
        );
        assert!(!it.holds_image());
        assert_eq!(status(&it), Data::Enum(0));
        initiate(&mut it, b"X", MAX_IMAGE_SIZE as usize).unwrap();
        // 4 MiB in blocks of 200: 20972 blocks, the last one 104 bytes.
        assert_eq!(it.get(4, 0), Ok(Data::DoubleLongUnsigned(0)));
        initiate(&mut it, b"X", 1_050).unwrap();
        // Out of range block numbers.
        assert_eq!(send(&mut it, 6, &[0; 50]), Err(ActionResult::OtherReason));
        assert_eq!(
            send(&mut it, u32::MAX, &[0; 200]),
            Err(ActionResult::OtherReason)
        );
        // Wrong lengths: short, long, and a full-size last block.
        assert_eq!(send(&mut it, 0, &[0; 199]), Err(ActionResult::OtherReason));
        assert_eq!(send(&mut it, 0, &[0; 201]), Err(ActionResult::OtherReason));
        assert_eq!(send(&mut it, 5, &[0; 200]), Err(ActionResult::OtherReason));
        assert_eq!(send(&mut it, 5, &[0; 49]), Err(ActionResult::OtherReason));
        assert_eq!(first_missing(&it), 0);
        assert_eq!(send(&mut it, 5, &[0; 50]), Ok(None));
        // Malformed parameters.
        for p in [
            None,
            Some(Data::Null),
            Some(Data::Structure(vec![])),
            Some(Data::Structure(vec![
                Data::LongUnsigned(0),
                Data::OctetString(vec![0; 200]),
            ])),
            Some(Data::Structure(vec![
                Data::DoubleLongUnsigned(0),
                Data::VisibleString(vec![0; 200]),
            ])),
        ] {
            assert_eq!(it.action(2, p.clone(), 0), Err(ActionResult::TypeUnmatched));
            assert_eq!(it.action(1, p, 0), Err(ActionResult::TypeUnmatched));
        }
        assert_eq!(
            it.action(3, Some(Data::Null), 0),
            Err(ActionResult::TypeUnmatched)
        );
        assert_eq!(it.action(5, None, 0), Err(ActionResult::ObjectUndefined));
        assert_eq!(it.action(0, None, 0), Err(ActionResult::ObjectUndefined));
        assert_eq!(first_missing(&it), 0);
    }

    #[test]
    fn attributes_access() {
        let mut it = ImageTransfer::new("1", BS);
        assert_eq!(it.get(1, 0), Err(DataAccessResult::ObjectUndefined));
        assert_eq!(it.get(8, 0), Err(DataAccessResult::ObjectUndefined));
        assert_eq!(
            it.get(3, 0),
            Ok(Data::BitString(BitString::new(0, Vec::new())))
        );
        for a in [2, 3, 4, 6, 7] {
            assert_eq!(
                it.set(a, Data::DoubleLongUnsigned(1), 0),
                DataAccessResult::ReadWriteDenied
            );
        }
        assert_eq!(it.set(9, Data::Null, 0), DataAccessResult::ObjectUndefined);
        assert_eq!(
            it.set(5, Data::Unsigned(0), 0),
            DataAccessResult::TypeUnmatched
        );
        assert_eq!(
            it.set(5, Data::Boolean(false), 0),
            DataAccessResult::Success
        );
        assert_eq!(it.get(5, 0), Ok(Data::Boolean(false)));
        assert_eq!(
            initiate(&mut it, b"X", 10),
            Err(ActionResult::ReadWriteDenied)
        );
        assert_eq!(it.set(5, Data::Boolean(true), 0), DataAccessResult::Success);
        assert_eq!(initiate(&mut it, b"X", 10), Ok(()));
        assert_eq!(ImageTransfer::new("1", 0).block_size(), 1);
    }
}
