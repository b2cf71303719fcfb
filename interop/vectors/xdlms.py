#!/usr/bin/env python3
"""Byte-exact xDLMS APDU vectors from Gurux (gurux-dlms==1.0.203), our reference peer.

Requests come from GXDLMSClient, responses from a GXDLMSServer answering those requests. The
wrapper interface type is used so that the APDU is whatever follows the 8-byte wrapper header.
Writes testdata/gurux/xdlms.json (run from the repository root):

    python3 interop/vectors/xdlms.py
"""

import json
import os
import sys
from datetime import datetime

from gurux_dlms import (
    GXByteBuffer,
    GXDateTime,
    GXDLMSClient,
    GXDLMSNotify,
    GXDLMSServer,
    GXServerReply,
)
from gurux_dlms.GXDLMSLNParameters import GXDLMSLNParameters
from gurux_dlms.ValueEventArgs import ValueEventArgs
from gurux_dlms.enums import (
    AccessMode,
    Authentication,
    Conformance,
    DataType,
    InterfaceType,
    MethodAccessMode,
    RequestTypes,
    SourceDiagnostic,
)
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)

WRAPPER_HEADER = 8
OUT = os.path.join("testdata", "gurux", "xdlms.json")


def apdu(frame):
    """The APDU of one wrapper frame (version, source, destination, length, then the APDU)."""
    frame = bytes(frame)
    length = int.from_bytes(frame[6:8], "big")
    body = frame[WRAPPER_HEADER:]
    assert len(body) == length, (len(body), length)
    return body


def single(frames):
    # receiverReady returns one frame, readList one list of frames per PDU.
    if isinstance(frames, (bytes, bytearray)):
        return apdu(frames)
    if frames and isinstance(frames[0], list):
        assert len(frames) == 1
        frames = frames[0]
    assert len(frames) == 1, "expected one frame, got %d" % len(frames)
    return apdu(frames[0])


def standard_conformance(gurux_value):
    """Gurux numbers conformance bits from the least significant end (its bit n is the
    standard's bit n); the standard's bit 0 is the leftmost of the 24. Return the value whose
    big-endian 24 bits are the wire bytes."""
    return sum(1 << (23 - n) for n in range(24) if int(gurux_value) & (1 << n))


def ber_find(buf, tag):
    """The contents of the first BER TLV with `tag` at the top level of an AARQ/AARE body."""
    assert buf[0] in (0x60, 0x61)
    i = 2
    while i < len(buf):
        t, n = buf[i], buf[i + 1]
        if t == tag:
            return buf[i + 2 : i + 2 + n]
        i += 2 + n
    raise KeyError(hex(tag))


def user_information(aarq_or_aare):
    """user-information [30] = BE len 04 len <xDLMS APDU>."""
    ui = ber_find(aarq_or_aare, 0xBE)
    assert ui[0] == 0x04 and ui[1] == len(ui) - 2
    return ui[2:]


class Server(GXDLMSServer):
    """The smallest server Gurux needs: everything readable, writable and invocable."""

    def isTarget(self, serverAddress, clientAddress):
        return True

    def onValidateAuthentication(self, authentication, password):
        return SourceDiagnostic.NONE

    def onFindObject(self, objectType, sn, ln):
        return None

    def onPreGet(self, *args):
        pass

    def onPostGet(self, *args):
        pass

    def onPreRead(self, *args):
        pass

    def onPostRead(self, *args):
        pass

    def onPreWrite(self, *args):
        pass

    def onPostWrite(self, *args):
        pass

    def onPreAction(self, args):
        # Gurux's Python DisconnectControl.invoke() is not implemented: report the action as
        # handled, with no return parameters.
        for e in args:
            e.handled = True
            e.value = 0

    def onPostAction(self, *args):
        pass

    def onConnected(self, *args):
        pass

    def onInvalidConnection(self, *args):
        pass

    def onDisconnected(self, *args):
        pass

    # The LN command handler calls these without (or with fewer) arguments than the base class
    # declares, and notifyRead/notifyConnected are not defined in 1.0.203 at all.
    def notifyRead(self, *args):
        pass

    def notifyConnected(self, *args):
        pass

    def onGetAttributeAccess(self, arg):
        return AccessMode.READ_WRITE

    def onGetMethodAccess(self, arg):
        return MethodAccessMode.ACCESS


# Gurux 1.0.203's server calls GXServerReply.setReply and getConnectionInfo, which that class
# does not define; supply the obvious accessors (glue only, no encoding is touched).
if not hasattr(GXServerReply, "setReply"):
    GXServerReply.setReply = lambda self, value: setattr(self, "reply", value)
if not hasattr(GXServerReply, "getConnectionInfo"):
    GXServerReply.getConnectionInfo = lambda self: self.connectionInfo

# ...its SET handler calls GXDLMSLNParameters.isMultipleBlocks (undefined: the field is
# multipleBlocks), and its ACTION handler calls list() on a single ValueEventArgs.
if not hasattr(GXDLMSLNParameters, "isMultipleBlocks"):
    GXDLMSLNParameters.isMultipleBlocks = lambda self: self.multipleBlocks
