//! Serving GET, SET and ACTION once associated: long answers in blocks, long values and
//! parameters put back together, and the errors each service answers with.

use super::*;

impl Server {
    /// Answers one plain request; `None` when nothing is to be sent.
    pub(super) fn serve(
        &mut self,
        req: Apdu,
        objects: &mut dyn Objects,
    ) -> Result<Option<Vec<u8>>, Error> {
        let Some(assoc) = self.assoc.as_ref() else {
            return Ok(None);
        };
        let ctx = assoc.ctx;
        let budget = reply_budget(assoc, self.cfg.max_receive_pdu);
        if self.state == State::AwaitHlsReply {
            return Ok(Some(self.serve_hls(req, objects)?));
        }
        // Services outside the negotiated conformance are refused, as the client agreed.
        let needed = match &req {
            Apdu::GetRequest(GetRequest::WithList { .. }) => {
                Conformance::GET | Conformance::MULTIPLE_REFERENCES
            }
            Apdu::GetRequest(_) => Conformance::GET,
            Apdu::SetRequest(
                SetRequest::WithFirstDataBlock { .. } | SetRequest::WithDataBlock { .. },
            ) => Conformance::SET | Conformance::BLOCK_TRANSFER_WITH_SET_OR_WRITE,
            Apdu::SetRequest(_) => Conformance::SET,
            Apdu::ActionRequest(_) => Conformance::ACTION,
            _ => Conformance(0),
        };
        if !assoc.conformance.contains(needed) {
            return Ok(Some(exception_bytes(1, 2)));
        }
        let reply = match req {
            Apdu::GetRequest(GetRequest::Normal {
                invoke,
                attribute,
                access,
            }) => {
                self.outbound = None;
                let result = match objects.get(&ctx, &attribute, access.as_ref()) {
                    Ok(d) => GetDataResult::Data(d),
                    Err(e) => GetDataResult::Error(e),
                };
                let whole = Apdu::GetResponse(GetResponse::Normal { invoke, result });
                self.fit_get(invoke, whole, budget)
            }
            Apdu::GetRequest(GetRequest::WithList { invoke, items }) => {
                self.outbound = None;
                let results: Vec<GetDataResult> = items
                    .iter()
                    .map(|(a, s)| match objects.get(&ctx, a, s.as_ref()) {
                        Ok(d) => GetDataResult::Data(d),
                        Err(e) => GetDataResult::Error(e),
                    })
                    .collect();
                let whole = Apdu::GetResponse(GetResponse::WithList { invoke, results });
                self.fit_get(invoke, whole, budget)
            }
            Apdu::GetRequest(GetRequest::Next {
                invoke,
                block_number,
            }) => match self.outbound.as_mut() {
                Some(out) => out.next_get(invoke, block_number),
                None => no_long_get(invoke),
            },
            Apdu::SetRequest(r) => self.serve_set(r, &ctx, objects),
            Apdu::ActionRequest(r) => self.serve_action(r, &ctx, budget, objects),
            Apdu::GeneralBlockTransfer(_) => {
                return Ok(Some(exception_bytes(1, 2)));
            }
            _ => return Ok(Some(exception_bytes(2, 2))),
        };
        Ok(Some(reply))
    }

    /// A GET answer as one APDU, or its first block when it is larger than the client takes.
    pub(super) fn fit_get(
        &mut self,
        invoke: InvokeIdAndPriority,
        whole: Apdu,
        budget: usize,
    ) -> Vec<u8> {
        let bytes = whole.to_bytes();
        if bytes.len() <= budget {
            return bytes;
        }
        let raw = match whole {
            Apdu::GetResponse(GetResponse::Normal {
                result: GetDataResult::Data(d),
                ..
            }) => d.to_bytes(),
            Apdu::GetResponse(GetResponse::WithList { results, .. }) => {
                let mut raw = Vec::new();
                crate::codec::put_length(&mut raw, results.len());
                for r in &results {
                    r.encode(&mut raw);
                }
                raw
            }
            _ => return bytes,
        };
        let mut out = Outbound::new(raw, budget);
        let first = out.first_get(invoke);
        self.outbound = Some(out);
        first
    }

