"""Gurux's client against a FLEET of `hes sim` meters: every security level over both transports,
every readable attribute of the object list checked against the control API's ground truth,
each fault mode as Gurux sees it, and the quirks.

Needs HES_BIN (the `hes` binary). The fleet lives on 127.31.0.x:4059 (its own loopback range);
every socket wait is bounded and the simulator is stopped in fixture teardown.
"""

import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gurux_client as g  # noqa: E402
from gurux_dlms import GXReplyData  # noqa: E402
from gurux_dlms.GXDLMSException import GXDLMSException  # noqa: E402
from gurux_dlms.objects import (  # noqa: E402
    GXDLMSClock,
    GXDLMSData,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)

HOST = "127.31.0.1"
METERS = 30
LEVELS = ["none", "lls", "hls-gmac"]
SLOT = 900
LOAD = "1.0.99.1.0.255"
BILLING = "0.0.98.1.0.255"
ASSOCIATION = "0.0.40.0.0.255"
IC = "0.0.43.1.0.255"

def hes_bin():
    b = os.environ.get("HES_BIN")
    if not b or not os.path.exists(b):
        pytest.fail("HES_BIN must name the built `hes` binary (scripts/test sets it)")
    return b


class Fleet:
    def __init__(self, proc, control, inventory):
        self.proc, self.control, self.inventory = proc, control, inventory
        self.by_id = {m["id"]: m for m in inventory}

    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.control + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
        return json.loads(text) if text else None

    def state(self, mid):
        return self.api("GET", f"/meters/{mid}")

    def profile(self, mid, obis, start, end):
        return self.api("GET", f"/meters/{mid}/profile/{obis}?from={start}&to={end}")

    def faults(self, mid, **faults):
        self.api("PUT", f"/meters/{mid}/faults", faults)

    def pick(self, transport=None, quirk=None, without=(), skip=()):
        """Meters matching; ones with another quirk than hdlc_only are avoided unless asked."""
        out = []
        for m in self.inventory:
            q = set(m["quirks"]) - {"hdlc_only"}
            if transport and m["transport"] != transport:
                continue
            if quirk and quirk not in q:
                continue
            if not quirk and q:
                continue
            if m["id"] in skip or q & set(without):
                continue
            out.append(m)
        if not out:
            pytest.fail(f"no meter with transport={transport} quirk={quirk}")
        return out


@pytest.fixture(scope="module")
def fleet():
    tmp = tempfile.mkdtemp(prefix="hes-fleet-")
    inv_path = os.path.join(tmp, "inventory.json")
    cmd = [hes_bin(), "sim", "--meters", str(METERS), "--host", HOST, "--port", "4059",
           "--quirk", "hdlc_only=0.5", "--quirk", "small_pdu=0.15", "--quirk", "alternative_saps=0.15",
           "--profile-entries", "96", "--inventory", inv_path, "--control", "127.0.0.1:0"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    control = None
    deadline = time.monotonic() + 30
    ready = False
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith("CONTROL"):
            control = line.split()[1]
        if line.startswith("READY"):
            ready = True
            break
    if not ready or not control:
        p.kill()
        p.wait(timeout=10)
        pytest.fail("hes sim did not become READY")
    with open(inv_path) as f:
        inventory = json.load(f)
    yield Fleet(p, control, inventory)
    p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)


@pytest.fixture
def clear(fleet):
    yield fleet
    fleet.api("DELETE", "/faults")


def session(m, level, ic=None, **kw):
    """Associates with meter `m` at `level` using its own SAPs, password and keys; HLS-GMAC
    continues from the counter the meter last saw unless `ic` is given."""
    return g.open_session(g.inventory_args(m, level, **kw), ic)


class Counting:
    """Counts the answers (frames/blocks) a Link receives."""

    def __init__(self, link):
        self.link, self.answers = link, 0
        inner = link.exchange

        def exchange(data, reply):
            inner(data, reply)
            if data is not None:
                self.answers += 1
        link.exchange = exchange


def rows_unix(buffer):
    return [[g.unix(r[0])] + [int(x) for x in r[1:]] for r in buffer]


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc)


# --- 1. a sample of the fleet, every level, every readable attribute -----------------------------


def sample(fleet):
    """Plain wrapper and HDLC meters, plus one small-PDU and one alternative-SAPs meter."""
    return [fleet.pick("wrapper")[0], fleet.pick("hdlc")[0],
            fleet.pick(quirk="small_pdu")[0], fleet.pick(quirk="alternative_saps")[0]]