if not hasattr(ValueEventArgs, "__iter__"):
    ValueEventArgs.__iter__ = lambda self: iter([self])


def ask(server, request_frames):
    if isinstance(request_frames[0], list):
        request_frames = request_frames[0]
    reply = GXServerReply(bytes(request_frames[0]))
    server.handleRequest(reply)
    assert reply.reply, "server gave no reply"
    return apdu(reply.reply)


def main():
    vectors = []

    def add(name, kind, data, **fields):
        vectors.append(dict(name=name, kind=kind, hex=data.hex().upper(), **fields))

    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    server = Server(True, InterfaceType.WRAPPER)

    clock = GXDLMSClock("0.0.1.0.0.255")
    clock.time = GXDateTime(datetime(2024, 5, 17, 12, 30, 45))
    data = GXDLMSData("0.0.96.1.0.255")
    data.value = "ABC123"
    data.setDataType(2, DataType.STRING)
    register = GXDLMSRegister("1.0.1.8.0.255")
    register.value = 123456
    register.setDataType(2, DataType.UINT32)
    disconnect = GXDLMSDisconnectControl("0.0.96.3.10.255")
    profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
    association = GXDLMSAssociationLogicalName()
    objects = (clock, data, register, disconnect, profile, association)
    for obj in objects:
        server.items.append(obj)
        # Gurux 1.0.203's initialize() appends the whole collection as one item when the
        # association's object list is empty, which fails its own type check: fill it here.
        association.objectList.append(obj)
    server.initialize()

    # Association: the xDLMS initiate-request/-response ride in user-information.
    aarq = single(client.aarqRequest())
    add("initiate-request", "InitiateRequest", user_information(aarq),
        proposed_conformance=standard_conformance(client.proposedConformance),
        client_max_receive_pdu_size=client.maxReceivePDUSize)
    aare = ask(server, client.aarqRequest())
    client.parseAareResponse(GXByteBuffer(aare))
    add("initiate-response", "InitiateResponse", user_information(aare),
        negotiated_conformance=standard_conformance(client.negotiatedConformance),
        server_max_receive_pdu_size=server.settings.maxServerPDUSize)

    # GET
    req = client.read(clock, 2)
    add("get-request-normal clock time", "GetRequest", single(req),
        class_id=8, obis="0.0.1.0.0.255", attribute=2)
    add("get-response-normal clock time", "GetResponse", ask(server, req))

    req = client.read(register, 2)
    add("get-response-normal register", "GetResponse", ask(server, req))

    req = client.readRowsByRange(profile, datetime(2024, 1, 1, 0, 0, 0), datetime(2024, 1, 2, 0, 0, 0))
    add("get-request-normal profile by range", "GetRequest", single(req),
        class_id=7, obis="1.0.99.1.0.255", attribute=2, selector=1)
    req = client.readRowsByEntry(profile, 1, 10)
    add("get-request-normal profile by entry", "GetRequest", single(req),
        class_id=7, obis="1.0.99.1.0.255", attribute=2, selector=2)

    req = client.readList([(clock, 2), (register, 2)])
    add("get-request-with-list", "GetRequest", single(req), count=2)
    add("get-response-with-list", "GetResponse", ask(server, req), count=2)

    client.settings.blockIndex = 5
    add("get-request-next", "GetRequest", single(client.receiverReady(RequestTypes.DATABLOCK)),
        block_number=5)
    client.settings.resetBlockIndex()

    # SET
    data.value = "XYZ"
    req = client.write(data, 2)
    add("set-request-normal", "SetRequest", single(req),
        class_id=1, obis="0.0.96.1.0.255", attribute=2)
    add("set-response-normal", "SetResponse", ask(server, req))

    # ACTION: disconnect control remote_disconnect(integer 0).
    req = disconnect.remoteDisconnect(client)
    add("action-request-normal remote_disconnect", "ActionRequest", single(req),
        class_id=70, obis="0.0.96.3.10.255", method=1)
    add("action-response-normal remote_disconnect", "ActionResponse", ask(server, req))

    # A GET of an object the server does not have.
    req = client.read(GXDLMSData("0.0.96.99.99.255"), 2)
    add("get-response-error object undefined", "GetResponse", ask(server, req))

    # Data-Notification (push), with and without date-time; the body is structure{uint32}.
    notify = GXDLMSNotify(True, 1, 16, InterfaceType.WRAPPER)

    def body():
        # Gurux consumes the buffer, so each message gets its own.
        b = GXByteBuffer()
        b.setUInt8(DataType.STRUCTURE)
        b.setUInt8(1)
        notify.addData(register, 2, b)
        return b
    add("data-notification with date-time", "DataNotification",
        single(notify.generateDataNotificationMessages(datetime(2024, 5, 17, 12, 30, 45), body())),
        has_date_time=True)
    add("data-notification without date-time", "DataNotification",
        single(notify.generateDataNotificationMessages(None, body())), has_date_time=False)

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "gurux-dlms 1.0.203 via interop/vectors/xdlms.py",
                   "vectors": vectors}, f, indent=1)
        f.write("\n")
    for v in vectors:
        print(v["name"], v["hex"], file=sys.stderr)


if __name__ == "__main__":
    main()
