#!/usr/bin/env python3
"""A DLMS server built on the Gurux DLMS library for Python: the independent peer that `hes read`
and `hes action` are tested against.

    gurux_server.py --port P [--hdlc]      (P = 0 picks a free port)

Prints `SYSTEM_TITLE <hex>` and `LISTENING <port>` when ready. Serves clients 16 (public, no
security), 17 (LLS, password 12345678) and 1 (HLS-GMAC, authenticated encryption, suite 0, the
Green Book example keys), one connection at a time per thread, each with its own Gurux server
object over one shared object model:

    Clock 0.0.1.0.0.255, Data 0.0.42.0.0.255 (logical device name "GRX0000000000001"),
    Register 1.0.1.8.0.255 (123456 Wh, scaler 0), Profile generic 1.0.99.1.0.255 (clock + 3
    registers, 96 rows of 15 minutes ending at ROWS_END, deterministic values), Disconnect control
    0.0.96.3.10.255, Data 0.0.43.1.0.255 (an invocation counter object holding 0: Gurux keeps no
    replay floor we could expose),
    Association LN 0.0.40.0.0.255.

Workarounds for Gurux server bugs (1.0.203), kept here in the harness as the issue asks:
1. GXDLMSSecureServer stores its ciphering in `settings.ciphering`, but the AARQ/AARE code reads
   `settings.cipher` (None), so any ciphered association fails with a TypeError. We set
   `settings.cipher` to the same object.
2. Its AARE writer crashes whenever it must write a system title (ciphering, HLS-GMAC), and
   writes the HLS server challenge [10] with an outer length that leaves out the inner tag and
   length (`AA 10 80 10 ...` for `AA 12 80 10 ...`), which a standard client (ours) refuses.
   `generate_aare` replaces it, keeping Gurux's own initiate response as user-information.
3. GXServerReply lacks `setReply`, `getConnectionInfo` and `setCount`, which GXDLMSServer
   calls: we add them.
4. `setMaxReceivePDUSize` recurses forever; we set `settings.maxServerPDUSize` instead.
5. Without an association object given, `initialize` appends the whole object collection as
   one object and raises; we give it an Association LN with its object list filled.
6. The command handler calls `notifyRead`, `notifyConnected`, `getTransaction` and
   `setTransaction` on the server, which GXDLMSServer does not define: we define them; and it
   calls some hooks (`onPostRead`, ...) without their argument, so ours take `*args`.
7. Reading a profile with selective access calls `ValueEventArgs.getRowEndIndex` and friends,
   which do not exist: we add them.
8. Its profile generic reads the entry descriptor's to_entry and to_selected_value as counts
   (the Blue Book: last entry and last column, 0 = the last), and its range read fails on a
   datetime compared with 0; `StandardProfile` applies selective access as the standard says.
9. Over HDLC, the SNRM handler needs `server.hdlc`, never set, under two sets of attribute
   names, and calls a missing `GXHdlcSettings.update`: `HdlcShim` answers to both.
10. The block cipher key is gone from the ciphering settings after the AARE, so HLS pass 3
    cannot be deciphered (Gurux's own client fails the same way): `rekey` restores the keys
    before every request.
11. Deciphering a glo-/ded- request builds its AES-GCM parameters with positional arguments
    one slot off, so no ciphered request can be read, and even deciphered the request keeps the
    ciphered command: `handle_glo_ded_request` replaces it.
12. The server never advances its invocation counter (every ciphered answer reuses one IV,
    which a standard client rightly refuses as a replay): we advance it after each answer.
13. The ACTION handler calls `list(e)` on a single ValueEventArgs: we make it iterable.
14. reply_to_HLS_authentication calls `int()` on the client's proof and always fails:
    `Association.invoke` checks f(StoC) and answers f(CtoS) with Gurux's own GMAC.
15. After HLS the ACTION handler calls `getAssociationStatus` and `settings.setConnected`,
    neither of which exists: we add them.
16. Its disconnect control implements no method: every ACTION answers hardware-fault (and
    without the return-parameters flag, which a standard decoder refuses). `Disconnector`
    implements remote_disconnect and remote_reconnect.
17. Its UA writes the HDLC parameter group length as 0 and overwrites the receive window with
    that length: `handle_snrm_request` answers with a well-formed UA (Green Book defaults).
"""

import argparse
import contextlib
import datetime
import os
import socket
import sys
import threading
import traceback

