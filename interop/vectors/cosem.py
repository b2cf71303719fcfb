#!/usr/bin/env python3
"""Byte-exact COSEM attribute values and selective-access parameters from Gurux
(gurux-dlms==1.0.203), our reference peer, for crates/dlms/src/cosem.

Attribute values come from each Gurux object's getValue (the encoding a Gurux server sends);
access-selector parameters are cut out of the GetRequest APDUs GXDLMSClient builds for
readRowsByRange / readRowsByEntry (wrapper interface, so the APDU follows an 8-byte header).
Writes testdata/gurux/cosem.json (run from the repository root):

    python3 interop/vectors/cosem.py
"""

import json
import math
import os
from datetime import datetime, timedelta, timezone

from gurux_dlms import GXByteBuffer, GXDLMSClient
from gurux_dlms.ValueEventArgs import ValueEventArgs
from gurux_dlms.enums import Authentication, InterfaceType, Unit
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSCaptureObject,
    GXDLMSClock,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)

WRAPPER_HEADER = 8
# C0 01 invoke-id, class-id(2) instance(6) attribute(1), access-selection flag, selector
GET_REQUEST_PREFIX = 3 + 9 + 1


def client():
    return GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)


def value(c, obj, index):
    v = obj.getValue(c.settings, ValueEventArgs(c.settings, obj, index, 0, None))
    if isinstance(v, GXByteBuffer):
        v = v.array()
    return bytes(v).hex()


def selective_access(reqs):
    """Selector and parameter bytes of the single GetRequest-Normal in reqs."""
    assert len(reqs) == 1
    apdu = bytes(reqs[0])[WRAPPER_HEADER:]
    assert apdu[:2] == b"\xc0\x01", apdu.hex()
    assert apdu[GET_REQUEST_PREFIX - 1] == 1, "access selection present"
    return apdu[GET_REQUEST_PREFIX], apdu[GET_REQUEST_PREFIX + 1 :].hex()


def main():
    c = client()
    vectors = []

    # Gurux quirk: it derives the scaler as math.floor(math.log(scaler, 10)), which rounds
    # log(1000, 10) = 2.9999999999999996 to 2, so a scaler of 1000 goes out as 10^2. Only
    # powers of ten it computes exactly are used here.
    for scaler, unit in [(0.01, Unit.ACTIVE_ENERGY), (100, Unit.ACTIVE_POWER), (1, Unit.VOLTAGE)]:
        r = GXDLMSRegister("1.0.1.8.0.255")
        r.scaler = scaler
        r.unit = unit
        vectors.append(
            {
                "kind": "scaler_unit",
                "scaler": round(math.log10(scaler)),
                "unit": int(unit),
                "hex": value(c, r, 3),
            }
        )

    clock = GXDLMSClock("0.0.1.0.0.255")
    energy = GXDLMSRegister("1.0.1.8.0.255")
    export = GXDLMSRegister("1.0.2.8.0.255")
    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    pg.captureObjects.append((clock, GXDLMSCaptureObject(2, 0)))
    pg.captureObjects.append((energy, GXDLMSCaptureObject(2, 0)))
    pg.captureObjects.append((export, GXDLMSCaptureObject(2, 0)))
    vectors.append(
        {
            "kind": "capture_objects",
            "objects": [
                {"class_id": 8, "logical_name": "0.0.1.0.0.255", "attribute_index": 2, "data_index": 0},
                {"class_id": 3, "logical_name": "1.0.1.8.0.255", "attribute_index": 2, "data_index": 0},
                {"class_id": 3, "logical_name": "1.0.2.8.0.255", "attribute_index": 2, "data_index": 0},
            ],
            "hex": value(c, pg, 3),
        }
    )

    # Without a server behind it Gurux writes empty access-right arrays.
    a = GXDLMSAssociationLogicalName()
    for obj in (clock, energy, pg):
        a.objectList.append(obj)
    vectors.append(
        {
            "kind": "object_list",
            "objects": [
                {"class_id": o.objectType, "version": o.version, "logical_name": o.logicalName}
                for o in (clock, energy, pg)
            ],
            "hex": value(c, a, 2),
        }
    )

    cet = timezone(timedelta(hours=1))
    start = datetime(2026, 1, 1, 0, 0, tzinfo=cet)
    end = datetime(2026, 1, 1, 1, 0, tzinfo=cet)
    for columns in (None, [(export, GXDLMSCaptureObject(2, 0))]):
        selector, params = selective_access(c.readRowsByRange(pg, start, end, columns))
        vectors.append(
            {
                "kind": "range_descriptor",
                "selector": selector,
                "from_unix": int(start.timestamp()),
                "to_unix": int(end.timestamp()),
                "selected": [] if columns is None else ["1.0.2.8.0.255"],
                "hex": params,
            }
        )

    for index, count in ((1, 4), (10, 0)):
        selector, params = selective_access(c.readRowsByEntry(pg, index, count))
        vectors.append(
            {
                "kind": "entry_descriptor",
                "selector": selector,
                "index": index,
                "count": count,
                "hex": params,
            }
        )

    out = os.path.join("testdata", "gurux", "cosem.json")
    with open(out, "w") as f:
        json.dump({"generator": "gurux-dlms 1.0.203", "vectors": vectors}, f, indent=1)
        f.write("\n")
    print(f"wrote {len(vectors)} vectors to {out}")


if __name__ == "__main__":
    main()
