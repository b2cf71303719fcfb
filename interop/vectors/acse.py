#!/usr/bin/env python3
"""Records ACSE (AARQ/AARE/RLRQ) vectors from Gurux DLMS for Python into testdata/gurux/acse.json.

Run with `pip install gurux-dlms==1.0.203` installed:

    python3 interop/vectors/acse.py

(Gurux prints progress notes on stdout while ciphering, so the file is written directly.)

Every vector is deterministic: challenges, keys and invocation counters are fixed, so running the
script twice gives the same file. The expected field values are taken from what we configured
Gurux with (AARQ/RLRQ) or from what Gurux's client extracted while parsing (AARE), never from our
own parser, so the Rust test that reads the file is an independent check.

Gurux frames requests in the wrapper (IEC 62056-47) transport so that the APDU is everything after
the fixed 8-byte header.
"""

import contextlib
import io
import json
import os

from gurux_dlms import GXDLMSClient, GXByteBuffer, GXCiphering
from gurux_dlms.AesGcmParameter import AesGcmParameter
from gurux_dlms.GXDLMSSettings import GXDLMSSettings
from gurux_dlms._GXAPDU import _GXAPDU
from gurux_dlms.enums import (
    Authentication,
    Command,
    InterfaceType,
    Security,
    AssociationResult,
    SourceDiagnostic,
)
from gurux_dlms.secure import GXDLMSSecureClient
from gurux_dlms.ConnectionState import ConnectionState

BLOCK_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AUTH_KEY = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
CLIENT_TITLE = bytes.fromhex("4D4D4D0000000001")
SERVER_TITLE = bytes.fromhex("4D4D4D0000000002")
CTOS = bytes.fromhex("4B35366B4B4E6B37")  # "K56kKNk7"
STOC = b"P6wRJ21F"
INVOCATION_COUNTER = 0x11223344

WRAPPER_HEADER = 8


def hx(b):
    return None if b is None else bytes(b).hex().upper()


def apdu(frames):
    if len(frames) != 1:
        raise SystemExit("expected one wrapper frame")
    return bytes(frames[0])[WRAPPER_HEADER:]


def plain_initiate_request(client):
    buf = GXByteBuffer()
    _GXAPDU.getInitiateRequest(client.settings, buf)
    return bytes(buf.array())


def ciphered_initiate_request(client, invocation_counter):
    p = AesGcmParameter(
        Command.GLO_INITIATE_REQUEST, CLIENT_TITLE, BLOCK_KEY, AUTH_KEY
    )
    p.security = client.ciphering.security
    p.invocationCounter = invocation_counter
    return bytes(GXCiphering.encrypt(p, plain_initiate_request(client)))


def aarq_vector(name, auth, password=None, ciphered=False, title=False):
    client = GXDLMSSecureClient(
        True, 16, 1, auth, password, InterfaceType.WRAPPER
    )
    if ciphered or title:
        client.ciphering.systemTitle = CLIENT_TITLE
        client.ciphering.blockCipherKey = BLOCK_KEY
        client.ciphering.authenticationKey = AUTH_KEY
        client.ciphering.invocationCounter = INVOCATION_COUNTER
    if ciphered:
        client.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
    if auth > Authentication.LOW:
        # Setting the property also turns off Gurux's random challenge.
        client.ctoSChallenge = CTOS
    pdu = apdu(client.aarqRequest())
    if ciphered:
        user_information = ciphered_initiate_request(client, INVOCATION_COUNTER)
        context = 3
    else:
        user_information = plain_initiate_request(client)
        context = 1
    if auth == Authentication.LOW:
        auth_value = password
    elif auth > Authentication.LOW:
        auth_value = CTOS
    else:
        auth_value = None
    has_title = ciphered or auth in (
        Authentication.HIGH_GMAC,
        Authentication.HIGH_SHA256,
    )
    return {
        "name": name,
        "kind": "aarq",
        "hex": hx(pdu),
        "reencode": True,
        "application_context": context,
        "calling_ap_title": hx(CLIENT_TITLE) if has_title else None,
        "sender_acse_requirements": auth != Authentication.NONE or ciphered,
        "mechanism": int(auth) if (auth != Authentication.NONE or ciphered) else None,
        "calling_authentication_value": hx(auth_value),
        "user_information": hx(user_information),
    }


def parse_aare(name, pdu, auth, ciphered=False, note=None):
    """Lets the Gurux client parse an AARE and records what it understood."""
    client = GXDLMSSecureClient(True, 16, 1, auth, None, InterfaceType.WRAPPER)
    if ciphered:
        client.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
        client.ciphering.systemTitle = CLIENT_TITLE
        client.ciphering.blockCipherKey = BLOCK_KEY
        client.ciphering.authenticationKey = AUTH_KEY
    client.parseAareResponse(GXByteBuffer(pdu))
    s = client.settings
    v = {
        "name": name,
        "kind": "aare",
        "hex": hx(pdu),
        "reencode": True,
        "gurux_authentication_required": bool(client.isAuthenticationRequired),
        "gurux_server_system_title": hx(s.sourceSystemTitle),
        "gurux_stoc_challenge": hx(s.getStoCChallenge()),
        "gurux_mechanism": int(s.authentication),
        "gurux_max_pdu_size": s.maxPduSize,
    }
    if note:
        v["note"] = note
    return v