from gurux_dlms import GXByteBuffer, GXDateTime, GXServerReply
from gurux_dlms.enums import (
    AccessMode,
    Authentication,
    InterfaceType,
    MethodAccessMode,
    ObjectType,
    Security,
    SourceDiagnostic,
    Unit,
)
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSCaptureObject,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSObjectCollection,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)
from gurux_dlms.GXHdlcSettings import GXHdlcSettings
from gurux_dlms.GXDLMSSettings import GXDLMSSettings
from gurux_dlms._GXAPDU import _GXAPDU
from gurux_dlms.AesGcmParameter import AesGcmParameter
from gurux_dlms.ConnectionState import ConnectionState
from gurux_dlms.enums import RequestTypes
from gurux_dlms.GXCiphering import GXCiphering
from gurux_dlms.GXDLMS import GXDLMS
from gurux_dlms.GXDLMSServer import GXDLMSServer
from gurux_dlms.GXSecure import GXSecure
from gurux_dlms.enums import ErrorCode
from gurux_dlms.objects.enums.AssociationStatus import AssociationStatus
from gurux_dlms.objects.enums.ControlState import ControlState
from gurux_dlms.secure import GXDLMSSecureServer
from gurux_dlms.ValueEventArgs import ValueEventArgs

# Workaround 7: the profile generic's selective access calls accessors ValueEventArgs lacks.
ValueEventArgs.getRowEndIndex = lambda self: self.rowEndIndex
ValueEventArgs.getRowBeginIndex = lambda self: self.rowBeginIndex
ValueEventArgs.setRowEndIndex = lambda self, v: setattr(self, "rowEndIndex", v)
ValueEventArgs.setRowBeginIndex = lambda self, v: setattr(self, "rowBeginIndex", v)
# Workaround 13: the ACTION handler calls `list(e)` on one ValueEventArgs.
ValueEventArgs.__iter__ = lambda self: iter([self])

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
SYSTEM_TITLE = bytes.fromhex("4752580000000001")  # "GRX" + serial
PASSWORD = b"12345678"
LDN = b"GRX0000000000001"
REGISTER_VALUE = 123456
# The profile's last row: a fixed instant, so tests know every row.
class ServerReply(GXServerReply):
    """Workaround 3: Gurux's server calls accessors its GXServerReply lacks."""

    def setReply(self, value):
        self.reply = value

    def getConnectionInfo(self):
        return self.connectionInfo

    def setCount(self, value):
        self.count = value

    def getCount(self):
        return self.count


ROWS_END = datetime.datetime(2026, 11, 26, 0, 0, tzinfo=datetime.timezone.utc)
POLICY = {16: Authentication.NONE, 17: Authentication.LOW, 1: Authentication.HIGH_GMAC}


def profile_rows():
    """96 rows: (time, +A, -A, +R), deterministic."""
    rows = []
    for i in range(96):
        t = ROWS_END - datetime.timedelta(minutes=15 * (95 - i))
        rows.append([GXDateTime(t), 1_000_000 + 250 * i, 20_000 + 3 * i, 300_000 + 70 * i])
    return rows


def generate_aare(settings, data, result, diagnostic, cipher, errorData, encryptedData):
    """Workaround 2: Gurux's AARE writer crashes whenever a system title is due (ciphering or
    HLS-GMAC: `setUInt8()` without its argument) and writes the server challenge [10] with an
    outer length two bytes short. This one writes the AARE as the Green Book lays it out, with
    Gurux's own (ciphered) initiate response as user-information."""
    ciphered = cipher is not None and cipher.security != Security.NONE
    body = bytearray()
    body += bytes([0xA1, 0x09, 0x06, 0x07, 0x60, 0x85, 0x74, 0x05, 0x08, 0x01, 3 if ciphered else 1])
    body += bytes([0xA2, 0x03, 0x02, 0x01, int(result)])
    body += bytes([0xA3, 0x05, 0xA1, 0x03, 0x02, 0x01, int(diagnostic)])
    if cipher is not None and (settings.authentication == Authentication.HIGH_GMAC or ciphered):
        title = bytes(cipher.systemTitle)
        body += bytes([0xA4, len(title) + 2, 0x04, len(title)]) + title
    if settings.authentication > Authentication.LOW:
        challenge = bytes(settings.stoCChallenge)
        body += bytes([0x88, 0x02, 0x07, 0x80])
        body += bytes([0x89, 0x07, 0x60, 0x85, 0x74, 0x05, 0x08, 0x02, int(settings.authentication)])
        body += bytes([0xAA, len(challenge) + 2, 0x80, len(challenge)]) + challenge
    if errorData:
        ui = bytes(errorData)
    else:
        ui = bytes(_GXAPDU.getUserInformation(settings, cipher))
    body += bytes([0xBE, len(ui) + 2, 0x04, len(ui)]) + ui
    data.set(bytes([0x61, len(body)]) + bytes(body))


