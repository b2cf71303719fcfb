//! GET, SET and ACTION requests and responses in all their forms (normal, blocks, lists).

use crate::axdr::Data;
use crate::codec::{put_length, put_octets, Codec, DecodeError, Reader};
use crate::types::{AttributeDescriptor, MethodDescriptor};

use super::{
    bounded_count, expect_tag, optional, optional_access, put_optional_access, tag, ActionResult,
    DataAccessResult, InvokeIdAndPriority, SelectiveAccess,
};

/// `Get-Data-Result`: the value, or why not.
#[derive(Debug, Clone, PartialEq)]
pub enum GetDataResult {
    Data(Data),
    Error(DataAccessResult),
}

impl Codec for GetDataResult {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            GetDataResult::Data(d) => {
                out.push(0);
                d.encode(out);
            }
            GetDataResult::Error(e) => out.extend_from_slice(&[1, e.code()]),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("get-data-result choice")? {
            0 => Ok(GetDataResult::Data(Data::decode(r)?)),
            1 => Ok(GetDataResult::Error(DataAccessResult::from_code(
                r.u8("data-access-result")?,
            ))),
            t => Err(DecodeError::UnknownTag {
                what: "get-data-result",
                tag: t,
            }),
        }
    }
}

/// `DataBlock-G`: one block of a long GET answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlockG {
    pub last_block: bool,
    pub block_number: u32,
    pub result: Result<Vec<u8>, DataAccessResult>,
}

impl Codec for DataBlockG {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.last_block));
        out.extend_from_slice(&self.block_number.to_be_bytes());
        match &self.result {
            Ok(raw) => {
                out.push(0);
                put_octets(out, raw);
            }
            Err(e) => out.extend_from_slice(&[1, e.code()]),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let last_block = r.u8("last-block")? != 0;
        let block_number = r.u32("block-number")?;
        let result = match r.u8("datablock-g result choice")? {
            0 => Ok(r.octets("raw-data")?.to_vec()),
            1 => Err(DataAccessResult::from_code(r.u8("data-access-result")?)),
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "datablock-g result",
                    tag: t,
                })
            }
        };
        Ok(Self {
            last_block,
            block_number,
            result,
        })
    }
}

/// `DataBlock-SA`: one block of a long SET value or ACTION parameter/answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlockSA {
    pub last_block: bool,
    pub block_number: u32,
    pub raw_data: Vec<u8>,
}

impl Codec for DataBlockSA {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.last_block));
        out.extend_from_slice(&self.block_number.to_be_bytes());
        put_octets(out, &self.raw_data);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            last_block: r.u8("last-block")? != 0,
            block_number: r.u32("block-number")?,
            raw_data: r.octets("raw-data")?.to_vec(),
        })
    }
}

fn invoke(r: &mut Reader<'_>) -> Result<InvokeIdAndPriority, DecodeError> {
    Ok(InvokeIdAndPriority(r.u8("invoke-id-and-priority")?))
}

type AttrItem = (AttributeDescriptor, Option<SelectiveAccess>);

fn put_attr_items(out: &mut Vec<u8>, items: &[AttrItem]) {
    put_length(out, items.len());
    for (a, s) in items {
        a.encode(out);
        put_optional_access(out, s);
    }
}

fn attr_items(r: &mut Reader<'_>) -> Result<Vec<AttrItem>, DecodeError> {
    let n = bounded_count(r, 10, "attribute descriptor list")?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push((AttributeDescriptor::decode(r)?, optional_access(r)?));
    }
    Ok(v)
}

fn put_dars(out: &mut Vec<u8>, v: &[DataAccessResult]) {
    put_length(out, v.len());
    out.extend(v.iter().map(|d| d.code()));
}

fn dars(r: &mut Reader<'_>) -> Result<Vec<DataAccessResult>, DecodeError> {
    let n = bounded_count(r, 1, "data-access-result list")?;
    let bytes = r.take(n, "data-access-result list")?;
    Ok(bytes
        .iter()
        .map(|c| DataAccessResult::from_code(*c))
        .collect())
}

#[derive(Debug, Clone, PartialEq)]
pub enum GetRequest {
    Normal {
        invoke: InvokeIdAndPriority,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
    },
    Next {
        invoke: InvokeIdAndPriority,
        block_number: u32,
    },
    WithList {
        invoke: InvokeIdAndPriority,
        items: Vec<AttrItem>,
    },
}

