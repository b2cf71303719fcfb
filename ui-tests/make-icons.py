#!/usr/bin/env python3
"""Renders the PWA icons (PNG 192, 512 and a maskable 512) from the shapes of
crates/hes-api/ui/icons/icon.svg, with only the standard library (no Pillow needed):
a rounded square, a polyline (the load curve) and a polygon (the bolt), 4x4 supersampled."""
import math, os, struct, sys, zlib

BG = (0x0B, 0x4F, 0x8A)
LINE = (0x8C, 0xC8, 0xFF)
BOLT = (0xFF, 0xD4, 0x3B)
CURVE = [(112, 352), (176, 272), (232, 312), (304, 200), (352, 248), (400, 160)]
CURVE_W = 28
BOLT_POLY = [(284, 64), (176, 288), (252, 288), (220, 448), (344, 208), (268, 208), (300, 64)]


def in_poly(x, y, poly):
    inside = False
    j = len(poly) - 1
    for i in range(len(poly)):
        xi, yi = poly[i]
        xj, yj = poly[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def seg_dist2(px, py, a, b):
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    cx, cy = ax + t * dx - px, ay + t * dy - py
    return cx * cx + cy * cy


def in_rrect(x, y, r, size=512):
    cx = min(max(x, r), size - r)
    cy = min(max(y, r), size - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def colour_at(x, y, maskable):
    # maskable: full-bleed background, artwork scaled into the 80 % safe zone
    if maskable:
        x, y = (x - 256) / 0.8 + 256, (y - 256) / 0.8 + 256
        bg = True
    else:
        bg = in_rrect(x, y, 96)
    if not bg:
        return None
    if in_poly(x, y, BOLT_POLY):
        return BOLT
    half = (CURVE_W / 2) ** 2
    for a, b in zip(CURVE, CURVE[1:]):
        if seg_dist2(x, y, a, b) <= half:
            return LINE
    return BG


def render(size, maskable=False, ss=4):
    scale = 512 / size
    rows = []
    for py in range(size):
        row = bytearray([0])
        for px in range(size):
            r = g = b = a = 0
            for sy in range(ss):
                for sx in range(ss):
                    c = colour_at((px + (sx + 0.5) / ss) * scale, (py + (sy + 0.5) / ss) * scale, maskable)
                    if c:
                        r += c[0]; g += c[1]; b += c[2]; a += 1
            n = ss * ss
            if a:
                row += bytes((r // a, g // a, b // a, round(255 * a / n)))
            else:
                row += b"\0\0\0\0"
        rows.append(bytes(row))
    return png(size, size, b"".join(rows))


def png(w, h, raw):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "crates", "hes-api", "ui", "icons")
    for name, size, mask, ss in [("icon-192.png", 192, False, 4), ("icon-512.png", 512, False, 3), ("icon-maskable-512.png", 512, True, 3)]:
        with open(os.path.join(out, name), "wb") as f:
            f.write(render(size, mask, ss))
        print(name)