_GXAPDU.generateAARE = generate_aare

def handle_glo_ded_request(settings, data):
    """Workaround 11: Gurux builds the deciphering parameters with positional arguments in the
    wrong places (the system title lands in `tag`, the keys one slot off), so no ciphered request
    can be read. Same steps, arguments by name."""
    if settings.cipher is None:
        raise ValueError("Secure connection is not supported.")
    if (data.moreData & RequestTypes.FRAME) == 0:
        data.data.position = data.data.position - 1
        c = settings.cipher
        dedicated = c.dedicatedKey and (settings.connected & ConnectionState.DLMS) != 0
        p = AesGcmParameter(
            systemTitle=settings.sourceSystemTitle,
            blockCipherKey=c.dedicatedKey if dedicated else c.blockCipherKey,
            authenticationKey=c.authenticationKey,
        )
        plain = bytes(GXCiphering.decrypt(settings, p, data.data))
        # Continue as with a plain request: the command is the deciphered APDU's tag.
        data.data = GXByteBuffer(plain)
        data.command = data.data.getUInt8()


GXDLMS.handleGloDedRequest = staticmethod(handle_glo_ded_request)

if os.environ.get("HES_INTEROP_DEBUG"):
    # Gurux swallows server exceptions into error frames: show them.
    from gurux_dlms.GXDLMSServer import GXDLMSServer as _S

    _handle = _S.handleCommand

    def _traced(self, *a):
        try:
            return _handle(self, *a)
        except Exception:
            traceback.print_exc()
            raise

    _S.handleCommand = _traced


class HdlcShim:
    """Workaround 9: Gurux's SNRM handler reads `server.hdlc` under two sets of names (those of
    the IEC HDLC setup object and those of its own HDLC settings) and calls a missing
    `GXHdlcSettings.update`. This object answers to both with the Green Book defaults."""

    maxInfoTX = maxInfoRX = maximumInfoLengthTransmit = maximumInfoLengthReceive = 128
    windowSizeTX = windowSizeRX = windowSizeTransmit = windowSizeReceive = 1
    inactivityTimeout = 0


GXHdlcSettings.update = lambda self, other: None


def handle_snrm_request(self, data):
    """Workaround 17: Gurux's UA writes the parameter group length as 0 and then writes that
    length (as the value 2) over the receive window, so a strict client (ours) refuses the UA.
    This answers with the Green Book defaults, which both sides then use."""
    GXDLMS.parseSnrmUaResponse(data, self.settings.hdlc)
    self.reset(True)
    h = self.settings.hdlc
    h.maxInfoTX = h.maxInfoRX = 128
    h.windowSizeTX = h.windowSizeRX = 1
    self.replyData.set(bytes.fromhex("818014" "05020080" "06020080" "070400000001" "080400000001"))
    self.settings.connected = ConnectionState.HDLC


GXDLMSServer.handleSnrmRequest = handle_snrm_request
# Workaround 15: after HLS the ACTION handler calls `settings.setConnected`, which does not exist.
GXDLMSSettings.setConnected = lambda self, v: setattr(self, "connected", v)


class Association(GXDLMSAssociationLogicalName):
    """Workaround 14: Gurux's reply_to_HLS_authentication calls `int()` on the client's proof
    (bytes) and can never succeed. This checks f(StoC) and answers f(CtoS) with Gurux's own
    GMAC (GXSecure.secure)."""

    def invoke(self, settings, e):
        if e.index != 1 or settings.authentication != Authentication.HIGH_GMAC:
            return super().invoke(settings, e)
        proof = bytes(e.parameters)
        ic = int.from_bytes(proof[1:5], "big")
        expected = GXSecure.secure(settings, settings.cipher, ic, settings.stoCChallenge, settings.sourceSystemTitle)
        if bytes(expected) != proof:
            self.associationStatus = AssociationStatus.NON_ASSOCIATED
            e.error = ErrorCode.READ_WRITE_DENIED
            return None
        self.associationStatus = AssociationStatus.ASSOCIATED
        c = settings.cipher
        return GXSecure.secure(settings, c, c.invocationCounter, settings.getCtoSChallenge(), c.systemTitle)

    def getAssociationStatus(self):
        # Called by the ACTION handler after HLS; missing in 1.0.203.
        return self.associationStatus


