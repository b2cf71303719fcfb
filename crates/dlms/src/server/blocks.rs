//! Block transfer on the server side: long answers cut into blocks, long SET values and ACTION
//! parameters put back together.

use crate::axdr::Data;
use crate::codec::Codec;
use crate::types::{AttributeDescriptor, MethodDescriptor};
use crate::xdlms::{
    ActionResponse, ActionResult, Apdu, DataAccessResult, DataBlockG, DataBlockSA, GetResponse,
    InvokeIdAndPriority, SelectiveAccess,
};

use super::{Objects, RequestContext};

/// A long answer being sent block by block.
#[derive(Debug)]
pub(super) struct Outbound {
    raw: Vec<u8>,
    pos: usize,
    size: usize,
    sent: u32,
}

impl Outbound {
    pub(super) fn new(raw: Vec<u8>, budget: usize) -> Self {
        // Room for the response header around the raw data.
        Self {
            raw,
            pos: 0,
            size: budget.saturating_sub(16).max(16),
            sent: 0,
        }
    }

    /// More blocks remain to be sent.
    pub(super) fn has_more(&self) -> bool {
        self.pos < self.raw.len()
    }

    fn cut(&mut self) -> (bool, u32, Vec<u8>) {
        let end = (self.pos + self.size).min(self.raw.len());
        let chunk = self.raw.get(self.pos..end).unwrap_or_default().to_vec();
        self.pos = end;
        self.sent += 1;
        (end == self.raw.len(), self.sent, chunk)
    }

    pub(super) fn first_get(&mut self, invoke: InvokeIdAndPriority) -> Vec<u8> {
        self.get_block(invoke)
    }

    fn get_block(&mut self, invoke: InvokeIdAndPriority) -> Vec<u8> {
        let (last_block, block_number, chunk) = self.cut();
        let block = DataBlockG {
            last_block,
            block_number,
            result: Ok(chunk),
        };
        Apdu::GetResponse(GetResponse::WithDataBlock { invoke, block }).to_bytes()
    }

    /// The client acknowledged `block_number` and asks for the next one.
    pub(super) fn next_get(&mut self, invoke: InvokeIdAndPriority, block_number: u32) -> Vec<u8> {
        if block_number != self.sent || self.pos >= self.raw.len() {
            let block = DataBlockG {
                last_block: true,
                block_number: block_number.wrapping_add(1),
                result: Err(DataAccessResult::DataBlockNumberInvalid),
            };
            return Apdu::GetResponse(GetResponse::WithDataBlock { invoke, block }).to_bytes();
        }
        self.get_block(invoke)
    }

    pub(super) fn first_action(&mut self, invoke: InvokeIdAndPriority) -> Vec<u8> {
        self.action_block(invoke)
    }

    fn action_block(&mut self, invoke: InvokeIdAndPriority) -> Vec<u8> {
        let (last_block, block_number, raw_data) = self.cut();
        let block = DataBlockSA {
            last_block,
            block_number,
            raw_data,
        };
        Apdu::ActionResponse(ActionResponse::WithPBlock { invoke, block }).to_bytes()
    }

    pub(super) fn next_action(
        &mut self,
        invoke: InvokeIdAndPriority,
        block_number: u32,
    ) -> Vec<u8> {
        if block_number != self.sent || self.pos >= self.raw.len() {
            let resp = ActionResponse::Normal {
                invoke,
                result: ActionResult::OtherReason,
                return_parameters: None,
            };
            return Apdu::ActionResponse(resp).to_bytes();
        }
        self.action_block(invoke)
    }
}

#[derive(Debug)]
enum Target {
    Set(AttributeDescriptor, Option<SelectiveAccess>),
    Action(MethodDescriptor),
}

/// A long SET value or ACTION parameter being received.
#[derive(Debug)]
pub(super) struct Inbound {
    target: Target,
    raw: Vec<u8>,
    expected: u32,
}

impl Inbound {
    pub(super) fn set(attribute: AttributeDescriptor, access: Option<SelectiveAccess>) -> Self {
        Self {
            target: Target::Set(attribute, access),
            raw: Vec::new(),
            expected: 1,
        }
    }

    pub(super) fn action(method: MethodDescriptor) -> Self {
        Self {
            target: Target::Action(method),
            raw: Vec::new(),
            expected: 1,
        }
    }

    pub(super) fn push(&mut self, b: &DataBlockSA, limit: usize) -> Result<(), DataAccessResult> {
        if b.block_number != self.expected {
            return Err(DataAccessResult::DataBlockNumberInvalid);
        }
        if self.raw.len() + b.raw_data.len() > limit {
            return Err(DataAccessResult::OtherReason);
        }
        self.raw.extend_from_slice(&b.raw_data);
        self.expected += 1;
        Ok(())
    }

    pub(super) fn finish_set(
        self,
        ctx: &RequestContext,
        objects: &mut dyn Objects,
    ) -> DataAccessResult {
        let Target::Set(attribute, access) = self.target else {
            return DataAccessResult::OtherReason;
        };
        match Data::decode_exact(&self.raw) {
            Ok(v) => objects.set(ctx, &attribute, access.as_ref(), v),
            Err(_) => DataAccessResult::TypeUnmatched,
        }
    }

    pub(super) fn finish_action(
        self,
        ctx: &RequestContext,
        objects: &mut dyn Objects,
    ) -> Result<Option<Data>, ActionResult> {
        let Target::Action(method) = self.target else {
            return Err(ActionResult::OtherReason);
        };
        let params = if self.raw.is_empty() {
            None
        } else {
            Some(Data::decode_exact(&self.raw).map_err(|_| ActionResult::TypeUnmatched)?)
        };
        objects.action(ctx, &method, params)
    }
}
