#!/usr/bin/env python3
"""A second independent DLMS client, the `dlms-cosem` package (PyPI), reading our simulator over
the wrapper. Prints JSON: each attribute's raw A-XDR encoding in hex (dlms-cosem returns bytes).

    dlms_cosem_client.py --host H --port P [--client 16|17|1] [--password TEXT]
        [--ek HEX --ak HEX --system-title HEX --invocation-counter N] CLASS/OBIS/ATTR...
"""

import argparse
import contextlib
import json
import sys

from dlms_cosem import cosem, enumerations
from dlms_cosem.client import DlmsClient
from dlms_cosem.cosem.obis import Obis
from dlms_cosem.io import BlockingTcpIO, TcpTransport
from dlms_cosem.security import (
    HighLevelSecurityGmacAuthentication,
    LowLevelSecurityAuthentication,
    NoSecurityAuthentication,
)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client", type=int, default=16)
    p.add_argument("--password", default="12345678")
    p.add_argument("--ek", default="000102030405060708090A0B0C0D0E0F")
    p.add_argument("--ak", default="D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
    p.add_argument("--system-title", default="4D4D4D0000000002")
    p.add_argument("--invocation-counter", type=int, default=1)
    p.add_argument("objects", nargs="+")
    a = p.parse_args()
    transport = TcpTransport(
        client_logical_address=a.client, server_logical_address=1,
        io=BlockingTcpIO(host=a.host, port=a.port, timeout=10), timeout=10,
    )
    kw = {}
    if a.client == 1:
        auth = HighLevelSecurityGmacAuthentication(challenge_length=16)
        kw = dict(
            encryption_key=bytes.fromhex(a.ek), authentication_key=bytes.fromhex(a.ak),
            client_system_title=bytes.fromhex(a.system_title),
            client_initial_invocation_counter=a.invocation_counter,
        )
    elif a.client == 17:
        auth = LowLevelSecurityAuthentication(secret=a.password.encode())
    else:
        auth = NoSecurityAuthentication()
    client = DlmsClient(transport=transport, authentication=auth, **kw)
    out = []
    with client.session() as c:
        for ref in a.objects:
            cls, obis, attr = ref.split("/")
            value = c.get(cosem.CosemAttribute(
                interface=enumerations.CosemInterface(int(cls)),
                instance=Obis.from_string(obis), attribute=int(attr),
            ))
            out.append({"object": ref, "axdr": bytes(value).hex()})
    return out


if __name__ == "__main__":
    real = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        try:
            result = main()
        except Exception as e:  # noqa: BLE001 - any failure is reported as JSON
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), file=real)
            sys.exit(1)
    print(json.dumps({"objects": result}), file=real)