class Disconnector(GXDLMSDisconnectControl):
    """Workaround 16: Gurux's disconnect control has no methods (every ACTION answers
    hardware-fault, without the return-parameters flag the standard requires). This one opens
    and closes the relay as the Blue Book says."""

    def invoke(self, settings, e):
        if e.index == 1:
            self.outputState, self.controlState = False, ControlState.DISCONNECTED
        elif e.index == 2:
            self.outputState, self.controlState = True, ControlState.CONNECTED
        else:
            e.error = ErrorCode.READ_WRITE_DENIED
        return None


class StandardProfile(GXDLMSProfileGeneric):
    """Workaround 8: Gurux reads the entry descriptor's to_entry and to_selected_value as counts,
    and its range read compares a datetime with 0 and fails. This profile applies selective access
    as the Blue Book says (entries and columns from..to, 1-based, 0 = the last; range inclusive on
    the clock column) and lets Gurux encode the rows."""

    def getValue(self, settings, e):
        if e.index != 2 or not e.selector or e.parameters is None or e.rowEndIndex != 0:
            return super().getValue(settings, e)
        p = list(e.parameters)
        cols = list(self.captureObjects)
        if e.selector == 2:
            first, last = int(p[0]) or 1, int(p[1]) or len(self.buffer)
            rows = self.buffer[first - 1:last] if first <= last else []
            c0, c1 = int(p[2]) or 1, int(p[3]) or len(cols)
            columns = cols[c0 - 1:c1]
        else:
            start, end = cosem_time(p[1]), cosem_time(p[2])
            rows = [r for r in self.buffer if start <= r[0].value <= end]
            columns = self.getColumns(p[3]) if p[3] else cols
            if columns and isinstance(columns[0], list):
                columns = columns[0]
        return self.getData(settings, e, rows, columns)


def cosem_time(b):
    """A 12-byte COSEM date-time as an aware datetime (deviation = UTC - local, minutes)."""
    b = bytes(b)
    y = int.from_bytes(b[0:2], "big")
    t = datetime.datetime(y, b[2], b[3], b[5], b[6], b[7], tzinfo=datetime.timezone.utc)
    dev = int.from_bytes(b[9:11], "big", signed=True)
    if dev != -0x8000:
        t += datetime.timedelta(minutes=dev)
    return t


def build_objects():
    clock = GXDLMSClock("0.0.1.0.0.255")
    clock.time = GXDateTime(ROWS_END)
    ldn = GXDLMSData("0.0.42.0.0.255")
    ldn.value = LDN
    reg = GXDLMSRegister("1.0.1.8.0.255")
    reg.value = REGISTER_VALUE
    reg.scaler = 1  # Gurux takes the scaler as a multiplier: 1 = 10^0.
    reg.unit = Unit.ACTIVE_ENERGY
    regs = [reg]
    for ln in ("1.0.2.8.0.255", "1.0.3.8.0.255"):
        r = GXDLMSRegister(ln)
        r.value = 0
        r.unit = Unit.ACTIVE_ENERGY if ln.startswith("1.0.2") else Unit.REACTIVE_ENERGY
        regs.append(r)
    pg = StandardProfile("1.0.99.1.0.255")
    pg.capturePeriod = 900
    pg.profileEntries = 96
    pg.captureObjects.append((clock, GXDLMSCaptureObject(2, 0)))
    for r in regs:
        pg.captureObjects.append((r, GXDLMSCaptureObject(2, 0)))
    pg.buffer = profile_rows()
    pg.entriesInUse = len(pg.buffer)
    pg.sortObject = clock
    disc = Disconnector("0.0.96.3.10.255")
    disc.outputState = True
    ic = GXDLMSData("0.0.43.1.0.255")
    ic.value = 0
    objs = [clock, ldn, *regs, pg, disc, ic]
    return objs, ic


