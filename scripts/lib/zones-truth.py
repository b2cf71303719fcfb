#!/usr/bin/env python3
"""The drills' ground-truth check (scripts/zones-drill): every load-profile entry the simulated
meters hold up to a moment is stored in PostgreSQL exactly once, with the meter's value.

Runs inside the clients zone (scripts/zones exec clients ...): it asks the simulator's control
API (GET /meters, GET /meters/{id}/profile/1.0.99.1.0.255?to=T) for the truth and PostgreSQL
(psql, the multi-host URL) for what is stored, then compares them entry by entry.

    zones-truth.py --control URL --db URL --to T [--meters N]

Prints one JSON line: meters, expected, stored, missing, wrong, extra, duplicates, and a few
examples of each; exits 1 when anything is missing, wrong, extra or duplicated.
"""

import argparse
import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

LOAD_PROFILE = "1.0.99.1.0.255"


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def truth_of(control, meter, to):
    p = get(f"{control}/meters/{meter}/profile/{LOAD_PROFILE}?to={to}")
    cols = p["columns"]
    out = {}
    for row in p["rows"]:
        t = int(row[0])
        for col, v in zip(cols[1:], row[1:]):
            obis, attr = col.split(":")
            out[(obis, int(attr), t)] = int(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--control", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--to", type=int, required=True)
    args = ap.parse_args()

    meters = [m["id"] for m in get(f"{args.control}/meters")]
    with ThreadPoolExecutor(16) as pool:
        truths = dict(zip(meters, pool.map(lambda m: truth_of(args.control, m, args.to), meters)))
    obis = sorted({k[0] for t in truths.values() for k in t})
    if not obis:
        print(json.dumps({"meters": len(meters), "expected": 0, "error": "the meters hold nothing"}))
        return 1
    # Per meter, the window is what the meter holds now up to T: its oldest entry may have left
    # the buffer since it was stored, so stored rows before it are not compared.
    first = {m: min(k[2] for k in t) for m, t in truths.items() if t}
    in_list = ",".join(f"'{o}'" for o in obis)
    sql = (
        f"\\copy (SELECT meter, obis, attribute, time, value, count(*) OVER "
        f"(PARTITION BY meter, obis, attribute, time) FROM readings WHERE obis IN ({in_list}) "
        f"AND time <= {args.to} AND time % 900 = 0) TO STDOUT"
    )
    res = subprocess.run(
        ["psql", "-X", "-q", "-tA", args.db + "&connect_timeout=5", "-c", sql],
        capture_output=True, text=True, timeout=300,
    )
    if res.returncode != 0:
        print(json.dumps({"error": "psql: " + res.stderr.strip()}))
        return 2
    stored = {}
    dup = []
    for line in res.stdout.splitlines():
        meter, o, attr, t, v, n = line.split("\t")
        t = int(t)
        if meter not in first or t < first[meter]:
            continue
        key = (o, int(attr), t)
        stored.setdefault(meter, {})[key] = int(v)
        if int(n) > 1:
            dup.append([meter, o, t, int(n)])
    expected = sum(len(t) for t in truths.values())
    missing, wrong, extra = [], [], []
    n_stored = 0
    for m, t in truths.items():
        s = stored.get(m, {})
        n_stored += len(s)
        for k, v in t.items():
            if k not in s:
                missing.append([m, k[0], k[2]])
            elif s[k] != v:
                wrong.append([m, k[0], k[2], s[k], v])
        for k in s:
            if k not in t:
                extra.append([m, k[0], k[2]])
    summary = {
        "meters": len(meters),
        "to": args.to,
        "expected": expected,
        "stored": n_stored,
        "missing": len(missing),
        "wrong": len(wrong),
        "extra": len(extra),
        "duplicates": len(dup),
        "meters_missing_some": len({x[0] for x in missing}),
        "examples": {"missing": missing[:3], "wrong": wrong[:3], "extra": extra[:3], "duplicates": dup[:3]},
    }
    print(json.dumps(summary))
    return 1 if (missing or wrong or extra or dup) else 0


if __name__ == "__main__":
    sys.exit(main())