impl Codec for GetRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::GET_REQUEST);
        match self {
            GetRequest::Normal {
                invoke,
                attribute,
                access,
            } => {
                out.extend_from_slice(&[1, invoke.0]);
                attribute.encode(out);
                put_optional_access(out, access);
            }
            GetRequest::Next {
                invoke,
                block_number,
            } => {
                out.extend_from_slice(&[2, invoke.0]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            GetRequest::WithList { invoke, items } => {
                out.extend_from_slice(&[3, invoke.0]);
                put_attr_items(out, items);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(r, tag::GET_REQUEST, "get-request")?;
        match r.u8("get-request choice")? {
            1 => Ok(GetRequest::Normal {
                invoke: invoke(r)?,
                attribute: AttributeDescriptor::decode(r)?,
                access: optional_access(r)?,
            }),
            2 => Ok(GetRequest::Next {
                invoke: invoke(r)?,
                block_number: r.u32("block-number")?,
            }),
            3 => Ok(GetRequest::WithList {
                invoke: invoke(r)?,
                items: attr_items(r)?,
            }),
            t => Err(DecodeError::UnknownTag {
                what: "get-request",
                tag: t,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum GetResponse {
    Normal {
        invoke: InvokeIdAndPriority,
        result: GetDataResult,
    },
    WithDataBlock {
        invoke: InvokeIdAndPriority,
        block: DataBlockG,
    },
    WithList {
        invoke: InvokeIdAndPriority,
        results: Vec<GetDataResult>,
    },
}

impl Codec for GetResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::GET_RESPONSE);
        match self {
            GetResponse::Normal { invoke, result } => {
                out.extend_from_slice(&[1, invoke.0]);
                result.encode(out);
            }
            GetResponse::WithDataBlock { invoke, block } => {
                out.extend_from_slice(&[2, invoke.0]);
                block.encode(out);
            }
            GetResponse::WithList { invoke, results } => {
                out.extend_from_slice(&[3, invoke.0]);
                put_length(out, results.len());
                for res in results {
                    res.encode(out);
                }
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(r, tag::GET_RESPONSE, "get-response")?;
        match r.u8("get-response choice")? {
            1 => Ok(GetResponse::Normal {
                invoke: invoke(r)?,
                result: GetDataResult::decode(r)?,
            }),
            2 => Ok(GetResponse::WithDataBlock {
                invoke: invoke(r)?,
                block: DataBlockG::decode(r)?,
            }),
            3 => {
                let invoke = invoke(r)?;
                let n = bounded_count(r, 2, "get-data-result list")?;
                let mut results = Vec::with_capacity(n);
                for _ in 0..n {
                    results.push(GetDataResult::decode(r)?);
                }
                Ok(GetResponse::WithList { invoke, results })
            }
            t => Err(DecodeError::UnknownTag {
                what: "get-response",
                tag: t,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetRequest {
    Normal {
        invoke: InvokeIdAndPriority,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
        value: Data,
    },
    WithFirstDataBlock {
        invoke: InvokeIdAndPriority,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
        block: DataBlockSA,
    },
    WithDataBlock {
        invoke: InvokeIdAndPriority,
        block: DataBlockSA,
    },
    WithList {
        invoke: InvokeIdAndPriority,
        items: Vec<AttrItem>,
        values: Vec<Data>,
    },
    WithListAndFirstDataBlock {
        invoke: InvokeIdAndPriority,
        items: Vec<AttrItem>,
        block: DataBlockSA,
    },
}

impl Codec for SetRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::SET_REQUEST);
        match self {
            SetRequest::Normal {
                invoke,
                attribute,
                access,
                value,
            } => {
                out.extend_from_slice(&[1, invoke.0]);
                attribute.encode(out);
                put_optional_access(out, access);
                value.encode(out);
            }
            SetRequest::WithFirstDataBlock {
                invoke,
                attribute,
                access,
                block,
            } => {
                out.extend_from_slice(&[2, invoke.0]);
                attribute.encode(out);
                put_optional_access(out, access);
                block.encode(out);
            }
            SetRequest::WithDataBlock { invoke, block } => {
                out.extend_from_slice(&[3, invoke.0]);
                block.encode(out);
            }
            SetRequest::WithList {
                invoke,
                items,
                values,
            } => {
                out.extend_from_slice(&[4, invoke.0]);
                put_attr_items(out, items);
                put_length(out, values.len());
                for v in values {
                    v.encode(out);
                }
            }
            SetRequest::WithListAndFirstDataBlock {
                invoke,
                items,
                block,
            } => {
                out.extend_from_slice(&[5, invoke.0]);
                put_attr_items(out, items);
                block.encode(out);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(r, tag::SET_REQUEST, "set-request")?;
        match r.u8("set-request choice")? {
            1 => Ok(SetRequest::Normal {
                invoke: invoke(r)?,
                attribute: AttributeDescriptor::decode(r)?,
                access: optional_access(r)?,
                value: Data::decode(r)?,
            }),
            2 => Ok(SetRequest::WithFirstDataBlock {
                invoke: invoke(r)?,
                attribute: AttributeDescriptor::decode(r)?,
                access: optional_access(r)?,
                block: DataBlockSA::decode(r)?,
            }),
            3 => Ok(SetRequest::WithDataBlock {
                invoke: invoke(r)?,
                block: DataBlockSA::decode(r)?,
            }),
            4 => {
                let invoke = invoke(r)?;
                let items = attr_items(r)?;
                let n = bounded_count(r, 1, "set value list")?;
                let mut values = Vec::with_capacity(n);
                for _ in 0..n {
                    values.push(Data::decode(r)?);
                }
                Ok(SetRequest::WithList {
                    invoke,
                    items,
                    values,
                })
            }
            5 => Ok(SetRequest::WithListAndFirstDataBlock {
                invoke: invoke(r)?,
                items: attr_items(r)?,
                block: DataBlockSA::decode(r)?,
            }),
            t => Err(DecodeError::UnknownTag {
                what: "set-request",
                tag: t,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetResponse {
    Normal {
        invoke: InvokeIdAndPriority,
        result: DataAccessResult,
    },
    DataBlock {
        invoke: InvokeIdAndPriority,
        block_number: u32,
    },
    LastDataBlock {
        invoke: InvokeIdAndPriority,
        result: DataAccessResult,
        block_number: u32,
    },
    LastDataBlockWithList {
        invoke: InvokeIdAndPriority,
        results: Vec<DataAccessResult>,
        block_number: u32,
    },
    WithList {
        invoke: InvokeIdAndPriority,
        results: Vec<DataAccessResult>,
    },
}

impl Codec for SetResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::SET_RESPONSE);
        match self {
            SetResponse::Normal { invoke, result } => {
                out.extend_from_slice(&[1, invoke.0, result.code()])
            }
            SetResponse::DataBlock {
                invoke,
                block_number,
            } => {
                out.extend_from_slice(&[2, invoke.0]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            SetResponse::LastDataBlock {
                invoke,
                result,
                block_number,
            } => {
                out.extend_from_slice(&[3, invoke.0, result.code()]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            SetResponse::LastDataBlockWithList {
                invoke,
                results,
                block_number,
            } => {
                out.extend_from_slice(&[4, invoke.0]);
                put_dars(out, results);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            SetResponse::WithList { invoke, results } => {
                out.extend_from_slice(&[5, invoke.0]);
                put_dars(out, results);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(r, tag::SET_RESPONSE, "set-response")?;
        match r.u8("set-response choice")? {
            1 => Ok(SetResponse::Normal {
                invoke: invoke(r)?,
                result: DataAccessResult::from_code(r.u8("data-access-result")?),
            }),
            2 => Ok(SetResponse::DataBlock {
                invoke: invoke(r)?,
                block_number: r.u32("block-number")?,
            }),
            3 => Ok(SetResponse::LastDataBlock {
                invoke: invoke(r)?,
                result: DataAccessResult::from_code(r.u8("data-access-result")?),
                block_number: r.u32("block-number")?,
            }),
            4 => Ok(SetResponse::LastDataBlockWithList {
                invoke: invoke(r)?,
                results: dars(r)?,
                block_number: r.u32("block-number")?,
            }),
            5 => Ok(SetResponse::WithList {
                invoke: invoke(r)?,
                results: dars(r)?,
            }),
            t => Err(DecodeError::UnknownTag {
                what: "set-response",
                tag: t,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActionRequest {
    Normal {
        invoke: InvokeIdAndPriority,
        method: MethodDescriptor,
        parameters: Option<Data>,
    },
    NextPBlock {
        invoke: InvokeIdAndPriority,
        block_number: u32,
    },
    WithList {
        invoke: InvokeIdAndPriority,
        items: Vec<(MethodDescriptor, Option<Data>)>,
    },
    WithFirstPBlock {
        invoke: InvokeIdAndPriority,
        method: MethodDescriptor,
        block: DataBlockSA,
    },
    WithListAndFirstPBlock {
        invoke: InvokeIdAndPriority,
        methods: Vec<MethodDescriptor>,
        block: DataBlockSA,
    },
    WithPBlock {
        invoke: InvokeIdAndPriority,
        block: DataBlockSA,
    },
}

fn put_optional_data(out: &mut Vec<u8>, d: &Option<Data>) {
    match d {
        None => out.push(0),
        Some(d) => {
            out.push(1);
            d.encode(out);
        }
    }
}

fn optional_data(r: &mut Reader<'_>, what: &'static str) -> Result<Option<Data>, DecodeError> {
    Ok(if optional(r, what)? {
        Some(Data::decode(r)?)
    } else {
        None
    })
}

fn methods(r: &mut Reader<'_>) -> Result<Vec<MethodDescriptor>, DecodeError> {
    let n = bounded_count(r, 9, "method descriptor list")?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(MethodDescriptor::decode(r)?);
    }
    Ok(v)
}

impl Codec for ActionRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::ACTION_REQUEST);
        match self {
            ActionRequest::Normal {
                invoke,
                method,
                parameters,
            } => {
                out.extend_from_slice(&[1, invoke.0]);
                method.encode(out);
                put_optional_data(out, parameters);
            }
            ActionRequest::NextPBlock {
                invoke,
                block_number,
            } => {
                out.extend_from_slice(&[2, invoke.0]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            ActionRequest::WithList { invoke, items } => {
                out.extend_from_slice(&[3, invoke.0]);
                put_length(out, items.len());
                for (m, _) in items {
                    m.encode(out);
                }
                // The parameters are a plain SEQUENCE OF Data: an absent one is null-data.
                put_length(out, items.len());
                for (_, p) in items {
                    p.as_ref().unwrap_or(&Data::Null).encode(out);
                }
            }
            ActionRequest::WithFirstPBlock {
                invoke,
                method,
                block,
            } => {
                out.extend_from_slice(&[4, invoke.0]);
                method.encode(out);
                block.encode(out);
            }
            ActionRequest::WithListAndFirstPBlock {
                invoke,
                methods,
                block,
            } => {
                out.extend_from_slice(&[5, invoke.0]);
                put_length(out, methods.len());
                for m in methods {
                    m.encode(out);
                }
                block.encode(out);
            }
            ActionRequest::WithPBlock { invoke, block } => {
                out.extend_from_slice(&[6, invoke.0]);
                block.encode(out);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(r, tag::ACTION_REQUEST, "action-request")?;
        match r.u8("action-request choice")? {
            1 => Ok(ActionRequest::Normal {
                invoke: invoke(r)?,
                method: MethodDescriptor::decode(r)?,
                parameters: optional_data(r, "method-invocation-parameters flag")?,
            }),
            2 => Ok(ActionRequest::NextPBlock {
                invoke: invoke(r)?,
                block_number: r.u32("block-number")?,
            }),
            3 => {
                let invoke = invoke(r)?;
                let ms = methods(r)?;
                let n = bounded_count(r, 1, "method parameter list")?;
                if n != ms.len() {
                    return Err(DecodeError::Invalid {
                        what: "action-request-with-list",
                        why: "as many parameters as methods are needed",
                    });
                }
                let mut items = Vec::with_capacity(n);
                for m in ms {
                    let p = Data::decode(r)?;
                    items.push((m, if p == Data::Null { None } else { Some(p) }));
                }
                Ok(ActionRequest::WithList { invoke, items })
            }
            4 => Ok(ActionRequest::WithFirstPBlock {
                invoke: invoke(r)?,
                method: MethodDescriptor::decode(r)?,
                block: DataBlockSA::decode(r)?,
            }),
            5 => Ok(ActionRequest::WithListAndFirstPBlock {
                invoke: invoke(r)?,
                methods: methods(r)?,
                block: DataBlockSA::decode(r)?,
            }),
            6 => Ok(ActionRequest::WithPBlock {
                invoke: invoke(r)?,
                block: DataBlockSA::decode(r)?,
            }),
            t => Err(DecodeError::UnknownTag {
                what: "action-request",
                tag: t,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActionResponse {
    Normal {
        invoke: InvokeIdAndPriority,
        result: ActionResult,
        return_parameters: Option<GetDataResult>,
    },
    WithPBlock {
        invoke: InvokeIdAndPriority,
        block: DataBlockSA,
    },
    WithList {
        invoke: InvokeIdAndPriority,
        results: Vec<(ActionResult, Option<GetDataResult>)>,
    },
    NextPBlock {
        invoke: InvokeIdAndPriority,
        block_number: u32,
    },
}

fn put_action_result(out: &mut Vec<u8>, result: ActionResult, ret: &Option<GetDataResult>) {
    out.push(result.code());
    match ret {
        None => out.push(0),
        Some(g) => {
            out.push(1);
            g.encode(out);
        }
    }
}

fn action_result(r: &mut Reader<'_>) -> Result<(ActionResult, Option<GetDataResult>), DecodeError> {
    let result = ActionResult::from_code(r.u8("action-result")?);
    let ret = if optional(r, "return-parameters flag")? {
        Some(GetDataResult::decode(r)?)
    } else {
        None
    };
    Ok((result, ret))
}

impl Codec for ActionResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(tag::ACTION_RESPONSE);
        match self {
            ActionResponse::Normal {
                invoke,
                result,
                return_parameters,
            } => {
                out.extend_from_slice(&[1, invoke.0]);
                put_action_result(out, *result, return_parameters);
            }
            ActionResponse::WithPBlock { invoke, block } => {
                out.extend_from_slice(&[2, invoke.0]);
                block.encode(out);
            }
            ActionResponse::WithList { invoke, results } => {
                out.extend_from_slice(&[3, invoke.0]);
                put_length(out, results.len());
                for (res, ret) in results {
                    put_action_result(out, *res, ret);
                }
            }
            ActionResponse::NextPBlock {
                invoke,
                block_number,
            } => {
                out.extend_from_slice(&[4, invoke.0]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(r, tag::ACTION_RESPONSE, "action-response")?;
        match r.u8("action-response choice")? {
            1 => {
                let invoke = invoke(r)?;
                let (result, return_parameters) = action_result(r)?;
                Ok(ActionResponse::Normal {
                    invoke,
                    result,
                    return_parameters,
                })
            }
            2 => Ok(ActionResponse::WithPBlock {
                invoke: invoke(r)?,
                block: DataBlockSA::decode(r)?,
            }),
            3 => {
                let invoke = invoke(r)?;
                let n = bounded_count(r, 2, "action result list")?;
                let mut results = Vec::with_capacity(n);
                for _ in 0..n {
                    results.push(action_result(r)?);
                }
                Ok(ActionResponse::WithList { invoke, results })
            }
            4 => Ok(ActionResponse::NextPBlock {
                invoke: invoke(r)?,
                block_number: r.u32("block-number")?,
            }),
            t => Err(DecodeError::UnknownTag {
                what: "action-response",
                tag: t,
            }),
        }
    }
}

macro_rules! invoke_of {
    ($($t:ident { $($v:ident),* })*) => {$(
        impl $t {
            /// The invoke-id-and-priority the APDU carries.
            pub fn invoke(&self) -> InvokeIdAndPriority {
                match self {
                    $($t::$v { invoke, .. } => *invoke,)*
                }
            }
        }
    )*};
}

invoke_of! {
    GetRequest { Normal, Next, WithList }
    GetResponse { Normal, WithDataBlock, WithList }
    SetRequest { Normal, WithFirstDataBlock, WithDataBlock, WithList, WithListAndFirstDataBlock }
    SetResponse { Normal, DataBlock, LastDataBlock, LastDataBlockWithList, WithList }
    ActionRequest { Normal, NextPBlock, WithList, WithFirstPBlock, WithListAndFirstPBlock, WithPBlock }
    ActionResponse { Normal, WithPBlock, WithList, NextPBlock }
}
