#!/usr/bin/env python3
"""Records HDLC and wrapper frames from Gurux DLMS for Python into testdata/gurux/link.json.

    python3 interop/vectors/link.py      (gurux-dlms==1.0.203)

Each vector is the exact bytes Gurux's client sends, with what they must decode to (addresses and
control as Gurux was configured), so the Rust test checks our deframer, CRC and address coding
against an independent encoder. Deterministic: no keys, no clock.
"""

import contextlib
import io
import json
import os

from gurux_dlms import GXDLMSClient
from gurux_dlms.enums import Authentication, InterfaceType

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "testdata", "gurux", "link.json")


def client(itype, server, client_sap=16, auth=Authentication.NONE, password=None):
    return GXDLMSClient(True, client_sap, server, auth, password, itype)


def frames(msgs):
    return [bytes(m).hex().upper() for m in msgs]


def main():
    vectors = []
    with contextlib.redirect_stdout(io.StringIO()):
        for logical, physical, size in [(1, 16, 2), (1, 0x1234, 4), (1, None, 1)]:
            if physical is None:
                # One byte carries the upper (logical) address alone; Gurux's getServerAddress
                # would put the physical address there, so give it the value directly.
                server = logical
            else:
                server = GXDLMSClient.getServerAddress(logical, physical, size)
            c = client(InterfaceType.HDLC, server)
            c.serverAddressSize = size
            vectors.append({
                "name": f"snrm-{size}-byte-server-address",
                "frames": [frames([c.snrmRequest()])[0]],
                "client_sap": 16, "logical": logical, "physical": physical, "size": size,
                "control": "SNRM",
            })
            c2 = client(InterfaceType.HDLC, server, 17, Authentication.LOW, "12345678")
            c2.serverAddressSize = size
            vectors.append({
                "name": f"aarq-lls-{size}-byte-server-address",
                "frames": frames(c2.aarqRequest()),
                "client_sap": 17, "logical": logical, "physical": physical, "size": size,
                "control": "I",
            })
        c = client(InterfaceType.HDLC, GXDLMSClient.getServerAddress(1, 16), 16)
        c.hdlcSettings.maxInfoTX = 512
        c.hdlcSettings.maxInfoRX = 256
        c.hdlcSettings.windowSizeTX = 7
        c.hdlcSettings.windowSizeRX = 7
        vectors.append({
            "name": "snrm-with-parameters",
            "frames": [frames([c.snrmRequest()])[0]],
            "client_sap": 16, "logical": 1, "physical": 16, "size": 2, "control": "SNRM",
            "params": {"max_info_tx": 512, "max_info_rx": 256, "window_tx": 7, "window_rx": 7},
        })
        c = client(InterfaceType.HDLC, GXDLMSClient.getServerAddress(1, 16), 16)
        vectors.append({
            "name": "disc", "frames": [frames([c.disconnectRequest(True)])[0]],
            "client_sap": 16, "logical": 1, "physical": 16, "size": 2, "control": "DISC",
        })
        w = client(InterfaceType.WRAPPER, 1, 16)
        vectors.append({"name": "wrapper-aarq", "frames": frames(w.aarqRequest()), "source": 16, "destination": 1})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "gurux-dlms 1.0.203", "vectors": vectors}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
