#!/usr/bin/env python3
"""A DLMS client built on the Gurux DLMS library for Python: the independent peer that reads
our simulator (`hes sim`). Its options mirror `hes read`.

    gurux_client.py --host H --port P [--hdlc] [--client SAP] [--server-logical N]
        [--server-physical N] [--auth none|lls|hls-gmac] [--password TEXT]
        [--security none|auth-enc] [--ek HEX --ak HEX --system-title HEX]
        [--invocation-counter N | --ic-obis OBIS] [--max-pdu N] [--timeout S]
        [--entries FROM:COUNT] [--action CLASS/OBIS/METHOD] [--repeat N] OBJECT...

Prints one JSON document. Exit 0: all succeeded; 1: could not connect or associate; 2: some
object failed. `--repeat N` runs N full sessions and prints their rate instead (the benchmark
peer).
"""

import argparse
import contextlib
import json
import socket
import sys
import time

from gurux_dlms import GXByteBuffer, GXDateTime, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, DataType, InterfaceType, ObjectType, Security
from gurux_dlms.GXDLMSException import GXDLMSException
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)
from gurux_dlms.secure import GXDLMSSecureClient

CLASSES = {
    1: GXDLMSData,
    3: GXDLMSRegister,
    7: GXDLMSProfileGeneric,
    8: GXDLMSClock,
    15: GXDLMSAssociationLogicalName,
    70: GXDLMSDisconnectControl,
}


class Link:
    """One TCP connection driven by the Gurux client's framing."""

    def __init__(self, client, host, port, timeout):
        self.client = client
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)

    def exchange(self, data, reply):
        if data is None:
            return
        self.sock.sendall(bytes(data))
        buf = GXByteBuffer()
        while not self.client.getData(buf, reply, None):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buf.set(chunk)
        if reply.error != 0:
            raise GXDLMSException(reply.error)

    def block(self, frames, reply):
        """Sends a request (one or more frames) and reads every block of the answer."""
        if isinstance(frames, (bytes, bytearray)):
            frames = [frames]
        for frame in frames:
            reply.clear()
            self.exchange(frame, reply)
            while reply.isMoreData():
                data = None if reply.isStreaming() else self.client.receiverReady(reply)
                self.exchange(data, reply)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def make_client(a, ic):
    auth = {"none": Authentication.NONE, "lls": Authentication.LOW, "hls-gmac": Authentication.HIGH_GMAC}[a.auth]
    itype = InterfaceType.HDLC if a.hdlc else InterfaceType.WRAPPER
    server = GXDLMSClient.getServerAddress(a.server_logical, a.server_physical) if a.hdlc else a.server_logical
    c = GXDLMSSecureClient(True, a.client, server, auth, a.password, itype)
    c.setMaxReceivePDUSize(a.max_pdu)
    if a.auth == "hls-gmac" or a.security != "none":
        c.ciphering.security = Security.AUTHENTICATION_ENCRYPTION if a.security == "auth-enc" else Security.NONE
        c.ciphering.systemTitle = bytes.fromhex(a.system_title)
        c.ciphering.blockCipherKey = bytes.fromhex(a.ek)
        c.ciphering.authenticationKey = bytes.fromhex(a.ak)
        c.ciphering.invocationCounter = ic
    return c


def associate(a, ic):
    c = make_client(a, ic)
    link = Link(c, a.host, a.port, a.timeout)
    reply = GXReplyData()
    if a.hdlc:
        link.exchange(c.snrmRequest(), reply)
        c.parseUAResponse(reply.data)
        reply.clear()
    link.block(c.aarqRequest(), reply)
    c.parseAareResponse(reply.data)
    reply.clear()
    if c.authentication > Authentication.LOW:
        for data in c.getApplicationAssociationRequest():
            link.exchange(data, reply)
        c.parseApplicationAssociationResponse(reply.data)
    return c, link


def release(c, link):
    try:
        reply = GXReplyData()
        link.block(c.releaseRequest(), reply)
        if link.client.interfaceType == InterfaceType.HDLC:
            reply.clear()
            link.exchange(c.disconnectRequest(), reply)
    except (OSError, GXDLMSException, ValueError):
        pass
    link.close()


