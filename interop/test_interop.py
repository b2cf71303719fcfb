"""Interoperability, both ways, at three security levels and over both transports:

* our client (`hes read`, `hes action`) against a DLMS server built on the Gurux library;
* Gurux's client against our simulator (`hes sim`).

Needs HES_BIN (the `hes` binary); `scripts/test` sets it. Every subprocess and socket wait is
bounded; servers are stopped in fixture teardown.
"""

import datetime
import json
import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gurux_server  # noqa: E402  (for the data it serves)

EK = "000102030405060708090A0B0C0D0E0F"
AK = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
LEVELS = {
    "none": ["--client", "16"],
    "lls": ["--client", "17", "--auth", "lls", "--password", "12345678"],
    "hls-gmac": ["--client", "1", "--auth", "hls-gmac", "--security", "auth-enc", "--ek", EK, "--ak", AK],
}
TRANSPORTS = ["wrapper", "hdlc"]
TIMEOUT = 60


def hes_bin():
    b = os.environ.get("HES_BIN")
    if not b or not os.path.exists(b):
        pytest.fail("HES_BIN must name the built `hes` binary (scripts/test sets it)")
    return b


def start(cmd):
    """Starts a server that prints `LISTENING <port>`; returns (process, port, system title)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    title = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith("SYSTEM_TITLE"):
            title = line.split()[1]
        if line.startswith("LISTENING"):
            return p, int(line.split()[1]), title
    p.kill()
    pytest.fail(f"{cmd[0]} did not start listening")


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()


@pytest.fixture(scope="module", params=TRANSPORTS)
def gurux(request):
    cmd = [sys.executable, os.path.join(HERE, "gurux_server.py"), "--port", "0"]
    if request.param == "hdlc":
        cmd.append("--hdlc")
    p, port, _ = start(cmd)
    yield request.param, port
    stop(p)


@pytest.fixture(scope="module", params=TRANSPORTS)
def sim(request):
    cmd = [hes_bin(), "sim", "--port", "0", "--profile-entries", "96"]
    if request.param == "hdlc":
        cmd.append("--hdlc")
    p, port, title = start(cmd)
    yield request.param, port, title
    stop(p)


def run(args, expect=None):
    r = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    try:
        doc = json.loads(r.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"not JSON (exit {r.returncode}): {r.stdout!r} {r.stderr[-2000:]!r}")
    if expect is not None:
        assert r.returncode == expect, json.dumps(doc, indent=1)[:3000]
    return r.returncode, doc


def hes(cmd, transport, port, level, *rest, expect=0):
    args = [hes_bin(), cmd, "--host", "127.0.0.1", "--port", str(port), "--timeout", "10"]
    if transport == "hdlc":
        args.append("--hdlc")
    return run(args + LEVELS[level] + list(rest), expect)


def by_ref(doc):
    return {(o["class"], o["obis"], o["attribute"]): o for o in doc["objects"]}


def expected_rows():
    rows = []
    for t, a, b, c in gurux_server.profile_rows():
        rows.append((t.value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), a, b, c))
    return rows


def rows_of(value):
    assert value["type"] == "array"
    out = []
    for row in value["value"]:
        assert row["type"] == "structure" and len(row["value"]) >= 4
        t, *values = row["value"]
        out.append((t["datetime"], *[v["value"] for v in values]))
    return out


# --- hes read / hes action against the Gurux server -------------------------------------------


@pytest.mark.parametrize("level", list(LEVELS))
def test_hes_read_against_gurux(gurux, level):
    transport, port = gurux
    _, doc = hes(
        "read", transport, port, level,
        "3/1.0.1.8.0.255/2", "3/1.0.1.8.0.255/3", "1/0.0.42.0.0.255/2", "8/0.0.1.0.0.255/2",
        "7/1.0.99.1.0.255/2",
    )
    o = by_ref(doc)
    assert o[(3, "1.0.1.8.0.255", 2)]["value"]["value"] == gurux_server.REGISTER_VALUE
    su = o[(3, "1.0.1.8.0.255", 3)]["value"]
    assert [x["value"] for x in su["value"]] == [0, 30]  # 10^0 Wh
    assert bytes.fromhex(o[(1, "0.0.42.0.0.255", 2)]["value"]["value"]) == gurux_server.LDN
    assert o[(8, "0.0.1.0.0.255", 2)]["value"]["datetime"] == "2026-11-26T00:00:00Z"
    assert rows_of(o[(7, "1.0.99.1.0.255", 2)]["value"]) == expected_rows()


@pytest.mark.parametrize("level", list(LEVELS))
def test_hes_read_selective_access_against_gurux(gurux, level):
    transport, port = gurux
    want = expected_rows()
    _, doc = hes("read", transport, port, level, "--entries", "95:0", "7/1.0.99.1.0.255/2")
    assert rows_of(doc["objects"][0]["value"]) == want[94:]
    _, doc = hes(
        "read", transport, port, level,
        "--from", "2026-11-25T23:00:00Z", "--to", "2026-11-25T23:30:00+00:00", "7/1.0.99.1.0.255/2",
    )
    assert rows_of(doc["objects"][0]["value"]) == [r for r in want if "2026-11-25T23:00" <= r[0][:16] <= "2026-11-25T23:30"]
    assert len(doc["objects"][0]["value"]["value"]) == 3


@pytest.mark.parametrize("level", ["lls", "hls-gmac"])
def test_hes_action_against_gurux(gurux, level):
    transport, port = gurux
    _, doc = hes("action", transport, port, level, "70/0.0.96.3.10.255/1", "--param", "0f00")
    assert doc["objects"][0]["result"] == {"name": "success", "code": 0}
    _, doc = hes("read", transport, port, level, "70/0.0.96.3.10.255/2")
    assert doc["objects"][0]["value"] == {"type": "boolean", "value": False}
    hes("action", transport, port, level, "70/0.0.96.3.10.255/2", "--param", "0f00")
    _, doc = hes("read", transport, port, level, "70/0.0.96.3.10.255/2")
    assert doc["objects"][0]["value"] == {"type": "boolean", "value": True}


def test_public_client_may_not_command_gurux(gurux):
    transport, port = gurux
    _, doc = hes("action", transport, port, "none", "70/0.0.96.3.10.255/1", "--param", "0f00", expect=2)
    assert doc["objects"][0]["result"]["name"] == "read-write-denied"


def test_wrong_password_is_an_association_failure(gurux):
    transport, port = gurux
    args = [hes_bin(), "read", "--host", "127.0.0.1", "--port", str(port), "--timeout", "10",
            "--client", "17", "--auth", "lls", "--password", "wrong", "3/1.0.1.8.0.255/2"]
    if transport == "hdlc":
        args.append("--hdlc")
    _, doc = run(args, expect=1)
    assert doc["error"]["reason"] == "authentication-failure"


# --- Gurux's client against hes sim ------------------------------------------------------------


def gurux_client(transport, port, level, *rest):
    args = [sys.executable, os.path.join(HERE, "gurux_client.py"), "--host", "127.0.0.1", "--port", str(port)]
    if transport == "hdlc":
        args.append("--hdlc")
    lv = list(LEVELS[level])
    if level == "hls-gmac":
        lv += ["--ic-obis", "0.0.43.1.0.255"]
    return run(args + lv + list(rest))


@pytest.mark.parametrize("level", list(LEVELS))
def test_gurux_client_reads_hes_sim(sim, level):
    transport, port, _ = sim
    code, doc = gurux_client(
        transport, port, level,
        "3/1.0.1.8.0.255/2", "1/0.0.42.0.0.255/2", "8/0.0.1.0.0.255/2", "7/1.0.99.1.0.255/2",
        "15/0.0.40.0.0.255/2",
    )
    assert code == 0, doc
    o = {(x["class"], x["obis"]): x for x in doc["objects"]}
    assert all("error" not in x for x in doc["objects"]), doc
    register = o[(3, "1.0.1.8.0.255")]["value"]
    profile = o[(7, "1.0.99.1.0.255")]
    assert profile["columns"] == 5 and len(profile["rows"]) == 96
    times = [datetime.datetime.fromisoformat(r[0]["value"]) for r in profile["rows"]]
    assert all((b - a) == datetime.timedelta(minutes=15) for a, b in zip(times, times[1:]))
    assert all(t.minute % 15 == 0 and t.second == 0 for t in times)
    imports = [r[1] for r in profile["rows"]]
    assert all(b > a for a, b in zip(imports, imports[1:])), "cumulative +A must grow"
    # The register holds the energy of every completed interval: the profile's last +A.
    now = datetime.datetime.now(datetime.timezone.utc)
    if now.minute % 15 != 14:  # not right at an interval boundary
        assert register == imports[-1]
    assert bytes.fromhex(o[(1, "0.0.42.0.0.255")]["value"]["value"]).startswith(b"HES")
    # Our simulator's data, read by our own client, is the same as Gurux read.
    _, ours = hes("read", transport, port, level if level != "hls-gmac" else "none", "7/1.0.99.1.0.255/2")
    our_rows = rows_of(ours["objects"][0]["value"])
    assert [r[1:] for r in our_rows] == [tuple(r[1:]) for r in profile["rows"]] or now.minute % 15 == 14


def test_gurux_client_commands_hes_sim(sim):
    transport, port, _ = sim
    level = "hls-gmac"
    code, doc = gurux_client(transport, port, level, "70/0.0.96.3.10.255/2", "--action", "70/0.0.96.3.10.255/1")
    assert code == 0, doc
    code, doc = gurux_client(transport, port, level, "70/0.0.96.3.10.255/2", "--action", "70/0.0.96.3.10.255/2")
    assert code == 0, doc
    # The read came before the reconnect: the relay was open.
    assert doc["objects"][0]["value"] is False


@pytest.mark.parametrize("level", ["none", "lls"])
def test_gurux_reading_clients_may_not_command_hes_sim(sim, level):
    # Only the management client (HLS) commands; the public and the reader (LLS) clients read.
    transport, port, _ = sim
    code, doc = gurux_client(transport, port, level, "--action", "70/0.0.96.3.10.255/1")
    assert code == 2
    assert doc["objects"][0]["error"]["code"] == 3  # read-write-denied


def test_invocation_counter_continues_and_replays_are_refused(sim):
    transport, port, _ = sim
    hls = [hes_bin(), "read", "--host", "127.0.0.1", "--port", str(port), "--timeout", "10"]
    if transport == "hdlc":
        hls.append("--hdlc")
    hls += LEVELS["hls-gmac"]
    _, first = run(hls + ["--ic-obis", "0.0.43.1.0.255", "3/1.0.1.8.0.255/2"], expect=0)
    _, second = run(hls + ["--ic-obis", "0.0.43.1.0.255", "3/1.0.1.8.0.255/2"], expect=0)
    assert second["next_invocation_counter"] > first["next_invocation_counter"]
    # Starting again from 1 replays counters the meter has seen: refused.
    _, doc = run(hls + ["--invocation-counter", "1", "3/1.0.1.8.0.255/2"], expect=1)
    assert doc["error"]["reason"] in ("authentication-failure", "ciphering-failure")


@pytest.mark.parametrize("level", ["none", "hls-gmac"])
def test_gurux_client_reads_hes_sim_in_blocks(sim, level):
    # A 256-byte client PDU makes our server send the 96-row profile in GET data blocks, which
    # Gurux's client acknowledges block by block and reassembles.
    transport, port, _ = sim
    code, doc = gurux_client(transport, port, level, "--max-pdu", "256", "7/1.0.99.1.0.255/2")
    assert code == 0, doc
    profile = doc["objects"][0]
    assert profile["columns"] == 5 and len(profile["rows"]) == 96


# --- a second independent client: dlms-cosem (wrapper) ---------------------------------------


@pytest.fixture(scope="module")
def wrapper_sim():
    p, port, _ = start([hes_bin(), "sim", "--port", "0", "--profile-entries", "96"])
    yield port
    stop(p)


# dlms-cosem is exercised over the wrapper in this suite; HDLC is covered
# by Gurux above.
@pytest.mark.parametrize("level", list(LEVELS))
def test_dlms_cosem_client_reads_hes_sim(wrapper_sim, level):
    transport, port = "wrapper", wrapper_sim
    client = {"none": "16", "lls": "17", "hls-gmac": "1"}[level]
    args = [sys.executable, os.path.join(HERE, "dlms_cosem_client.py"), "--host", "127.0.0.1",
            "--port", str(port), "--client", client]
    if level == "hls-gmac":
        # Continue from the counter the meter last saw, as a head-end must.
        _, ic = hes("read", transport, port, "none", "1/0.0.43.1.0.255/2")
        args += ["--invocation-counter", str(ic["objects"][0]["value"]["value"] + 1)]
    code, doc = run(args + ["3/1.0.1.8.0.255/2", "7/1.0.99.1.0.255/2"])
    assert code == 0, doc
    register, profile = (bytes.fromhex(o["axdr"]) for o in doc["objects"])
    assert register[0] == 0x06 and len(register) == 5  # double-long-unsigned
    assert profile[:2] == bytes([0x01, 96])  # an array of 96 rows
    _, ours = hes("read", transport, port, "none", "3/1.0.1.8.0.255/2")
    now = datetime.datetime.now(datetime.timezone.utc)
    assert int.from_bytes(register[1:], "big") == ours["objects"][0]["value"]["value"] or now.minute % 15 == 14
