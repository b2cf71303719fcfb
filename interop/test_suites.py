"""Security suite 1 against an independent peer: Gurux's client (its own ECDSA and P-256
arithmetic) authenticates with HLS-ECDSA (mechanism 7) and authenticated encryption at suite
1 to `hes sim --suite 1`, over both transports, and refuses a meter whose signature does not
verify under the key it was given.

The other direction is not possible: the Gurux Python server has no HLS-ECDSA. Suite 2 is not
tested: Gurux's Python ECDSA hashes P-384 with SHA-256.
"""

import os
import subprocess
import sys
import tempfile

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from gurux_dlms import GXDLMSClient, GXDLMSException, GXReplyData
from gurux_dlms.ecdsa.GXPrivateKey import GXPrivateKey
from gurux_dlms.ecdsa.GXPublicKey import GXPublicKey
from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.objects import GXDLMSRegister
from gurux_dlms.objects.enums.SecuritySuite import SecuritySuite
from gurux_dlms.secure import GXDLMSSecureClient

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gurux_client  # noqa: E402
from test_interop import AK, EK, hes_bin, start, stop  # noqa: E402


@pytest.fixture(scope="module", params=["wrapper", "hdlc"])
def sim1(request):
    pki = tempfile.mkdtemp(prefix="hes-suite1-")
    cmd = [hes_bin(), "sim", "--port", "0", "--profile-entries", "96", "--suite", "1", "--pki-dir", pki]
    if request.param == "hdlc":
        cmd.append("--hdlc")
    p, port, _ = start(cmd)
    yield request.param, port, pki
    stop(p)


def raw_keys(pki, meter_cert=None):
    """Gurux takes the bare scalar and the SEC1 point."""
    with open(os.path.join(pki, "hes-key.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    priv = GXPrivateKey.fromRawBytes(key.private_numbers().private_value.to_bytes(32, "big"))
    if meter_cert is None:
        out = subprocess.run(
            ["openssl", "x509", "-in", os.path.join(pki, "meters", "MTR00000001.pem"), "-pubkey", "-noout"],
            capture_output=True, check=True, timeout=30,
        ).stdout
        point = serialization.load_pem_public_key(out)
    else:
        point = meter_cert
    pub = GXPublicKey.fromRawBytes(
        point.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return pub, priv


def read_register(transport, port, pki, ic, meter_key=None):
    hdlc = transport == "hdlc"
    server = GXDLMSClient.getServerAddress(1, 16) if hdlc else 1
    itype = InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER
    c = GXDLMSSecureClient(True, 1, server, Authentication.HIGH_ECDSA, None, itype)
    c.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
    c.ciphering.securitySuite = SecuritySuite.SUITE_1
    c.ciphering.systemTitle = bytes.fromhex("4D4D4D0000000001")
    c.ciphering.blockCipherKey = bytes.fromhex(EK)
    c.ciphering.authenticationKey = bytes.fromhex(AK)
    c.ciphering.invocationCounter = ic
    c.ciphering.signingKeyPair = raw_keys(pki, meter_key)
    link = gurux_client.Link(c, "127.0.0.1", port, 10)
    try:
        reply = GXReplyData()
        if hdlc:
            link.exchange(c.snrmRequest(), reply)
            c.parseUAResponse(reply.data)
            reply.clear()
        link.block(c.aarqRequest(), reply)
        c.parseAareResponse(reply.data)
        reply.clear()
        for data in c.getApplicationAssociationRequest():
            link.exchange(data, reply)
        c.parseApplicationAssociationResponse(reply.data)
        return gurux_client.get(c, link, GXDLMSRegister("1.0.1.8.0.255"), 2), c.ciphering.invocationCounter
    finally:
        try:
            gurux_client.release(c, link)
        except TypeError:
            # Gurux has no release request for an association it refused itself.
            link.close()


def test_gurux_reads_a_suite_1_meter_with_hls_ecdsa(sim1):
    transport, port, pki = sim1
    value, ic = read_register(transport, port, pki, 1)
    assert isinstance(value, int) and value > 0
    # A second session continues the invocation counter.
    again, _ = read_register(transport, port, pki, ic)
    assert again >= value


def test_gurux_refuses_a_meter_signature_under_another_key(sim1):
    transport, port, pki = sim1
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    # Gurux 1.0.203 reports the failed check with an UnboundLocalError (its message refers
    # to a variable only the other mechanisms set): it is raised in the branch where the
    # meter's f(CtoS) did not verify.
    with pytest.raises((GXDLMSException, UnboundLocalError)) as e:
        read_register(transport, port, pki, 1000, meter_key=stranger)
    assert "parseApplicationAssociationResponse" in "".join(
        str(f.name) for f in e.traceback
    )
