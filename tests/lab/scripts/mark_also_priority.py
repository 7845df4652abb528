#!/usr/bin/env python3
"""Reconstructs `action::ALSO_PRIORITY` in a capture recorded before the
data plane set it (the held-out recordings up to the twenty-second), so that
schema v7's census can be replayed over it without bias (docs/FEATURES.md,
"Schema v7").

    mark_also_priority.py IN.pncap OUT.pncap [--strip]

A uniform sample (no PRIORITY or REPLY flag) gets the mark when priority
sampling would have admitted it as well, by the classes of
phantomnet_common::sampling: a TCP control packet (no ACK, or RST) always;
a first-payload-class packet (TCP with ACK and payload, UDP, ICMP) while its
directional 5-tuple has had fewer than FIRST_PAYLOAD_PACKETS (2) such
samples. Every one of a flow's first two is in the capture, either as a
priority sample or as a drawn one, so the count is exact. What it cannot
see are the bounds (the per-source and per-CPU buckets) and the kernel's
flow-slot collisions. On the twenty-third recording, which carries the
data plane's own marks, the reconstruction agrees on 5,647 of 5,803 uniform
samples, and its replay decides every source as the live agent did.

--strip clears every mark instead (to replay a marked capture as an
unmarked one). A plain byte rewrite of the 16-byte header and 128-byte
records (phantomnet_common::capture); Python's standard library only.
"""
import struct
import sys

HEADER, RECORD = 16, 128
# Offsets in a PacketSample record (phantomnet-common/src/lib.rs).
SRC, DST, PORTS, PAYLOAD_LEN = 16, 32, 48, 52
PROTO, TCP_FLAGS, ACTION, FLAGS = 57, 58, 60, 62
PRIORITY, REPLY, NO_L4 = 0x40, 0x80, 0x04 | 0x08
ALSO_PRIORITY = 0x80
TCP_ACK, TCP_RST = 0x10, 0x04
FIRST_PAYLOAD_PACKETS = 2


def priority_class(rec):
    """0 uniform, 1 control, 2 first payload (sampling::priority_class)."""
    if rec[FLAGS] & NO_L4:
        return 0
    proto, flags = rec[PROTO], rec[TCP_FLAGS]
    if proto == 6:
        if flags & TCP_ACK == 0 or flags & TCP_RST:
            return 1
        return 2 if struct.unpack_from("<H", rec, PAYLOAD_LEN)[0] > 0 else 0
    return 2 if proto in (17, 1, 58) else 0


def main():
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] != "--strip"):
        sys.exit(__doc__)
    data = bytearray(open(sys.argv[1], "rb").read())
    if (len(data) - HEADER) % RECORD:
        sys.exit(f"{sys.argv[1]}: not whole 128-byte records after the header")
    strip = len(sys.argv) == 4
    flows, marked, agree, uniform = {}, 0, 0, 0
    for off in range(HEADER, len(data), RECORD):
        rec = data[off : off + RECORD]
        had = rec[ACTION] & ALSO_PRIORITY
        if strip:
            data[off + ACTION] = rec[ACTION] & ~ALSO_PRIORITY & 0xFF
            continue
        if rec[FLAGS] & REPLY:
            continue
        drawn = rec[FLAGS] & PRIORITY == 0
        cls, also = priority_class(rec), False
        if cls == 1:
            also = drawn
        elif cls == 2:
            key = (bytes(rec[SRC:DST]), bytes(rec[DST:PORTS]), bytes(rec[PORTS:PAYLOAD_LEN]), rec[PROTO])
            seen = flows.get(key, 0)
            if seen < FIRST_PAYLOAD_PACKETS:
                flows[key] = seen + 1
                also = drawn
        if drawn:
            uniform += 1
            marked += also
            agree += also == bool(had)
            data[off + ACTION] = (rec[ACTION] & ~ALSO_PRIORITY & 0xFF) | (ALSO_PRIORITY if also else 0)
    open(sys.argv[2], "wb").write(data)
    if not strip:
        print(f"{uniform} uniform samples, {marked} marked; the capture's own marks agree on {agree}")


if __name__ == "__main__":
    main()
