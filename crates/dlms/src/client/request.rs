//! One outstanding request and its block transfers, in both directions.

use crate::axdr::Data;
use crate::codec::{Codec, Reader};
use crate::xdlms::{
    ActionRequest, ActionResponse, ActionResult, Apdu, DataBlockSA, GeneralBlockTransfer,
    GetDataResult, GetRequest, GetResponse, InvokeIdAndPriority, SetRequest, SetResponse,
};

use super::{Error, Limits, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    GetList(usize),
    Set,
    Action,
    Hls,
}

/// Parameters or a value too long for one APDU, sent block by block.
#[derive(Debug)]
struct OutBlocks {
    raw: Vec<u8>,
    pos: usize,
    size: usize,
}

#[derive(Debug)]
pub(crate) struct Pending {
    kind: Kind,
    invoke: Option<InvokeIdAndPriority>,
    /// Reassembly of a long answer.
    inbound: Vec<u8>,
    next_block: u32,
    out: Option<OutBlocks>,
    out_number: u32,
}

pub(crate) enum Step {
    /// Send this plain APDU and keep waiting.
    Send(Vec<u8>),
    Done(Response),
}

impl Pending {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            invoke: None,
            inbound: Vec::new(),
            next_block: 1,
            out: None,
            out_number: 0,
        }
    }
    pub(crate) fn get(_n: usize) -> Self {
        Self::new(Kind::Get)
    }
    pub(crate) fn get_list(n: usize) -> Self {
        Self::new(Kind::GetList(n))
    }
    pub(crate) fn set() -> Self {
        Self::new(Kind::Set)
    }
    pub(crate) fn action() -> Self {
        Self::new(Kind::Action)
    }
    pub(crate) fn hls() -> Self {
        Self::new(Kind::Hls)
    }
    pub(crate) fn is_hls(&self) -> bool {
        self.kind == Kind::Hls
    }

    fn with_out(kind: Kind, raw: Vec<u8>, budget: usize) -> Self {
        // Room for the block header (tag, choice, invoke, descriptor, last flag, number, length).
        let size = budget.saturating_sub(24).max(16);
        let mut p = Self::new(kind);
        p.out = Some(OutBlocks { raw, pos: 0, size });
        p
    }
    pub(crate) fn set_blocks(raw: Vec<u8>, budget: usize) -> Self {
        Self::with_out(Kind::Set, raw, budget)
    }
    pub(crate) fn action_blocks(raw: Vec<u8>, budget: usize) -> Self {
        Self::with_out(Kind::Action, raw, budget)
    }

    /// The next block of what we send, numbered from 1.
    pub(crate) fn next_out_block(&mut self, number: u32) -> Option<DataBlockSA> {
        let out = self.out.as_mut()?;
        if out.pos >= out.raw.len() && number > 1 {
            return None;
        }
        let end = (out.pos + out.size).min(out.raw.len());
        let chunk = out.raw.get(out.pos..end)?.to_vec();
        out.pos = end;
        self.out_number = number;
        Some(DataBlockSA {
            last_block: end == out.raw.len(),
            block_number: number,
            raw_data: chunk,
        })
    }

    fn take_in_block(&mut self, number: u32, raw: &[u8], limits: &Limits) -> Result<(), Error> {
        if number != self.next_block {
            return Err(Error::Protocol("data block out of sequence"));
        }
        if number > limits.max_blocks {
            return Err(Error::LimitExceeded("too many blocks"));
        }
        if self.inbound.len() + raw.len() > limits.max_response_bytes {
            return Err(Error::LimitExceeded("response too large"));
        }
        self.inbound.extend_from_slice(raw);
        self.next_block += 1;
        Ok(())
    }

    pub(crate) fn on_response(&mut self, apdu: Apdu, limits: &Limits) -> Result<Step, Error> {
        match (self.kind, apdu) {
            (Kind::Get | Kind::GetList(_), Apdu::GetResponse(r)) => self.on_get(r, limits),
            (Kind::Set, Apdu::SetResponse(r)) => self.on_set(r),
            (Kind::Action | Kind::Hls, Apdu::ActionResponse(r)) => self.on_action(r, limits),
            _ => Err(Error::Protocol("the answer does not match the request")),
        }
    }

    fn on_get(&mut self, r: GetResponse, limits: &Limits) -> Result<Step, Error> {
        match r {
            GetResponse::Normal { invoke, result } => {
                self.invoke = Some(invoke);
                Ok(Step::Done(Response::Get(vec![result])))
            }
            GetResponse::WithList { results, .. } => Ok(Step::Done(Response::Get(results))),
            GetResponse::WithDataBlock { invoke, block } => {
                self.invoke = Some(invoke);
                let raw = match block.result {
                    Err(dar) => {
                        let n = match self.kind {
                            Kind::GetList(n) => n,
                            _ => 1,
                        };
                        return Ok(Step::Done(Response::Get(vec![
                            GetDataResult::Error(dar);
                            n
                        ])));
                    }
                    Ok(raw) => raw,
                };
                self.take_in_block(block.block_number, &raw, limits)?;
                if !block.last_block {
                    let next = GetRequest::Next {
                        invoke,
                        block_number: block.block_number,
                    };
                    return Ok(Step::Send(Apdu::GetRequest(next).to_bytes()));
                }
                let all = std::mem::take(&mut self.inbound);
                let results = match self.kind {
                    Kind::GetList(_) => decode_result_list(&all)?,
                    _ => vec![GetDataResult::Data(Data::decode_exact(&all)?)],
                };
                Ok(Step::Done(Response::Get(results)))
            }
        }
    }

    fn on_set(&mut self, r: SetResponse) -> Result<Step, Error> {
        match r {
            SetResponse::Normal { result, .. } | SetResponse::LastDataBlock { result, .. } => {
                Ok(Step::Done(Response::Set(vec![result])))
            }
            SetResponse::WithList { results, .. }
            | SetResponse::LastDataBlockWithList { results, .. } => {
                Ok(Step::Done(Response::Set(results)))
            }
            SetResponse::DataBlock {
                invoke,
                block_number,
            } => {
                if block_number != self.out_number {
                    return Err(Error::Protocol("set block acknowledged out of sequence"));
                }
                let block = self
                    .next_out_block(block_number + 1)
                    .ok_or(Error::Protocol("server asked for a block past the last"))?;
                Ok(Step::Send(
                    Apdu::SetRequest(SetRequest::WithDataBlock { invoke, block }).to_bytes(),
                ))
            }
        }
    }

    fn on_action(&mut self, r: ActionResponse, limits: &Limits) -> Result<Step, Error> {
        match r {
            ActionResponse::Normal {
                result,
                return_parameters,
                ..
            } => Ok(Step::Done(Response::Action(vec![(
                result,
                return_parameters,
            )]))),
            ActionResponse::WithList { results, .. } => Ok(Step::Done(Response::Action(results))),
            ActionResponse::NextPBlock {
                invoke,
                block_number,
            } => {
                if block_number != self.out_number {
                    return Err(Error::Protocol("action block acknowledged out of sequence"));
                }
                let block = self
                    .next_out_block(block_number + 1)
                    .ok_or(Error::Protocol("server asked for a block past the last"))?;
                Ok(Step::Send(
                    Apdu::ActionRequest(ActionRequest::WithPBlock { invoke, block }).to_bytes(),
                ))
            }
            ActionResponse::WithPBlock { invoke, block } => {
                self.take_in_block(block.block_number, &block.raw_data, limits)?;
                if !block.last_block {
                    let next = ActionRequest::NextPBlock {
                        invoke,
                        block_number: block.block_number,
                    };
                    return Ok(Step::Send(Apdu::ActionRequest(next).to_bytes()));
                }
                let all = std::mem::take(&mut self.inbound);
                let data = Data::decode_exact(&all)?;
                Ok(Step::Done(Response::Action(vec![(
                    ActionResult::Success,
                    Some(GetDataResult::Data(data)),
                )])))
            }
        }
    }
}

