#!/usr/bin/env python3
"""Times a quiet volume's flushes, one at a time, for scripts/many-volumes-test.sh.

Logs in to --target, clears the new nexus's unit attention and, --ops times: WRITE(16) of 4 KiB with immediate data, then
SYNCHRONIZE CACHE(10), each waited for before the next is sent (depth 1). Prints the
flush and the write + flush times as p50 / p99 / max in milliseconds, then the lines
`flush_p50_ms=X` and `flush_p99_ms=Y` for scripts to read. Exits 1 when a command does not end GOOD.
"""
import argparse
import struct
import sys
import time

from iscsi_client import WRITE16, Session, cdb16

SYNCHRONIZE_CACHE10 = 0x35


def percentile(sorted_values, fraction):
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def summary(name, values_s):
    ordered = sorted(values_s)
    p50, p99, worst = (1000 * percentile(ordered, f) for f in (0.5, 0.99, 1.0))
    return f"{name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms ({len(ordered)} ops)", p50, p99


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--block-bytes", type=int, default=4096)
    args = parser.parse_args()

    session = Session(args.host, args.port, args.target, 0x430000000000, initiator="flush-latency")
    session.sock.settimeout(30)
    payload = b"\x5A" * args.block_bytes
    flush_cdb = struct.pack(">BBIBHB", SYNCHRONIZE_CACHE10, 0, 0, 0, 0, 0)
    # A new I_T nexus first sees a unit attention (power on or reset); a TEST UNIT READY takes it.
    session.exchange(session.command(0x4FFF, bytes(6), 0, False, False))
    flushes_s, totals_s = [], []
    for op in range(args.ops):
        itt = 0x5000 + 2 * op
        started = time.perf_counter()
        write = session.command(itt, cdb16(WRITE16, op * 8, 1), args.block_bytes, False, True, data=payload)
        response = session.exchange(write)
        flush_started = time.perf_counter()
        flush = session.command(itt + 1, flush_cdb, 0, False, False)
        flush_response = session.exchange(flush)
        ended = time.perf_counter()
        for what, header in (("WRITE", response), ("SYNCHRONIZE CACHE", flush_response)):
            if header[2] != 0 or header[3] != 0:
                print(f"{what} {op} ended with response {header[2]:#x} status {header[3]:#x}", file=sys.stderr)
                return 1
        flushes_s.append(ended - flush_started)
        totals_s.append(ended - started)
    session.sock.close()
    flush_line, flush_p50_ms, flush_p99_ms = summary("flush", flushes_s)
    total_line, _, _ = summary("write + flush", totals_s)
    print(flush_line)
    print(total_line)
    print(f"flush_p50_ms={flush_p50_ms:.3f}")
    print(f"flush_p99_ms={flush_p99_ms:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