def read_everything(c, link):
    """Every readable attribute of every object in the object list: {(obis, attr): value}
    and the errors [(class, obis, attr, what)]."""
    values, errors = {}, []
    for obj, rights in g.object_list(c, link):
        attrs = [a for a, mode in rights if mode in g.READABLE]
        if int(obj.objectType) == 7 and 3 in attrs:
            attrs.remove(3)
            attrs.insert(0, 3)  # Gurux parses a buffer with the capture objects only
        for attr in attrs:
            if int(obj.objectType) == 15 and attr == 7:
                continue
            try:
                v = g.get(c, link, obj, attr)
            except GXDLMSException as e:
                errors.append((int(obj.objectType), obj.logicalName, attr, f"DataAccessResult {e.errorCode}"))
                continue
            try:
                c.updateValue(obj, attr, v)
            except Exception as e:  # noqa: BLE001  (Gurux could not parse what it got)
                errors.append((int(obj.objectType), obj.logicalName, attr, repr(e)))
            values[(obj.logicalName, attr)] = v
    return values, errors


@pytest.mark.parametrize("level", LEVELS)
def test_sample_reads_every_attribute_and_matches_truth(fleet, level):
    assert {m["transport"] for m in sample(fleet)} == {"wrapper", "hdlc"}
    for m in sample(fleet):
        before = fleet.state(m["id"])
        c, link = session(m, level)
        try:
            values, errors = read_everything(c, link)
            # The load profile by range: a window well behind now, so it is settled.
            end = (before["clock"] // SLOT) * SLOT - 2 * SLOT
            start = end - 8 * SLOT
            pg = GXDLMSProfileGeneric(LOAD)
            g.profile_columns(c, link, pg)
            rows = rows_unix(g.profile_range(c, link, pg, utc(start), utc(end)))
        finally:
            g.release(c, link)
        after = fleet.state(m["id"])
        where = f"{m['id']} ({m['transport']}, {m['quirks']}) at {level}"
        assert not errors, f"{where}: {errors}"
        assert len(values) > 100, where
        for obis, low in before["registers"].items():
            got = int(values[(obis, 2)])
            assert low <= got <= after["registers"][obis], f"{where}: {obis} {got} not in [{low}, {after['registers'][obis]}]"
        assert bytes(values[("0.0.42.0.0.255", 2)]) == m["logical_device_name"].encode(), where
        serial = values[("0.0.96.1.0.255", 2)]
        assert (serial.decode() if isinstance(serial, (bytes, bytearray)) else serial) == m["serial"], where
        truth = fleet.profile(m["id"], LOAD, start, end)
        assert len(rows) == 9 and rows == truth["rows"], where
        assert [x[0] for x in rows] == list(range(start, end + 1, SLOT)), where


def whole_read_of(fleet, obis, attr):
    m = fleet.pick("wrapper")[1]
    c, link = session(m, "none")
    try:
        obj = GXDLMSProfileGeneric(obis)
        g.profile_columns(c, link, obj)
        return g.get(c, link, obj, attr)
    finally:
        g.release(c, link)


@pytest.mark.parametrize("attr", [2, 7])
def test_billing_profile_reads_whole(fleet, attr):
    # Once a panic (month arithmetic on an unbounded range) that dropped the connection.
    v = whole_read_of(fleet, BILLING, attr)
    if attr == 2:
        assert 1 <= len(v) <= 24
    else:
        assert 1 <= int(v) <= 24


def test_association_xdlms_context_info(fleet):
    # Once a 7-element structure; the Blue Book's xDLMS_context_info has 6.
    m = fleet.pick("wrapper")[1]
    c, link = session(m, "none")
    try:
        from gurux_dlms.objects import GXDLMSAssociationLogicalName
        v = g.get(c, link, GXDLMSAssociationLogicalName(ASSOCIATION), 5)
    finally:
        g.release(c, link)
    assert len(v) == 6
    assert [type(x).__name__ for x in v][:1] == ["GXBitString"]


# --- 2. each fault, as Gurux sees it ---------------------------------------------------------------


def read_clock(c, link):
    clock = GXDLMSClock("0.0.1.0.0.255")
    return c.updateValue(clock, 2, g.get(c, link, clock, 2))


def test_fault_refused(clear):
    m = clear.pick("wrapper")[2]
    clear.faults(m["id"], refused=True)
    with pytest.raises(ConnectionRefusedError):
        session(m, "none", timeout=3.0)
    clear.api("DELETE", "/faults")
    c, link = session(m, "none")
    g.release(c, link)


def test_fault_slow(clear):
    m = clear.pick("hdlc")[2]
    clear.faults(m["id"], slow_ms=300)
    c, link = session(m, "none")
    try:
        started = time.monotonic()
        read_clock(c, link)
        assert time.monotonic() - started >= 0.3
    finally:
        g.release(c, link)


def test_fault_drop_mid_block(clear):
    m = clear.pick("wrapper")[3]
    clear.faults(m["id"], drop_mid_block=True)
    c, link = session(m, "none", timeout=5.0)
    try:
        pg = GXDLMSProfileGeneric(LOAD)
        g.profile_columns(c, link, pg)
        count = Counting(link)
        reply = GXReplyData()
        with pytest.raises((ConnectionError, ConnectionResetError)):
            link.block(c.read(pg, 2), reply)
        assert count.answers >= 1 and reply.isMoreData(), "closed before the last block"
    finally:
        link.close()


@pytest.mark.parametrize("transport", ["wrapper", "hdlc"])
def test_fault_corrupt_frame(clear, transport):
    m = clear.pick(transport)[3]
    clear.faults(m["id"], corrupt_frame=True)
    c, link = session(m, "none", timeout=3.0)
    try:
        with pytest.raises(Exception) as e:  # noqa: PT011  (Gurux raises several kinds)
            read_clock(c, link)
        assert not isinstance(e.value, (socket.timeout, TimeoutError)), f"Gurux waited instead: {e.value!r}"
        # Gurux's words: a bad HDLC FCS is "Wrong CRC."; an unknown APDU tag "Invalid Command.".
        want = "CRC" if transport == "hdlc" else "Invalid Command"
        assert want in str(e.value), repr(e.value)
    finally:
        link.close()


def test_fault_ic_jump(clear):
    m = clear.pick("wrapper")[4]
    c, link = session(m, "hls-gmac")  # the counter the meter has seen so far, plus one
    ic = c.ciphering.invocationCounter
    g.release(c, link)
    clear.faults(m["id"], ic_jump=1000)
    with pytest.raises(GXDLMSException) as e:  # AARE: rejected, authentication failure
        c, link = session(m, "hls-gmac", ic=ic + 1, timeout=3.0)
        g.release(c, link)
    assert "reject" in str(e.value).lower(), str(e.value)
    c, link = session(m, "none")
    try:
        seen = int(g.get(c, link, GXDLMSData(IC), 2))
    finally:
        g.release(c, link)
    assert seen >= ic - 1 + 1000  # ic - 1: the last counter the meter saw
    c, link = session(m, "hls-gmac", ic=seen + 1)
    try:
        read_clock(c, link)
    finally:
        g.release(c, link)


def test_fault_clock_drift(clear):
    m = clear.pick("hdlc")[4]
    clear.faults(m["id"], clock_drift_s=3600)
    c, link = session(m, "lls")
    try:
        t = read_clock(c, link)
    finally:
        g.release(c, link)
    assert abs(g.unix(t) - time.time() - 3600) <= 5


def test_fault_profile_anomalies(clear):
    m = clear.pick("wrapper")[5]
    clear.faults(m["id"], profile_anomalies_per_mille=150)
    now = clear.state(m["id"])["clock"]
    end = (now // SLOT) * SLOT - 2 * SLOT
    start = end - 80 * SLOT
    c, link = session(m, "none")
    try:
        pg = GXDLMSProfileGeneric(LOAD)
        g.profile_columns(c, link, pg)
        rows = rows_unix(g.profile_range(c, link, pg, utc(start), utc(end)))
    finally:
        g.release(c, link)
    truth = clear.profile(m["id"], LOAD, start, end)["rows"]
    assert rows == truth
    assert len(rows) < 81, "gaps: fewer rows than the window holds"
    # A spike lifts one entry (or a run of adjacent ones) 1,000,000 above the register and the
    # next normal entry falls back. Registers are 32-bit and wrap: steps are taken mod 2^32.
    rises = drops = 0
    for col in range(1, len(rows[0])):
        for a, b in zip(rows, rows[1:]):
            up, down = (b[col] - a[col]) % 2**32, (a[col] - b[col]) % 2**32
            rises += 1_000_000 <= up < 2**31
            drops += 1_000_000 - 10_000 <= down < 2**31
    assert rises >= 1 and drops >= 1, "spikes: values 1,000,000 above their neighbours"


def test_fault_refuse_association(clear):
    m = clear.pick("hdlc")[5]
    clear.faults(m["id"], refuse_association=True)
    with pytest.raises(GXDLMSException) as e:
        session(m, "lls", timeout=3.0)
    assert "permanently rejected" in str(e.value), repr(e.value)


# --- 3. quirks ---------------------------------------------------------------------------------------


def test_small_pdu_answers_in_blocks(fleet):
    m = fleet.pick(quirk="small_pdu")[0]
    assert m["max_pdu"] < 1024
    c, link = session(m, "none")
    try:
        pg = GXDLMSProfileGeneric(LOAD)
        g.profile_columns(c, link, pg)
        count = Counting(link)
        rows = g.profile_entries(c, link, pg, 1, 0)
    finally:
        g.release(c, link)
    assert len(rows) == 96
    assert count.answers > 5, "a long read in blocks"


def test_alternative_saps(fleet):
    m = fleet.pick(quirk="alternative_saps")[0]
    assert m["client_sap_management"] == 48
    with pytest.raises(Exception) as e:  # noqa: PT011,B017
        c, link = session(m, "hls-gmac", client=1, timeout=3.0)
        g.release(c, link)
    assert "rejected" in str(e.value), repr(e.value)  # AARE rejected-permanent
    c, link = session(m, "hls-gmac")
    try:
        reg = GXDLMSRegister("1.0.1.8.0.255")
        assert int(g.get(c, link, reg, 2)) > 0
    finally:
        g.release(c, link)
