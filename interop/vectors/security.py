#!/usr/bin/env python3
"""Produce suite-0 security vectors with Gurux (gurux-dlms==1.0.203) for crates/dlms/src/security.

Run from the repository root: python3 interop/vectors/security.py
Writes testdata/gurux/security.json. Inputs are the Green Book example values; every output is
computed by Gurux so that our implementation is checked against an independent one.
"""

import json
import os

from gurux_dlms.AesGcmParameter import AesGcmParameter
from gurux_dlms.CountType import CountType
from gurux_dlms.GXCiphering import GXCiphering
from gurux_dlms.GXDLMSChippering import GXDLMSChippering
from gurux_dlms.GXDLMSSettings import GXDLMSSettings
from gurux_dlms.GXSecure import GXSecure
from gurux_dlms.enums import Authentication, Security
from gurux_dlms.enums.Command import Command
from gurux_dlms.secure.GXDLMSSecureClient import GXDLMSSecureClient

SYSTEM_TITLE = bytes.fromhex("4D4D4D0000BC614E")
PEER_SYSTEM_TITLE = bytes.fromhex("4D4D4D0000000001")
IC = 0x01234567
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
PLAIN = bytes.fromhex("C0010000080000010000FF0200")  # get-request: clock (class 8) 0.0.1.0.0.255 attribute 2
CTOS = bytes.fromhex("4B35366956616759")  # "K56iVagY"
STOC = bytes.fromhex("503450A8D6C5A71E2F3B8E9C4D1A2B3C")
SECRET = b"Gurux"
HLS_IC = 0x00000001


def hx(b):
    return bytes(b).hex().upper()


def protect(tag, security, system_title=SYSTEM_TITLE, ic=IC, plain=PLAIN):
    p = AesGcmParameter(tag, system_title, EK, AK)
    p.security = security
    p.invocationCounter = ic
    p.type_ = CountType.PACKET
    return bytes(GXDLMSChippering.encryptAesGcm(p, bytearray(plain)))


def strip_tag_and_len(apdu):
    # Service-specific APDUs here are shorter than 0x80, so the length is one byte.
    assert apdu[1] < 0x80 and apdu[1] == len(apdu) - 2
    return apdu[2:]


def hls(auth, challenge, secret, ic=0):
    settings = GXDLMSSettings(False, None)
    settings.authentication = auth
    settings.cipher = GXCiphering(SYSTEM_TITLE)
    settings.cipher.blockCipherKey = bytearray(EK)
    settings.cipher.authenticationKey = bytearray(AK)
    return bytes(GXSecure.secure(settings, settings.cipher, ic, bytearray(challenge), secret))


def main():
    out = {
        "inputs": {
            "system_title": hx(SYSTEM_TITLE),
            "peer_system_title": hx(PEER_SYSTEM_TITLE),
            "ic": IC,
            "ek": hx(EK),
            "ak": hx(AK),
            "plaintext": hx(PLAIN),
            "ctos": hx(CTOS),
            "stoc": hx(STOC),
            "secret": hx(SECRET),
            "hls_ic": HLS_IC,
        }
    }
    glo_30 = protect(Command.GLO_GET_REQUEST, Security.AUTHENTICATION_ENCRYPTION)
    out["low_level"] = {
        "sc10": hx(strip_tag_and_len(protect(Command.GLO_GET_REQUEST, Security.AUTHENTICATION))),
        "sc20": hx(strip_tag_and_len(protect(Command.GLO_GET_REQUEST, Security.ENCRYPTION))),
        "sc30": hx(strip_tag_and_len(glo_30)),
    }
    out["glo_get_request_sc30"] = hx(glo_30)
    out["ded_get_request_sc30"] = hx(
        protect(Command.DED_GET_REQUEST, Security.AUTHENTICATION_ENCRYPTION)
    )
    out["general_glo_sc30"] = hx(
        protect(Command.GENERAL_GLO_CIPHERING, Security.AUTHENTICATION_ENCRYPTION)
    )
    out["general_glo_sc10"] = hx(
        protect(Command.GENERAL_GLO_CIPHERING, Security.AUTHENTICATION)
    )

    # HLS-GMAC as the client answers the server's challenge: SC || IC || GMAC tag, keyed with
    # the client's own system title and IC.
    cipher = GXCiphering(SYSTEM_TITLE)
    cipher.blockCipherKey = bytearray(EK)
    cipher.authenticationKey = bytearray(AK)
    cipher.invocationCounter = HLS_IC
    out["hls_gmac_stoc"] = hx(cipher.generateGmacPassword(bytearray(STOC)))
    out["hls_gmac_stoc_via_secure"] = hx(
        hls(Authentication.HIGH_GMAC, STOC, bytearray(SYSTEM_TITLE), HLS_IC)
    )
    out["hls_md5_stoc"] = hx(hls(Authentication.HIGH_MD5, STOC, bytearray(SECRET)))
    out["hls_sha1_stoc"] = hx(hls(Authentication.HIGH_SHA1, STOC, bytearray(SECRET)))
    # The client's f(StoC): Gurux hashes secret || ST-C || ST-S || StoC || CtoS (built by the
    # caller, GXDLMSClient.getApplicationAssociationRequest), the server's f(CtoS) swaps both pairs.
    client_pw = SECRET + SYSTEM_TITLE + PEER_SYSTEM_TITLE + STOC + CTOS
    server_pw = SECRET + PEER_SYSTEM_TITLE + SYSTEM_TITLE + CTOS + STOC
    out["hls_sha256_client_f_stoc"] = hx(
        hls(Authentication.HIGH_SHA256, STOC, bytearray(client_pw))
    )
    out["hls_sha256_server_f_ctos"] = hx(
        hls(Authentication.HIGH_SHA256, CTOS, bytearray(server_pw))
    )

    kek = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    wrapped = bytes(GXDLMSSecureClient.encrypt(bytearray(kek), bytearray(key)))
    out["key_wrap"] = {"kek": hx(kek), "key": hx(key), "wrapped": hx(wrapped)}

    path = os.path.join(os.path.dirname(__file__), "..", "..", "testdata", "gurux", "security.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
