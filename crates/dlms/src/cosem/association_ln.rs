//! Association LN (class 15): the object list with access rights, and the HLS method.

use crate::axdr::Data;
use crate::obis::ObisCode;

use super::{elements, int, obis, CosemError};

pub const CLASS_ID: u16 = 15;
pub const OBJECT_LIST: i8 = 2;
pub const ASSOCIATED_PARTNERS_ID: i8 = 3;
pub const APPLICATION_CONTEXT_NAME: i8 = 4;
pub const XDLMS_CONTEXT_INFO: i8 = 5;
pub const AUTHENTICATION_MECHANISM_NAME: i8 = 6;
pub const SECRET: i8 = 7;
pub const ASSOCIATION_STATUS: i8 = 8;
pub const SECURITY_SETUP_REFERENCE: i8 = 9;
pub const REPLY_TO_HLS_AUTHENTICATION: i8 = 1;
pub const CHANGE_HLS_SECRET: i8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub fn from_enum(v: u8) -> Self {
        match v {
            0 => Self::NoAccess,
            1 => Self::Read,
            2 => Self::Write,
            3 => Self::ReadWrite,
            4 => Self::AuthenticatedRead,
            5 => Self::AuthenticatedWrite,
            6 => Self::AuthenticatedReadWrite,
            o => Self::Other(o),
        }
    }
    pub fn to_enum(self) -> u8 {
        match self {
            Self::NoAccess => 0,
            Self::Read => 1,
            Self::Write => 2,
            Self::ReadWrite => 3,
            Self::AuthenticatedRead => 4,
            Self::AuthenticatedWrite => 5,
            Self::AuthenticatedReadWrite => 6,
            Self::Other(o) => o,
        }
    }
    pub fn can_read(self) -> bool {
        matches!(
            self,
            Self::Read | Self::ReadWrite | Self::AuthenticatedRead | Self::AuthenticatedReadWrite
        )
    }
    pub fn can_write(self) -> bool {
        matches!(
            self,
            Self::Write | Self::ReadWrite | Self::AuthenticatedWrite | Self::AuthenticatedReadWrite
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodAccessMode {
    NoAccess,
    Access,
    AuthenticatedAccess,
    Other(u8),
}

impl MethodAccessMode {
    pub fn from_enum(v: u8) -> Self {
        match v {
            0 => Self::NoAccess,
            1 => Self::Access,
            2 => Self::AuthenticatedAccess,
            o => Self::Other(o),
        }
    }
    pub fn to_enum(self) -> u8 {
        match self {
            Self::NoAccess => 0,
            Self::Access => 1,
            Self::AuthenticatedAccess => 2,
            Self::Other(o) => o,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeAccess {
    pub attribute: i8,
    pub mode: AttributeAccessMode,
    pub selectors: Option<Vec<i8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodAccess {
    pub method: i8,
    pub mode: MethodAccessMode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRights {
    pub attributes: Vec<AttributeAccess>,
    pub methods: Vec<MethodAccess>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectListElement {
    pub class_id: u16,
    pub version: u8,
    pub logical_name: ObisCode,
    pub access_rights: AccessRights,
}

fn array<'a>(d: &'a Data, what: &'static str) -> Result<&'a [Data], CosemError> {
    match d {
        Data::Array(v) => Ok(v),
        _ => Err(CosemError::WrongType { expected: what }),
    }
}

impl ObjectListElement {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [class_id, version, ln, rights] = elements(d, "object_list_element", 4)? else {
            return Err(CosemError::WrongLength {
                what: "object_list_element",
            });
        };
        let [attrs, methods] = elements(rights, "access_rights", 2)? else {
            return Err(CosemError::WrongLength {
                what: "access_rights",
            });
        };
        let attributes = array(attrs, "attribute_access array")?
            .iter()
            .map(|a| {
                let [id, mode, sel] = elements(a, "attribute_access_item", 3)? else {
                    return Err(CosemError::WrongLength {
                        what: "attribute_access_item",
                    });
                };
                let selectors = match sel {
                    Data::Null => None,
                    Data::Array(v) => Some(
                        v.iter()
                            .map(|s| int(s, "integer selector"))
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => {
                        return Err(CosemError::WrongType {
                            expected: "access_selectors",
                        })
                    }
                };
                Ok(AttributeAccess {
                    attribute: int(id, "integer attribute id")?,
                    mode: AttributeAccessMode::from_enum(int(mode, "enum access mode")?),
                    selectors,
                })
            })
            .collect::<Result<_, _>>()?;
        let methods = array(methods, "method_access array")?
            .iter()
            .map(|m| {
                let [id, mode] = elements(m, "method_access_item", 2)? else {
                    return Err(CosemError::WrongLength {
                        what: "method_access_item",
                    });
                };
                // Version 0 of the class used a boolean here.
                let mode = match mode {
                    Data::Boolean(b) => MethodAccessMode::from_enum(u8::from(*b)),
                    other => MethodAccessMode::from_enum(int(other, "enum method access mode")?),
                };
                Ok(MethodAccess {
                    method: int(id, "integer method id")?,
                    mode,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            class_id: int(class_id, "long-unsigned class id")?,
            version: int(version, "unsigned version")?,
            logical_name: obis(ln)?,
            access_rights: AccessRights {
                attributes,
                methods,
            },
        })
    }

    pub fn to_data(&self) -> Data {
        let attrs = self
            .access_rights
            .attributes
            .iter()
            .map(|a| {
                Data::Structure(vec![
                    Data::Integer(a.attribute),
                    Data::Enum(a.mode.to_enum()),
                    a.selectors.as_ref().map_or(Data::Null, |s| {
                        Data::Array(s.iter().map(|x| Data::Integer(*x)).collect())
                    }),
                ])
            })
            .collect();
        let methods = self
            .access_rights
            .methods
            .iter()
            .map(|m| Data::Structure(vec![Data::Integer(m.method), Data::Enum(m.mode.to_enum())]))
            .collect();
        Data::Structure(vec![
            Data::LongUnsigned(self.class_id),
            Data::Unsigned(self.version),
            Data::OctetString(self.logical_name.as_bytes().to_vec()),
            Data::Structure(vec![Data::Array(attrs), Data::Array(methods)]),
        ])
    }
}

pub fn object_list_from_data(d: &Data) -> Result<Vec<ObjectListElement>, CosemError> {
    array(d, "object_list array")?
        .iter()
        .map(ObjectListElement::from_data)
        .collect()
}

pub fn object_list_to_data(list: &[ObjectListElement]) -> Data {
    Data::Array(list.iter().map(ObjectListElement::to_data).collect())
}
