#!/usr/bin/env python3
"""Byte-exact link-layer vectors (HDLC and the TCP wrapper) from Gurux (gurux-dlms==1.0.203).

Each HDLC vector is paired with the same request made by a WRAPPER client, whose frame carries
the bare APDU: the Rust test then checks that the HDLC info field is the LLC header followed by
exactly that APDU, without trusting Gurux's HDLC code to tell us where the fields are.
Writes testdata/gurux/link.json (run from the repository root):

    python3 interop/vectors/link.py
"""

import json
import os
import sys

from gurux_dlms import GXByteBuffer, GXDLMSClient
from gurux_dlms.GXDLMS import GXDLMS
from gurux_dlms.enums import DataType, InterfaceType, RequestTypes
from gurux_dlms.objects import GXDLMSData, GXDLMSRegister

OUT = os.path.join("testdata", "gurux", "link.json")
CLIENT = 16


def client(kind, server_address=1, size=0):
    c = GXDLMSClient(True, CLIENT, server_address, interfaceType=kind)
    if size:
        c.serverAddressSize = size
    return c


def frames(messages):
    if isinstance(messages, (bytes, bytearray)):
        return [bytes(messages).hex().upper()]
    return [bytes(m).hex().upper() for m in messages]


def wrapper_apdu(frame):
    frame = bytes(frame)
    assert frame[:2] == b"\x00\x01"
    length = int.from_bytes(frame[6:8], "big")
    assert len(frame) == 8 + length
    return frame[8:].hex().upper()


def addr(value, size):
    return bytes(GXDLMS.getAddressBytes(value, size)).hex().upper()


def main():
    vectors = []

    # SNRM with the defaults: Gurux leaves the info field out entirely.
    c = client(InterfaceType.HDLC)
    vectors.append(dict(name="snrm_default", kind="snrm", frames=frames(c.snrmRequest()),
                        dest=addr(1, 1), src=addr(CLIENT, 1),
                        max_info_tx=128, max_info_rx=128, window_tx=1, window_rx=1))

    # SNRM with non-default limits (one 1-byte and one 2-byte size, windows other than 1).
    c = client(InterfaceType.HDLC)
    c.hdlcSettings.maxInfoTX = 200
    c.hdlcSettings.maxInfoRX = 1024
    c.hdlcSettings.windowSizeTX = 7
    c.hdlcSettings.windowSizeRX = 3
    vectors.append(dict(name="snrm_custom", kind="snrm", frames=frames(c.snrmRequest()),
                        dest=addr(1, 1), src=addr(CLIENT, 1),
                        max_info_tx=200, max_info_rx=1024, window_tx=7, window_rx=3))

    # UA parameter fields we build; Gurux says how a client reads them (from the client's view:
    # the server's max_info_rx is the client's max_info_tx).
    for name, info in [
        ("ua_one_byte", "818000050180060180070101080101"),
        ("ua_two_byte", "81800005020400060201F4070107080103"),
        ("ua_four_byte", "818000050400000100060400000F00070400000007080400000002"),
    ]:
        # The group length byte is filled in here so that the table stays readable.
        raw = bytes.fromhex(info)
        raw = raw[:2] + bytes([len(raw) - 3]) + raw[3:]
        c = client(InterfaceType.HDLC)
        c.parseUAResponse(GXByteBuffer(raw))
        h = c.hdlcSettings
        vectors.append(dict(name=name, kind="ua", info=raw.hex().upper(),
                            client_max_info_tx=h.maxInfoTX, client_max_info_rx=h.maxInfoRX,
                            client_window_tx=h.windowSizeTX, client_window_rx=h.windowSizeRX))

    # AARQ framed in HDLC with 1-, 2- and 4-byte server addresses.
    for name, logical, physical, size in [
        ("aarq_addr1", 1, 0, 1),
        ("aarq_addr2", 1, 17, 2),
        ("aarq_addr4", 1, 0x1234, 4),
    ]:
        if size == 1:
            value = logical
        else:
            value = GXDLMSClient.getServerAddress(logical, physical, size)
        h = client(InterfaceType.HDLC, value, size)
        h.snrmRequest()
        w = client(InterfaceType.WRAPPER, value)
        vectors.append(dict(name=name, kind="i", frames=frames(h.aarqRequest()),
                            apdu=wrapper_apdu(w.aarqRequest()[0]),
                            dest=addr(value, size), src=addr(CLIENT, 1),
                            logical=logical, physical=physical if size > 1 else None,
                            size=size))

    # A get-request, framed in HDLC and in the wrapper.
    reg = GXDLMSRegister("1.0.1.8.0.255")
    h = client(InterfaceType.HDLC)
    h.snrmRequest()
    w = client(InterfaceType.WRAPPER)
    vectors.append(dict(name="get_request", kind="i", frames=frames(h.read(reg, 2)),
                        apdu=wrapper_apdu(w.read(reg, 2)[0]),
                        dest=addr(1, 1), src=addr(CLIENT, 1)))
    wf = w.read(reg, 2)[0]
    vectors.append(dict(name="wrapper_get_request", kind="wrapper", frames=frames(wf),
                        source=CLIENT, destination=1, apdu=wrapper_apdu(wf)))
    wf = w.aarqRequest()[0]
    vectors.append(dict(name="wrapper_aarq", kind="wrapper", frames=frames(wf),
                        source=CLIENT, destination=1, apdu=wrapper_apdu(wf)))

    # A write of a 300-byte octet string: Gurux splits it into I frames of max_info 128.
    data = GXDLMSData("0.0.96.1.0.255")
    data.value = bytes(range(256)) + bytes(44)
    data.setDataType(2, DataType.OCTET_STRING)
    h = client(InterfaceType.HDLC)
    h.snrmRequest()
    h.maxReceivePDUSize = 1024
    w = client(InterfaceType.WRAPPER)
    w.maxReceivePDUSize = 1024
    # write() returns the frames of one PDU as a flat list here.
    hf = h.write(data, 2)
    assert len(hf) == 3, hf
    wf = w.write(data, 2)
    assert len(wf) == 1, wf
    vectors.append(dict(name="write_segmented", kind="i", frames=frames(hf),
                        apdu=wrapper_apdu(wf[0]), dest=addr(1, 1), src=addr(CLIENT, 1)))

    # A receiver-ready frame, asking for the next segment of a reply.
    h = client(InterfaceType.HDLC)
    h.snrmRequest()
    h.read(reg, 2)
    vectors.append(dict(name="rr", kind="s", frames=frames(h.receiverReady(RequestTypes.FRAME)),
                        dest=addr(1, 1), src=addr(CLIENT, 1)))

    # DISC.
    h = client(InterfaceType.HDLC)
    vectors.append(dict(name="disc", kind="s", frames=frames(h.disconnectRequest(True)),
                        dest=addr(1, 1), src=addr(CLIENT, 1)))

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "gurux-dlms 1.0.203 via interop/vectors/link.py",
                   "vectors": vectors}, f, indent=1)
        f.write("\n")
    for v in vectors:
        print(v["name"], v.get("frames", v.get("info")), file=sys.stderr)


if __name__ == "__main__":
    main()