    pub(super) fn serve_set(
        &mut self,
        req: SetRequest,
        ctx: &RequestContext,
        objects: &mut dyn Objects,
    ) -> Vec<u8> {
        let reply = match req {
            SetRequest::Normal {
                invoke,
                attribute,
                access,
                value,
            } => {
                let result = objects.set(ctx, &attribute, access.as_ref(), value);
                SetResponse::Normal { invoke, result }
            }
            SetRequest::WithList {
                invoke,
                items,
                values,
            } => {
                let results = items
                    .iter()
                    .zip(values)
                    .map(|((a, s), v)| objects.set(ctx, a, s.as_ref(), v))
                    .collect();
                SetResponse::WithList { invoke, results }
            }
            SetRequest::WithFirstDataBlock {
                invoke,
                attribute,
                access,
                block,
            } => {
                let inb = Inbound::set(attribute, access);
                self.set_block(inb, invoke, block, 1, ctx, objects)
            }
            SetRequest::WithDataBlock { invoke, block } => match self.inbound.take() {
                None => SetResponse::LastDataBlock {
                    invoke,
                    result: DataAccessResult::NoLongSetInProgress,
                    block_number: block.block_number,
                },
                Some(inb) => {
                    let n = block.block_number;
                    self.set_block(inb, invoke, block, n, ctx, objects)
                }
            },
            SetRequest::WithListAndFirstDataBlock { invoke, items, .. } => SetResponse::WithList {
                invoke,
                results: vec![DataAccessResult::OtherReason; items.len()],
            },
            #[allow(unreachable_patterns)]
            _ => return exception_bytes(2, 2),
        };
        Apdu::SetResponse(reply).to_bytes()
    }

    pub(super) fn serve_action(
        &mut self,
        req: ActionRequest,
        ctx: &RequestContext,
        budget: usize,
        objects: &mut dyn Objects,
    ) -> Vec<u8> {
        match req {
            ActionRequest::Normal {
                invoke,
                method,
                parameters,
            } => {
                let r = objects.action(ctx, &method, parameters);
                self.action_reply(invoke, r, budget)
            }
            ActionRequest::WithList { invoke, items } => {
                let results = items
                    .into_iter()
                    .map(|(m, p)| match objects.action(ctx, &m, p) {
                        Ok(d) => (ActionResult::Success, d.map(GetDataResult::Data)),
                        Err(e) => (e, None),
                    })
                    .collect();
                Apdu::ActionResponse(ActionResponse::WithList { invoke, results }).to_bytes()
            }
            ActionRequest::WithFirstPBlock {
                invoke,
                method,
                block,
            } => self.action_block(Inbound::action(method), invoke, block, ctx, budget, objects),
            ActionRequest::WithPBlock { invoke, block } => match self.inbound.take() {
                None => action_error(invoke, ActionResult::NoLongActionInProgress),
                Some(inb) => self.action_block(inb, invoke, block, ctx, budget, objects),
            },
            ActionRequest::NextPBlock {
                invoke,
                block_number,
            } => match self.outbound.as_mut() {
                Some(out) => out.next_action(invoke, block_number),
                None => action_error(invoke, ActionResult::NoLongActionInProgress),
            },
            ActionRequest::WithListAndFirstPBlock { invoke, .. } => {
                action_error(invoke, ActionResult::OtherReason)
            }
            #[allow(unreachable_patterns)]
            _ => exception_bytes(2, 2),
        }
    }