def render(v):
    """Gurux's Python values as JSON (types as Gurux sees them)."""
    if isinstance(v, (bytes, bytearray)):
        return {"type": "octet-string", "value": bytes(v).hex()}
    if isinstance(v, GXDateTime):
        return {"type": "date-time", "value": v.value.isoformat() if v.value else None}
    if isinstance(v, (list, tuple)):
        return [render(x) for x in v]
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if hasattr(v, "value") and isinstance(getattr(v, "value"), (int, float, str)):
        return v.value
    return str(v)


def parse_ref(s):
    cls, obis, n = s.split("/")
    return int(cls), obis, int(n)


def read_ic(a):
    """The invocation counter through the public client, to continue from it."""
    pub = argparse.Namespace(**vars(a))
    pub.client, pub.auth, pub.security, pub.password = 16, "none", "none", None
    c, link = associate(pub, 0)
    try:
        obj = GXDLMSData(a.ic_obis)
        reply = GXReplyData()
        link.block(c.read(obj, 2), reply)
        return int(c.updateValue(obj, 2, reply.value) or obj.value) + 1
    finally:
        release(c, link)


# --- helpers for the fleet tests (test_fleet.py) --------------------------------------------

#: The client's own system title in the HLS-GMAC tests (Gurux's ciphering.systemTitle).
CLIENT_SYSTEM_TITLE = "4D4D4D0000000001"


def inventory_args(m, level, **overrides):
    """`associate()`'s arguments for one meter of a `hes sim --inventory` file at a level
    ("none", "lls", "hls-gmac"), with the meter's own SAPs, password and keys."""
    saps = {"none": m["client_sap_public"], "lls": m["client_sap_reader"],
            "hls-gmac": m["client_sap_management"]}
    a = argparse.Namespace(
        host=m["host"], port=m["port"], hdlc=m["transport"] == "hdlc", client=saps[level],
        server_logical=m["hdlc_server_logical"], server_physical=m["hdlc_server_physical"],
        auth=level, password=m["password"] if level == "lls" else None,
        security="auth-enc" if level == "hls-gmac" else "none", ek=m["ek"], ak=m["ak"],
        system_title=CLIENT_SYSTEM_TITLE, invocation_counter=1,
        ic_obis="0.0.43.1.0.255" if level == "hls-gmac" else None,
        max_pdu=0xFFFF, timeout=10.0, entries=None, action=None, repeat=1,
    )
    for k, v in overrides.items():
        setattr(a, k, v)
    return a


def open_session(a, ic=None):
    """Associates; for HLS-GMAC continues from the counter read through the public client
    unless `ic` is given. Returns (client, link)."""
    if ic is None:
        ic = read_ic(a) if a.ic_obis else a.invocation_counter
    return associate(a, ic)


def get(c, link, obj, attr):
    """Reads one attribute (all its blocks); returns Gurux's value. Raises GXDLMSException
    with the DataAccessResult when the meter answers with an error."""
    reply = GXReplyData()
    link.block(c.read(obj, attr), reply)
    return reply.value


#: AccessMode values (Association LN version < 3) that allow reading. Gurux's own
#: `GXDLMSObject.canRead` is true for every mode but no-access (see README, Gurux quirks).
READABLE = {1, 3, 4, 6}


def object_list(c, link):
    """Reads 0.0.40.0.0.255 attribute 2 and returns [(object, [(attribute, access mode)])],
    every object of the list (known to Gurux or not)."""
    reply = GXReplyData()
    link.block(c.getObjectsRequest(), reply)
    objects = c.parseObjects(reply.data, False, False)
    out = []
    for obj in objects:
        rights = sorted((int(att.index), int(att.access)) for att in obj.attributes)
        out.append((obj, rights))
    return out


def profile_columns(c, link, pg):
    """Reads a profile's capture objects (Gurux needs them to parse the buffer)."""
    c.updateValue(pg, 3, get(c, link, pg, 3))
    return pg.captureObjects


def profile_range(c, link, pg, start, end):
    """Rows of a profile by range (clock column, `start`..`end` as aware datetimes)."""
    reply = GXReplyData()
    link.block(c.readRowsByRange(pg, start, end), reply)
    c.updateValue(pg, 2, reply.value)
    return pg.buffer


def profile_entries(c, link, pg, first, count):
    """Rows of a profile by entry (1-based `first`, `count` rows; 0 = to the end)."""
    reply = GXReplyData()
    link.block(c.readRowsByEntry(pg, first, count), reply)
    c.updateValue(pg, 2, reply.value)
    return pg.buffer


