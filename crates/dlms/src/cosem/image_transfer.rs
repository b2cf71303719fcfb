//! Image transfer (class 18): firmware upgrade. The client initiates a transfer with the
//! image's identifier and size, sends it in numbered blocks of `image_block_size` bytes,
//! asks the meter to verify it, then to activate it.

use super::value::{
    array_of, array_to, bit_string, boolean, double_long_unsigned, enumerated, octets, structure,
};
use super::{cosem_value, CosemError};
use crate::axdr::{BitString, Data};

pub const CLASS_ID: u16 = 18;
pub const VERSION: u8 = 0;

pub const LOGICAL_NAME: i8 = 1;
pub const IMAGE_BLOCK_SIZE: i8 = 2;
pub const IMAGE_TRANSFERRED_BLOCKS_STATUS: i8 = 3;
pub const IMAGE_FIRST_NOT_TRANSFERRED_BLOCK_NUMBER: i8 = 4;
pub const IMAGE_TRANSFER_ENABLED: i8 = 5;
pub const IMAGE_TRANSFER_STATUS: i8 = 6;
pub const IMAGE_TO_ACTIVATE_INFO: i8 = 7;

pub const IMAGE_TRANSFER_INITIATE: i8 = 1;
pub const IMAGE_BLOCK_TRANSFER: i8 = 2;
pub const IMAGE_VERIFY: i8 = 3;
pub const IMAGE_ACTIVATE: i8 = 4;

pub(crate) const ATTRIBUTES: &[&str] = &[
    "logical_name",
    "image_block_size",
    "image_transferred_blocks_status",
    "image_first_not_transferred_block_number",
    "image_transfer_enabled",
    "image_transfer_status",
    "image_to_activate_info",
];
pub(crate) const METHODS: &[&str] = &[
    "image_transfer_initiate",
    "image_block_transfer",
    "image_verify",
    "image_activate",
];

/// `image_transfer_status` (enum 0..=7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageTransferStatus {
    NotInitiated,
    TransferInitiated,
    VerificationInitiated,
    VerificationSuccessful,
    VerificationFailed,
    ActivationInitiated,
    ActivationSuccessful,
    ActivationFailed,
}

impl ImageTransferStatus {
    const ALL: [Self; 8] = [
        Self::NotInitiated,
        Self::TransferInitiated,
        Self::VerificationInitiated,
        Self::VerificationSuccessful,
        Self::VerificationFailed,
        Self::ActivationInitiated,
        Self::ActivationSuccessful,
        Self::ActivationFailed,
    ];

    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        Self::ALL
            .get(usize::from(enumerated(d)?))
            .copied()
            .ok_or(CosemError::Invalid("image_transfer_status not in 0..=7"))
    }

    pub fn to_data(&self) -> Data {
        Data::Enum(*self as u8)
    }
}

/// One element of `image_to_activate_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageToActivateInfo {
    pub image_to_activate_size: u32,
    pub image_to_activate_identification: Vec<u8>,
    pub image_to_activate_signature: Vec<u8>,
}

impl ImageToActivateInfo {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [size, id, sig] = structure(d)?;
        Ok(Self {
            image_to_activate_size: double_long_unsigned(size)?,
            image_to_activate_identification: octets(id)?,
            image_to_activate_signature: octets(sig)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::DoubleLongUnsigned(self.image_to_activate_size),
            Data::OctetString(self.image_to_activate_identification.clone()),
            Data::OctetString(self.image_to_activate_signature.clone()),
        ])
    }
}

/// The parameter of `image_transfer_initiate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTransferInitiate {
    pub image_identifier: Vec<u8>,
    pub image_size: u32,
}

impl ImageTransferInitiate {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [id, size] = structure(d)?;
        Ok(Self {
            image_identifier: octets(id)?,
            image_size: double_long_unsigned(size)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::OctetString(self.image_identifier.clone()),
            Data::DoubleLongUnsigned(self.image_size),
        ])
    }
}

/// The parameter of `image_block_transfer`. Blocks count from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBlockTransfer {
    pub image_block_number: u32,
    pub image_block_value: Vec<u8>,
}