    /// Takes one block of a long SET value; the last one performs the SET. A refused block is
    /// answered with `err_block_number`.
    pub(super) fn set_block(
        &mut self,
        mut inb: Inbound,
        invoke: InvokeIdAndPriority,
        block: xdlms::DataBlockSA,
        err_block_number: u32,
        ctx: &RequestContext,
        objects: &mut dyn Objects,
    ) -> SetResponse {
        match inb.push(&block, self.cfg.max_request_bytes) {
            Err(result) => SetResponse::LastDataBlock {
                invoke,
                result,
                block_number: err_block_number,
            },
            Ok(()) if block.last_block => finish_set(invoke, inb, block.block_number, ctx, objects),
            Ok(()) => {
                self.inbound = Some(inb);
                SetResponse::DataBlock {
                    invoke,
                    block_number: block.block_number,
                }
            }
        }
    }

    /// Takes one block of long ACTION parameters; the last one invokes the method.
    pub(super) fn action_block(
        &mut self,
        mut inb: Inbound,
        invoke: InvokeIdAndPriority,
        block: xdlms::DataBlockSA,
        ctx: &RequestContext,
        budget: usize,
        objects: &mut dyn Objects,
    ) -> Vec<u8> {
        match inb.push(&block, self.cfg.max_request_bytes) {
            Err(_) => action_error(invoke, ActionResult::OtherReason),
            Ok(()) if block.last_block => {
                let r = inb.finish_action(ctx, objects);
                self.action_reply(invoke, r, budget)
            }
            Ok(()) => {
                self.inbound = Some(inb);
                let next = ActionResponse::NextPBlock {
                    invoke,
                    block_number: block.block_number,
                };
                Apdu::ActionResponse(next).to_bytes()
            }
        }
    }

    pub(super) fn action_reply(
        &mut self,
        invoke: InvokeIdAndPriority,
        r: Result<Option<Data>, ActionResult>,
        budget: usize,
    ) -> Vec<u8> {
        self.outbound = None;
        let (result, data) = match r {
            Ok(d) => (ActionResult::Success, d),
            Err(e) => (e, None),
        };
        let whole = ActionResponse::Normal {
            invoke,
            result,
            return_parameters: data.clone().map(GetDataResult::Data),
        };
        let bytes = Apdu::ActionResponse(whole).to_bytes();
        match data {
            Some(d) if bytes.len() > budget => {
                let mut out = Outbound::new(d.to_bytes(), budget);
                let first = out.first_action(invoke);
                self.outbound = Some(out);
                first
            }
            _ => bytes,
        }
    }
}

/// The largest plain answer that fits one APDU: the smaller of the two sides' PDU sizes (a meter
/// with a small buffer sends small blocks too), less the ciphering overhead.
pub(super) fn reply_budget(a: &Assoc, own_max_pdu: u16) -> usize {
    let overhead = if a.security.is_some() { 24 } else { 0 };
    a.client_max_pdu
        .min(usize::from(own_max_pdu))
        .saturating_sub(overhead)
        .max(64)
}

pub(super) fn finish_set(
    invoke: InvokeIdAndPriority,
    inb: Inbound,
    block_number: u32,
    ctx: &RequestContext,
    objects: &mut dyn Objects,
) -> SetResponse {
    let result = inb.finish_set(ctx, objects);
    SetResponse::LastDataBlock {
        invoke,
        result,
        block_number,
    }
}

pub(super) fn no_long_get(invoke: InvokeIdAndPriority) -> Vec<u8> {
    let result = GetDataResult::Error(DataAccessResult::NoLongGetInProgress);
    Apdu::GetResponse(GetResponse::Normal { invoke, result }).to_bytes()
}

pub(super) fn action_error(invoke: InvokeIdAndPriority, result: ActionResult) -> Vec<u8> {
    Apdu::ActionResponse(ActionResponse::Normal {
        invoke,
        result,
        return_parameters: None,
    })
    .to_bytes()
}

pub(super) fn exception_bytes(state_error: u8, service_error: u8) -> Vec<u8> {
    Apdu::ExceptionResponse(ExceptionResponse {
        state_error,
        service_error,
        invocation_counter: None,
    })
    .to_bytes()
}