/// The raw data of a get-response-with-list sent in blocks: a count, then each result.
fn decode_result_list(bytes: &[u8]) -> Result<Vec<GetDataResult>, Error> {
    let mut r = Reader::new(bytes);
    let n = r.length("get result list count")?;
    if n > r.remaining() {
        return Err(Error::LimitExceeded("result list count"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(GetDataResult::decode(&mut r)?);
    }
    r.finish("get result list")?;
    Ok(out)
}

/// Reassembly of general-block-transfer (window 1: each block acknowledged).
#[derive(Debug, Default)]
pub(crate) struct GbtAssembly {
    data: Vec<u8>,
    expected: u16,
    own_number: u16,
}

pub(crate) enum GbtStep {
    Ack(GeneralBlockTransfer),
    Complete(Vec<u8>),
}

impl GbtAssembly {
    pub(crate) fn push(
        &mut self,
        b: GeneralBlockTransfer,
        limits: &Limits,
    ) -> Result<GbtStep, Error> {
        let expected = if self.expected == 0 { 1 } else { self.expected };
        if b.block_number != expected {
            self.data.clear();
            self.expected = 0;
            return Err(Error::Protocol(
                "general-block-transfer block out of sequence",
            ));
        }
        if self.data.len() + b.block_data.len() > limits.max_response_bytes
            || u32::from(b.block_number) > limits.max_blocks
        {
            return Err(Error::LimitExceeded("general-block-transfer too large"));
        }
        self.data.extend_from_slice(&b.block_data);
        self.expected = expected.wrapping_add(1);
        if b.last_block {
            self.expected = 0;
            return Ok(GbtStep::Complete(std::mem::take(&mut self.data)));
        }
        self.own_number = self.own_number.wrapping_add(1);
        Ok(GbtStep::Ack(GeneralBlockTransfer {
            last_block: false,
            streaming: false,
            window: 1,
            block_number: self.own_number,
            block_number_ack: b.block_number,
            block_data: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn block(n: u16, last: bool, data: &[u8]) -> GeneralBlockTransfer {
        GeneralBlockTransfer {
            last_block: last,
            streaming: false,
            window: 1,
            block_number: n,
            block_number_ack: 0,
            block_data: data.to_vec(),
        }
    }

    #[test]
    fn general_block_transfer_is_acknowledged_and_reassembled() {
        let limits = Limits::default();
        let mut g = GbtAssembly::default();
        match g.push(block(1, false, &[1, 2]), &limits).unwrap() {
            GbtStep::Ack(a) => assert_eq!((a.block_number_ack, a.block_data.len()), (1, 0)),
            GbtStep::Complete(_) => panic!("not yet"),
        }
        assert!(
            matches!(g.push(block(2, false, &[3]), &limits).unwrap(), GbtStep::Ack(a) if a.block_number_ack == 2)
        );
        match g.push(block(3, true, &[4]), &limits).unwrap() {
            GbtStep::Complete(all) => assert_eq!(all, [1, 2, 3, 4]),
            GbtStep::Ack(_) => panic!("last block"),
        }
        // Out of sequence, and over the size limit, are errors.
        let mut g = GbtAssembly::default();
        assert!(g.push(block(2, false, &[1]), &limits).is_err());
        let small = Limits {
            max_blocks: 10,
            max_response_bytes: 3,
        };
        let mut g = GbtAssembly::default();
        assert!(g.push(block(1, false, &[0; 4]), &small).is_err());
    }
}