def unix(v):
    """A Gurux date-time (or datetime) as Unix seconds."""
    dt = v.value if isinstance(v, GXDateTime) else v
    return int(dt.timestamp())


def session(a, refs, ic):
    c, link = associate(a, ic)
    objects, failed = [], False
    try:
        for cls, obis, attr in refs:
            o = {"class": cls, "obis": obis, "attribute": attr}
            try:
                obj = CLASSES.get(cls, GXDLMSData)(obis)
                reply = GXReplyData()
                if cls == 7 and attr == 2:
                    # Gurux needs the columns first to parse the buffer.
                    link.block(c.read(obj, 3), reply)
                    c.updateValue(obj, 3, reply.value)
                    reply = GXReplyData()
                    if a.entries:
                        start, count = (int(x) for x in a.entries.split(":"))
                        link.block(c.readRowsByEntry(obj, start, count), reply)
                    else:
                        link.block(c.read(obj, 2), reply)
                    c.updateValue(obj, 2, reply.value)
                    o["rows"] = [[render(x) for x in row] for row in obj.buffer]
                    o["columns"] = len(obj.captureObjects)
                else:
                    link.block(c.read(obj, attr), reply)
                    o["value"] = render(reply.value)
                    o["datatype"] = int(reply.valueType) if reply.valueType is not None else None
            except GXDLMSException as e:
                failed = True
                o["error"] = {"code": int(e.errorCode), "message": str(e)}
            objects.append(o)
        if a.action:
            cls, obis, m = parse_ref(a.action)
            o = {"class": cls, "obis": obis, "method": m}
            try:
                obj = CLASSES.get(cls, GXDLMSData)(obis)
                reply = GXReplyData()
                link.block(c.method(obj, m, 0, DataType.INT8), reply)
                o["result"] = "success"
            except GXDLMSException as e:
                failed = True
                o["error"] = {"code": int(e.errorCode), "message": str(e)}
            objects.append(o)
        next_ic = c.ciphering.invocationCounter if a.auth == "hls-gmac" or a.security != "none" else None
    finally:
        release(c, link)
    return objects, failed, next_ic


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--hdlc", action="store_true")
    p.add_argument("--client", type=int, default=16)
    p.add_argument("--server-logical", type=int, default=1)
    p.add_argument("--server-physical", type=int, default=16)
    p.add_argument("--auth", choices=["none", "lls", "hls-gmac"], default="none")
    p.add_argument("--password")
    p.add_argument("--security", choices=["none", "auth-enc"], default="none")
    p.add_argument("--ek", default="000102030405060708090A0B0C0D0E0F")
    p.add_argument("--ak", default="D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
    p.add_argument("--system-title", default="4D4D4D0000000001")
    p.add_argument("--invocation-counter", type=int, default=1)
    p.add_argument("--ic-obis")
    p.add_argument("--max-pdu", type=int, default=0xFFFF)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--entries")
    p.add_argument("--action")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("objects", nargs="*")
    a = p.parse_args()
    refs = [parse_ref(s) for s in a.objects]
    doc = {"host": a.host, "port": a.port, "transport": "hdlc" if a.hdlc else "wrapper", "client": a.client}
    try:
        ic = read_ic(a) if a.ic_obis else a.invocation_counter
        started = time.perf_counter()
        for i in range(a.repeat):
            objects, failed, next_ic = session(a, refs, ic)
            if next_ic is not None:
                ic = next_ic
            if failed and a.repeat > 1:
                raise RuntimeError(f"session {i} failed: {objects}")
        secs = time.perf_counter() - started
    except (OSError, GXDLMSException, ValueError, RuntimeError, Exception) as e:  # noqa: BLE001
        doc["error"] = {"reason": type(e).__name__, "message": str(e)}
        print_json(doc)
        return 1
    if a.repeat > 1:
        doc.update({"sessions": a.repeat, "seconds": secs, "per_second": a.repeat / secs})
        print_json(doc)
        return 0
    doc["objects"] = objects
    print_json(doc)
    return 2 if failed else 0


if __name__ == "__main__":
    # Gurux prints notes on stdout while ciphering: keep stdout for our JSON alone.
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        print_json = lambda d: print(json.dumps(d, indent=2, default=str), file=real_stdout)  # noqa: E731
        sys.exit(main())