def initiate_response(max_pdu=0x01F4, conformance_hex="00501F"):
    # InitiateResponse: tag, no QoS, version 6, conformance [APPLICATION 31] bit string,
    # max PDU size, VAA name 0x0007 (LN).
    return (
        bytes([0x08, 0x00, 0x06, 0x5F, 0x1F, 0x04, 0x00])
        + bytes.fromhex(conformance_hex)
        + max_pdu.to_bytes(2, "big")
        + bytes([0x00, 0x07])
    )


def hls_aare(mechanism, title, user_info):
    """A standard-conformant HLS AARE (Green Book 9.3 layout): Gurux's own server-side
    generator writes a wrong length for [10] (see gurux_server_hls_quirk), so this is built by
    hand and then handed to the Gurux client parser to confirm both sides agree."""
    body = bytes.fromhex("A109060760857405080101")
    if title is not None:
        body = bytes.fromhex("A109060760857405080103")
    body += bytes.fromhex("A203020100")
    body += bytes.fromhex("A305A10302010E")
    if title is not None:
        body += bytes([0xA4, 2 + len(title), 0x04, len(title)]) + title
    body += bytes.fromhex("88020780")
    body += bytes.fromhex("89076085740508020" + str(mechanism))
    body += bytes([0xAA, 2 + len(STOC), 0x80, len(STOC)]) + STOC
    body += bytes([0xBE, 2 + len(user_info), 0x04, len(user_info)]) + user_info
    return bytes([0x61, len(body)]) + body


def server_aare(auth):
    s = GXDLMSSettings(True, None)
    s.authentication = auth
    if auth > Authentication.LOW:
        s.stoCChallenge = STOC
        diag = SourceDiagnostic.AUTHENTICATION_REQUIRED
    else:
        diag = SourceDiagnostic.NONE
    buf = GXByteBuffer()
    _GXAPDU.generateAARE(s, buf, AssociationResult.ACCEPTED, diag, None, None, None)
    return bytes(buf.array())


def rlrq_vector(name, protected):
    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    # A release follows an association; aarqRequest also sets the PDU size the release carries.
    client.aarqRequest()
    client.settings.connected |= ConnectionState.DLMS
    client.useProtectedRelease = protected
    pdu = apdu(client.releaseRequest())
    return {
        "name": name,
        "kind": "rlrq",
        "hex": hx(pdu),
        "reencode": True,
        "reason": 0,
        "user_information": hx(plain_initiate_request(client)) if protected else None,
    }


def collect():
    vectors = [
        aarq_vector("aarq_ln_no_auth", Authentication.NONE),
        aarq_vector("aarq_lls", Authentication.LOW, password=b"12345678"),
        aarq_vector("aarq_hls_gmac_ciphered", Authentication.HIGH_GMAC, ciphered=True),
        aarq_vector("aarq_hls_md5", Authentication.HIGH_MD5),
        aarq_vector("aarq_hls_sha1", Authentication.HIGH_SHA1),
        aarq_vector("aarq_hls_sha256", Authentication.HIGH_SHA256, title=True),
    ]

    # Gurux's own server-side AARE generator, no authentication: well formed.
    none = server_aare(Authentication.NONE)
    vectors.append(parse_aare("aare_gurux_server_ln_no_auth", none, Authentication.NONE))

    # HLS AAREs built to the standard and parsed by the Gurux client.
    vectors.append(
        parse_aare(
            "aare_hls_md5",
            hls_aare(3, None, initiate_response()),
            Authentication.HIGH_MD5,
        )
    )
    p = AesGcmParameter(Command.GLO_INITIATE_RESPONSE, SERVER_TITLE, BLOCK_KEY, AUTH_KEY)
    p.security = Security.AUTHENTICATION_ENCRYPTION
    p.invocationCounter = 0x01
    glo = bytes(GXCiphering.encrypt(p, initiate_response()))
    vectors.append(
        parse_aare(
            "aare_hls_gmac_ciphered",
            hls_aare(5, SERVER_TITLE, glo),
            Authentication.HIGH_GMAC,
            ciphered=True,
        )
    )

    # Gurux 1.0.203 server-side HLS AARE: [10] is written with the length of the challenge
    # instead of challenge + 2, so the TLV lies about its contents. We must reject it.
    vectors.append(
        {
            "name": "aare_gurux_server_hls_quirk",
            "kind": "aare",
            "hex": hx(server_aare(Authentication.HIGH_MD5)),
            "reject": True,
            "note": "Gurux 1.0.203 generateAARE writes AA <len(challenge)> 80 <len(challenge)>",
        }
    )

    vectors.append(rlrq_vector("rlrq_plain", False))
    vectors.append(rlrq_vector("rlrq_protected", True))

    return vectors


def main():
    with contextlib.redirect_stdout(io.StringIO()):
        vectors = collect()
    out = os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "gurux", "acse.json"
    )
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"generator": "gurux-dlms 1.0.203", "vectors": vectors}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