impl ImageBlockTransfer {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [n, v] = structure(d)?;
        Ok(Self {
            image_block_number: double_long_unsigned(n)?,
            image_block_value: octets(v)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::DoubleLongUnsigned(self.image_block_number),
            Data::OctetString(self.image_block_value.clone()),
        ])
    }
}

cosem_value!(
    ImageTransferStatus,
    ImageToActivateInfo,
    ImageTransferInitiate,
    ImageBlockTransfer
);

pub fn image_transfer_initiate_params(identifier: &[u8], size: u32) -> Data {
    ImageTransferInitiate {
        image_identifier: identifier.to_vec(),
        image_size: size,
    }
    .to_data()
}

pub fn image_block_transfer_params(block_number: u32, value: &[u8]) -> Data {
    ImageBlockTransfer {
        image_block_number: block_number,
        image_block_value: value.to_vec(),
    }
    .to_data()
}

/// The parameter of `image_verify` (`integer (0)`).
pub fn image_verify_params() -> Data {
    Data::Integer(0)
}

/// The parameter of `image_activate` (`integer (0)`).
pub fn image_activate_params() -> Data {
    Data::Integer(0)
}

/// Number of blocks an image of `image_size` bytes takes; `None` for a block size of 0.
pub fn block_count(image_size: u32, image_block_size: u32) -> Option<u32> {
    (image_block_size != 0).then(|| image_size.div_ceil(image_block_size))
}

pub fn image_to_activate_info_from_data(d: &Data) -> Result<Vec<ImageToActivateInfo>, CosemError> {
    array_of(d, ImageToActivateInfo::from_data)
}

pub fn image_to_activate_info_to_data(info: &[ImageToActivateInfo]) -> Data {
    array_to(info, ImageToActivateInfo::to_data)
}

/// `image_transferred_blocks_status`: bit n set = block n received.
pub fn transferred_blocks_from_data(d: &Data) -> Result<BitString, CosemError> {
    bit_string(d)
}

/// The blocks not yet received among the first `count`, per the transferred-blocks status.
pub fn missing_blocks(status: &BitString, count: u32) -> Vec<u32> {
    (0..count)
        .filter(|n| !usize::try_from(*n).is_ok_and(|i| status.get(i)))
        .collect()
}

/// `image_transfer_enabled`.
pub fn image_transfer_enabled_from_data(d: &Data) -> Result<bool, CosemError> {
    boolean(d)
}

/// `image_block_size`, `image_first_not_transferred_block_number`.
pub fn u32_from_data(d: &Data) -> Result<u32, CosemError> {
    double_long_unsigned(d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::codec::Codec;

    #[test]
    fn method_params_encode_per_the_blue_book() {
        assert_eq!(
            image_transfer_initiate_params(b"FW1", 1000).to_bytes(),
            hex::decode("0202090346573106000003E8").unwrap()
        );
        assert_eq!(
            image_block_transfer_params(2, &[0xAA, 0xBB]).to_bytes(),
            hex::decode("020206000000020902AABB").unwrap()
        );
        assert_eq!(image_verify_params().to_bytes(), vec![0x0F, 0x00]);
    }

    #[test]
    fn status_and_blocks() {
        for (i, s) in ImageTransferStatus::ALL.iter().enumerate() {
            assert_eq!(s.to_data(), Data::Enum(i as u8));
            assert_eq!(ImageTransferStatus::from_data(&s.to_data()), Ok(*s));
        }
        assert!(ImageTransferStatus::from_data(&Data::Enum(8)).is_err());
        assert_eq!(block_count(1000, 200), Some(5));
        assert_eq!(block_count(1001, 200), Some(6));
        assert_eq!(block_count(1, 0), None);
        let status = BitString::new(6, vec![0b1011_0111]);
        assert_eq!(missing_blocks(&status, 6), vec![1, 4]);
        // Blocks past the bit-string's length count as missing, whatever the padding holds.
        assert_eq!(missing_blocks(&status, 8), vec![1, 4, 6, 7]);
    }
}
