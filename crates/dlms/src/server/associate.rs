//! Opening an association: the AARQ checked against the client's policy and answered, and
//! the HLS pass 3/4 exchange that completes a high-level authentication.

use super::services::{action_error, exception_bytes};
use super::*;

impl Server {
    pub(super) fn reject(
        &mut self,
        ctx: ApplicationContext,
        why: AcseServiceUser,
    ) -> Result<(), Error> {
        let aare = Aare {
            application_context: ctx,
            result: AssociationResult::RejectedPermanent,
            diagnostic: Diagnostic::ServiceUser(why),
            responding_ap_title: None,
            responder_acse_requirements: false,
            mechanism: None,
            responding_authentication_value: None,
            user_information: None,
        };
        self.state = State::Idle;
        self.assoc = None;
        self.send(AcseApdu::Aare(aare).to_bytes())
    }

    pub(super) fn on_aarq(&mut self, bytes: &[u8], objects: &mut dyn Objects) -> Result<(), Error> {
        let AcseApdu::Aarq(aarq) = AcseApdu::decode_exact(bytes)? else {
            return Err(Error::UnexpectedApdu(xdlms::tag::AARQ));
        };
        let app_ctx = aarq.application_context;
        let sap = self.link.peer_sap().unwrap_or_default();
        let Some(policy) = self.policy(sap) else {
            return self.reject(app_ctx, AcseServiceUser::CallingApTitleNotRecognized);
        };
        let ciphered = policy.security != SecurityLevel::None;
        if app_ctx != ApplicationContext::LogicalName
            && !(ciphered && app_ctx == ApplicationContext::LogicalNameCiphered)
        {
            return self.reject(app_ctx, AcseServiceUser::ApplicationContextNameNotSupported);
        }
        if ciphered && app_ctx != ApplicationContext::LogicalNameCiphered {
            return self.reject(app_ctx, AcseServiceUser::ApplicationContextNameNotSupported);
        }
        let mechanism = policy.authentication.mechanism();
        if aarq.mechanism.unwrap_or(Mechanism::None) != mechanism {
            let why = if aarq.mechanism.is_none() {
                AcseServiceUser::AuthenticationMechanismNameRequired
            } else {
                AcseServiceUser::AuthenticationMechanismNameNotRecognised
            };
            return self.reject(app_ctx, why);
        }
        if let Authentication::Low { password } = &policy.authentication {
            if aarq.calling_authentication_value.as_deref() != Some(password.as_slice()) {
                return self.reject(app_ctx, AcseServiceUser::AuthenticationFailure);
            }
        }
        let client_title = aarq
            .calling_ap_title
            .as_deref()
            .and_then(SystemTitle::from_slice);
        if mechanism == Mechanism::HighEcdsa && self.ecc.is_none() {
            return self.reject(
                app_ctx,
                AcseServiceUser::AuthenticationMechanismNameNotRecognised,
            );
        }
        let client_key = match self.client_certificate_key(&aarq, client_title, objects) {
            Ok(k) => k,
            Err(()) => return self.reject(app_ctx, AcseServiceUser::AuthenticationFailure),
        };
        let mut sec = None;
        if ciphered || matches!(mechanism, Mechanism::HighGmac | Mechanism::HighEcdsa) {
            let Some(title) = client_title else {
                return self.reject(app_ctx, AcseServiceUser::CallingApTitleNotRecognized);
            };
            let counters = objects.counters();
            // Start at 1: some clients (dlms-cosem) take 0 as already seen.
            let first_tx = counters.tx.max(1);
            let mut ctx = match &self.ecc {
                None => SecurityContext::new(
                    policy.security,
                    self.cfg.system_title,
                    self.cfg.keys.clone(),
                    first_tx,
                ),
                Some(ecc) => match ecc.context(
                    policy.security,
                    self.cfg.system_title,
                    self.cfg.keys.clone(),
                    first_tx,
                ) {
                    Ok(ctx) => ctx,
                    Err(_) => return self.reject(app_ctx, AcseServiceUser::NoReasonGiven),
                },
            };
            ctx.peer_system_title = Some(title);
            if let Some(last) = counters.rx_last.get(&sap) {
                ctx.set_rx_floor(*last);
            }
            sec = Some(ctx);
        }
        let Some(ui) = aarq.user_information.clone() else {
            return self.reject(app_ctx, AcseServiceUser::NoReasonGiven);
        };
        let ui_plain = match &mut sec {
            Some(ctx) if ciphered => match ctx.unprotect(&ui) {
                Ok(u) => u.apdu,
                Err(security::SecurityError::Replay { received, last }) => {
                    objects.counter_replayed(sap, received, last);
                    return self.reject(app_ctx, AcseServiceUser::AuthenticationFailure);
                }
                // The initiate request does not decipher with this client's keys: to the client
                // that is a failed authentication, whatever the cause.
                Err(_) => return self.reject(app_ctx, AcseServiceUser::AuthenticationFailure),
            },
            _ if security::is_ciphered(ui.first().copied().unwrap_or_default()) => {
                return self.reject(app_ctx, AcseServiceUser::ApplicationContextNameNotSupported)
            }
            _ => ui,
        };
        let Apdu::InitiateRequest(init) = Apdu::decode_exact(&ui_plain)? else {
            return self.reject(app_ctx, AcseServiceUser::NoReasonGiven);
        };
        if let Some(ctx) = &mut sec {
            if let Some(k) = init.dedicated_key.as_deref() {
                ctx.dedicated_key = k.try_into().ok();
            }
        }
        let conformance = self.cfg.conformance.intersection(init.proposed_conformance);
        let resp = Apdu::InitiateResponse(InitiateResponse {
            negotiated_quality_of_service: None,
            negotiated_dlms_version: 6,
            negotiated_conformance: conformance,
            server_max_receive_pdu_size: self.cfg.max_receive_pdu,
            vaa_name: 0x0007,
        })
        .to_bytes();
        let user_information = match &mut sec {
            Some(ctx) if ciphered => ctx.protect(&resp, false)?,
            _ => resp,
        };
        let hls = mechanism.is_hls();
        let mut stoc = Vec::new();
        if hls {
            // HLS-ECDSA challenges are 32 to 64 bytes (Green Book).
            stoc = vec![
                0u8;
                if mechanism == Mechanism::HighEcdsa {
                    32
                } else {
                    16
                }
            ];
            objects.fill_random(&mut stoc);
        }
        let aare = Aare {
            application_context: app_ctx,
            result: AssociationResult::Accepted,
            diagnostic: Diagnostic::ServiceUser(if hls {
                AcseServiceUser::AuthenticationRequired
            } else {
                AcseServiceUser::Null
            }),
            responding_ap_title: sec.as_ref().map(|_| self.cfg.system_title.0.to_vec()),
            responder_acse_requirements: mechanism != Mechanism::None,
            mechanism: (mechanism != Mechanism::None).then_some(mechanism),
            responding_authentication_value: hls.then(|| stoc.clone()),
            user_information: Some(user_information),
        };
        let client_max_pdu = match init.client_max_receive_pdu_size {
            0 => usize::from(u16::MAX),
            n => usize::from(n),
        };
        let ctx = RequestContext {
            client_sap: sap,
            mechanism,
            security: policy.security,
        };
        self.assoc = Some(Assoc {
            ctx,
            policy,
            conformance,
            client_max_pdu,
            security: sec,
            ctos: aarq.calling_authentication_value.unwrap_or_default(),
            stoc,
            client_key,
        });
        self.sync_counters(objects);
        self.state = if hls {
            State::AwaitHlsReply
        } else {
            State::Associated
        };
        if !hls {
            self.events.push_back(ServerEvent::Associated(ctx));
        }
        self.send(AcseApdu::Aare(aare).to_bytes())
    }