class Server(GXDLMSSecureServer):
    """One connection's Gurux server over the shared objects."""

    def __init__(self, hdlc, objects, ic_object, lock):
        super().__init__(True, InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER)
        self.lock = lock
        self.ic_object = ic_object
        # Gurux 1.0.203 cannot build the association's object list itself (it appends the whole
        # collection as one item and raises): we give it one, filled.
        assoc = Association()
        self.items.append(assoc)
        for o in objects:
            self.items.append(o)
        if hdlc:
            # Workaround 9: the SNRM handler reads `self.hdlc` (an IEC HDLC setup object) that
            # nothing sets; without it every SNRM gets an error frame.
            self.hdlc = HdlcShim()
        for o in self.items:
            assoc.objectList.append(o)
        # Workaround 1 (see the module doc).
        self.settings.cipher = self.settings.ciphering
        self.settings.cipher.security = Security.NONE
        self.rekey()
        # Gurux 1.0.203: setMaxReceivePDUSize recurses forever (its property shadows itself).
        self.settings.maxServerPDUSize = 1024
        self.initialize()

    def rekey(self):
        """Workaround 10: the keys vanish from the ciphering settings after the AARE (the
        HLS pass 3 then fails to decipher, even from Gurux's own client); set them before every
        request."""
        c = self.settings.cipher
        c.systemTitle = SYSTEM_TITLE
        c.blockCipherKey = EK
        c.authenticationKey = AK

    # Gurux calls these; most need nothing.
    def isTarget(self, serverAddress, clientAddress):
        if clientAddress not in POLICY:
            return False
        # Client 1 talks ciphered; the others do not.
        self.settings.cipher.security = Security.AUTHENTICATION_ENCRYPTION if clientAddress == 1 else Security.NONE
        self.expected = POLICY[clientAddress]
        return True

    def onValidateAuthentication(self, authentication, password):
        if authentication != self.expected:
            return SourceDiagnostic.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED
        if authentication == Authentication.LOW and bytes(password or b"") != PASSWORD:
            return SourceDiagnostic.AUTHENTICATION_FAILURE
        return SourceDiagnostic.NONE

    def onFindObject(self, objectType, sn, ln):
        return None

    def onPreRead(self, *args):
        pass

    def onPostRead(self, *args):
        pass

    def onPreWrite(self, *args):
        pass

    def onPostWrite(self, *args):
        pass

    def onPreAction(self, args):
        for e in args:
            if e.target.objectType == ObjectType.DISCONNECT_CONTROL and self.settings.authentication == Authentication.NONE:
                e.error = 3  # read-write-denied: the public client commands nothing
                e.value = 0
                e.handled = True

    def onPostAction(self, *args):
        pass

    def onPreGet(self, *args):
        pass

    def onPostGet(self, *args):
        pass

    def onConnected(self, *args):
        pass

    def onInvalidConnection(self, *args):
        pass

    def onDisconnected(self, *args):
        pass

    # Workaround 6: GXDLMSLNCommandHandler calls these on the server; 1.0.203 does not define them.
    def notifyRead(self, *args):
        pass

    def notifyConnected(self, *args):
        pass

    def getTransaction(self):
        return self.transaction

    def setTransaction(self, value):
        self.transaction = value

    def onGetAttributeAccess(self, arg):
        return AccessMode.READ_WRITE

    def onGetMethodAccess(self, arg):
        return MethodAccessMode.ACCESS


def serve_connection(conn, hdlc, objects, ic_object, lock):
    server = Server(hdlc, objects, ic_object, lock)
    conn.settimeout(120)
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            sr = ServerReply(data)
            while True:
                with lock:
                    server.rekey()
                    server.handleRequest(sr)
                    # Workaround 12: Gurux never advances its own invocation counter, so every
                    # ciphered answer would reuse one GCM IV (and a standard client refuses the
                    # replay). Advance it once per answer.
                    server.settings.cipher.invocationCounter += 1
                reply = sr.reply
                if not reply:
                    break
                conn.sendall(bytes(reply))
                if not sr.isStreaming():
                    break
                sr.data = None
    except (OSError, ValueError) as e:
        print(f"connection ended: {e}", file=sys.stderr)
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--hdlc", action="store_true")
    a = p.parse_args()
    objects, ic_object = build_objects()
    lock = threading.Lock()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((a.host, a.port))
    sock.listen(64)
    real = sys.stdout
    print(f"SYSTEM_TITLE {SYSTEM_TITLE.hex().upper()}", file=real)
    print(f"LISTENING {sock.getsockname()[1]}", file=real, flush=True)
    # Gurux prints notes on stdout while ciphering.
    with contextlib.redirect_stdout(sys.stderr):
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=serve_connection, args=(conn, a.hdlc, objects, ic_object, lock), daemon=True).start()


if __name__ == "__main__":
    main()
