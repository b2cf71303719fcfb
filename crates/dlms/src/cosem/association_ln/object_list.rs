//! `object_list` of the Association LN class: every object the association can see, with the
//! access rights the association grants on each attribute and method.
//!
//! Access modes follow versions 1 and 2 of the class (enums 0..=6 for attributes, 0..=2 for
//! methods). Version 0 sends method access as a boolean, which is read as `NoAccess`/`Access`
//! (and written back as the enum, so that round trip is lossy by design). Version 3's
//! bit-encoded modes above 6 are kept as `Other(n)`, read with bit 0 = read, bit 1 = write.

use crate::axdr::Data;
use crate::cosem::value::{
    array_of, array_to, enumerated, integer, long_unsigned, obis, obis_to, structure, unsigned,
};
use crate::cosem::{cosem_value, CosemError};
use crate::obis::ObisCode;

/// `attribute_access_item.access_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeAccessMode {
    NoAccess,
    Read,
    Write,
    ReadWrite,
    AuthenticatedRead,
    AuthenticatedWrite,
    AuthenticatedReadWrite,
    Other(u8),
}

impl AttributeAccessMode {
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::NoAccess,
            1 => Self::Read,
            2 => Self::Write,
            3 => Self::ReadWrite,
            4 => Self::AuthenticatedRead,
            5 => Self::AuthenticatedWrite,
            6 => Self::AuthenticatedReadWrite,
            n => Self::Other(n),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            Self::NoAccess => 0,
            Self::Read => 1,
            Self::Write => 2,
            Self::ReadWrite => 3,
            Self::AuthenticatedRead => 4,
            Self::AuthenticatedWrite => 5,
            Self::AuthenticatedReadWrite => 6,
            Self::Other(n) => n,
        }
    }

    pub fn can_read(self) -> bool {
        match self {
            Self::Read
            | Self::ReadWrite
            | Self::AuthenticatedRead
            | Self::AuthenticatedReadWrite => true,
            Self::Other(n) => n & 0x01 != 0,
            _ => false,
        }
    }

    pub fn can_write(self) -> bool {
        match self {
            Self::Write
            | Self::ReadWrite
            | Self::AuthenticatedWrite
            | Self::AuthenticatedReadWrite => true,
            Self::Other(n) => n & 0x02 != 0,
            _ => false,
        }
    }
}

/// `method_access_item.access_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodAccessMode {
    NoAccess,
    Access,
    AuthenticatedAccess,
    Other(u8),
}

impl MethodAccessMode {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        match d {
            Data::Boolean(b) => Ok(if *b { Self::Access } else { Self::NoAccess }),
            Data::Enum(0) => Ok(Self::NoAccess),
            Data::Enum(1) => Ok(Self::Access),
            Data::Enum(2) => Ok(Self::AuthenticatedAccess),
            Data::Enum(n) => Ok(Self::Other(*n)),
            _ => Err(CosemError::WrongType {
                expected: "enum or boolean (method access mode)",
            }),
        }
    }

    pub fn to_data(&self) -> Data {
        Data::Enum(match self {
            Self::NoAccess => 0,
            Self::Access => 1,
            Self::AuthenticatedAccess => 2,
            Self::Other(n) => *n,
        })
    }

    pub fn can_execute(self) -> bool {
        match self {
            Self::Access | Self::AuthenticatedAccess => true,
            Self::Other(n) => n & 0x01 != 0,
            Self::NoAccess => false,
        }
    }
}

/// `attribute_access_item`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttributeAccess {
    pub attribute: i8,
    pub mode: AttributeAccessMode,
    /// The selective-access selectors supported; `None` when the meter sends null-data.
    pub selectors: Option<Vec<i8>>,
}

impl AttributeAccess {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [a, m, s] = structure(d)?;
        Ok(Self {
            attribute: integer(a)?,
            mode: AttributeAccessMode::from_u8(enumerated(m)?),
            selectors: match s {
                Data::Null => None,
                other => Some(array_of(other, integer)?),
            },
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::Integer(self.attribute),
            Data::Enum(self.mode.to_u8()),
            match &self.selectors {
                None => Data::Null,
                Some(s) => array_to(s, |v| Data::Integer(*v)),
            },
        ])
    }
}

/// `method_access_item`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodAccess {
    pub method: i8,
    pub mode: MethodAccessMode,
}

impl MethodAccess {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [m, mode] = structure(d)?;
        Ok(Self {
            method: integer(m)?,
            mode: MethodAccessMode::from_data(mode)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![Data::Integer(self.method), self.mode.to_data()])
    }
}

/// `access_rights`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AccessRights {
    pub attributes: Vec<AttributeAccess>,
    pub methods: Vec<MethodAccess>,
}

impl AccessRights {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [a, m] = structure(d)?;
        Ok(Self {
            attributes: array_of(a, AttributeAccess::from_data)?,
            methods: array_of(m, MethodAccess::from_data)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            array_to(&self.attributes, AttributeAccess::to_data),
            array_to(&self.methods, MethodAccess::to_data),
        ])
    }

    /// The access mode of an attribute; attributes the list omits have no access.
    pub fn attribute(&self, attribute: i8) -> AttributeAccessMode {
        self.attributes
            .iter()
            .find(|a| a.attribute == attribute)
            .map_or(AttributeAccessMode::NoAccess, |a| a.mode)
    }

    pub fn method(&self, method: i8) -> MethodAccessMode {
        self.methods
            .iter()
            .find(|m| m.method == method)
            .map_or(MethodAccessMode::NoAccess, |m| m.mode)
    }
}

/// `object_list_element`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectListElement {
    pub class_id: u16,
    pub version: u8,
    pub logical_name: ObisCode,
    pub access_rights: AccessRights,
}

impl ObjectListElement {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [c, v, ln, ar] = structure(d)?;
        Ok(Self {
            class_id: long_unsigned(c)?,
            version: unsigned(v)?,
            logical_name: obis(ln)?,
            access_rights: AccessRights::from_data(ar)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.class_id),
            Data::Unsigned(self.version),
            obis_to(&self.logical_name),
            self.access_rights.to_data(),
        ])
    }
}

cosem_value!(
    MethodAccessMode,
    AttributeAccess,
    MethodAccess,
    AccessRights,
    ObjectListElement
);

/// `object_list`: array of `object_list_element`.
pub fn object_list_from_data(d: &Data) -> Result<Vec<ObjectListElement>, CosemError> {
    array_of(d, ObjectListElement::from_data)
}

pub fn object_list_to_data(list: &[ObjectListElement]) -> Data {
    array_to(list, ObjectListElement::to_data)
}