    /// HLS-ECDSA with trust anchors: the client's signing key from the certificate in the
    /// calling-AE-qualifier, which must chain to an anchor at the meter's time, name the
    /// calling AP title and allow digital signatures. `Err` refuses the association.
    fn client_certificate_key(
        &self,
        aarq: &crate::acse::Aarq,
        client_title: Option<SystemTitle>,
        objects: &mut dyn Objects,
    ) -> Result<Option<security::EcPublicKey>, ()> {
        use security::x509::{verify_chain, Certificate, CertificateType};
        let Some(ecc) = &self.ecc else {
            return Ok(None);
        };
        if aarq.mechanism != Some(Mechanism::HighEcdsa) || ecc.trust_anchors.is_empty() {
            return Ok(None);
        }
        let Some(der) = &aarq.calling_ae_qualifier else {
            return Ok(None);
        };
        let cert = Certificate::from_der(der).map_err(|_| ())?;
        let now = objects.unix_time().ok_or(())?;
        verify_chain(&cert, &[], &ecc.trust_anchors, now).map_err(|_| ())?;
        if client_title.is_none() || cert.subject_system_title() != client_title {
            return Err(());
        }
        if !cert.allows(CertificateType::DigitalSignature) {
            return Err(());
        }
        let key = cert.public_key().map_err(|_| ())?;
        if key.suite() != ecc.suite() {
            return Err(());
        }
        Ok(Some(key))
    }

    /// Before HLS pass 4 only the reply_to_HLS_authentication method is served.
    pub(super) fn serve_hls(
        &mut self,
        req: Apdu,
        objects: &mut dyn Objects,
    ) -> Result<Vec<u8>, Error> {
        let (invoke, proof) = match req {
            Apdu::ActionRequest(ActionRequest::Normal {
                invoke,
                method,
                parameters,
            }) if method.class_id == 15
                && method.instance == CURRENT_ASSOCIATION
                && method.method == 1 =>
            {
                (
                    invoke,
                    parameters.and_then(|p| p.as_octets().map(<[u8]>::to_vec)),
                )
            }
            Apdu::ActionRequest(r) => {
                return Ok(action_error(r.invoke(), ActionResult::ReadWriteDenied))
            }
            Apdu::GetRequest(r) => {
                let invoke = r.invoke();
                let result = GetDataResult::Error(DataAccessResult::ReadWriteDenied);
                return Ok(Apdu::GetResponse(GetResponse::Normal { invoke, result }).to_bytes());
            }
            _ => return Ok(exception_bytes(1, 1)),
        };
        let Some(assoc) = self.assoc.as_mut() else {
            return Ok(exception_bytes(1, 1));
        };
        let answer = proof.and_then(|p| hls_check(assoc, self.ecc.as_ref(), &p).ok().flatten());
        match answer {
            Some(reply) => {
                self.state = State::Associated;
                let ctx = assoc.ctx;
                self.events.push_back(ServerEvent::Associated(ctx));
                self.sync_counters(objects);
                let resp = ActionResponse::Normal {
                    invoke,
                    result: ActionResult::Success,
                    return_parameters: Some(GetDataResult::Data(Data::OctetString(reply))),
                };
                Ok(Apdu::ActionResponse(resp).to_bytes())
            }
            None => Ok(action_error(invoke, ActionResult::ReadWriteDenied)),
        }
    }
}

/// Verifies the client's f(StoC); gives our f(CtoS).
pub(super) fn hls_check(
    a: &mut Assoc,
    ecc: Option<&EccConfig>,
    proof: &[u8],
) -> Result<Option<Vec<u8>>, Error> {
    Ok(match &a.policy.authentication {
        Authentication::High {
            mechanism: Mechanism::HighMd5,
            secret,
        } => (security::hls_md5(&a.stoc, secret).as_slice() == proof)
            .then(|| security::hls_md5(&a.ctos, secret).to_vec()),
        Authentication::High {
            mechanism: Mechanism::HighSha1,
            secret,
        } => (security::hls_sha1(&a.stoc, secret).as_slice() == proof)
            .then(|| security::hls_sha1(&a.ctos, secret).to_vec()),
        Authentication::High {
            mechanism: Mechanism::HighSha256,
            secret,
        } => {
            let Some(s) = a.security.as_ref() else {
                return Ok(None);
            };
            let Some(client) = s.peer_system_title else {
                return Ok(None);
            };
            let own = s.own_system_title;
            let expect = security::hls_sha256(secret, &client, &own, &a.stoc, &a.ctos);
            (expect.as_slice() == proof)
                .then(|| security::hls_sha256(secret, &own, &client, &a.ctos, &a.stoc).to_vec())
        }
        Authentication::HighGmac => {
            let Some(s) = a.security.as_mut() else {
                return Ok(None);
            };
            let Some(client) = s.peer_system_title else {
                return Ok(None);
            };
            if security::verify_hls_gmac(&client, &s.global, &a.stoc, proof).is_err() {
                return Ok(None);
            }
            let ic = s.take_tx_invocation_counter()?;
            Some(security::hls_gmac(
                &s.own_system_title,
                ic,
                &s.global,
                &a.ctos,
            ))
        }
        Authentication::HighEcdsa => {
            let (Some(ecc), Some(s)) = (ecc, a.security.as_ref()) else {
                return Ok(None);
            };
            let Some(client) = s.peer_system_title else {
                return Ok(None);
            };
            let Some(client_key) = a.client_key.as_ref().or(ecc.peer_signing_key.as_ref()) else {
                return Ok(None);
            };
            let own = s.own_system_title;
            security::verify_hls_ecdsa(client_key, &client, &own, &a.stoc, &a.ctos, proof)
                .is_ok()
                .then(|| security::hls_ecdsa(&ecc.signing_key, &own, &client, &a.ctos, &a.stoc))
        }
        _ => None,
    })
}
