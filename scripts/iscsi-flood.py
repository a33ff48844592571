#!/usr/bin/env python3
"""Hostile iSCSI peers against one target, for scripts/flood-test.sh.

Runs at once, for --seconds:
  readers      log in, pipeline 16 MiB READ(16)s up to the command window, never read
               their socket (receive buffer shrunk to its minimum);
  immediate    logs in and floods immediate WRITEs that announce 16 MiB and send no data,
               with distinct task tags, reading the target's answers (Rejects expected);
  half-PDU     log in, send a 48-byte header announcing a data segment and a few bytes of
               it, then trickle nothing more;
  silent       connect and never send a login.
Prints one line per kind with what the target did, and exits 0 unless the tool itself
could not set up an attack (a login refused, the target unreachable).
"""
import argparse
import socket
import sys
import threading
import time

from iscsi_client import BHS_BYTES, READ16, WRITE16, Session, cdb16


class Outcome:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}

    def add(self, kind, what, count=1):
        with self.lock:
            self.counts.setdefault(kind, {}).setdefault(what, 0)
            self.counts[kind][what] += count


def closed_by_peer(sock, wait_s):
    """True when the peer closed the connection within wait_s (data read is discarded)."""
    sock.settimeout(wait_s)
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (socket.timeout, TimeoutError):
        return False
    except OSError:
        return True
    return False


def reader(args, index, stop, outcome):
    session = Session(args.host, args.port, args.target, 0x400000000000 + index, receive_buffer=1)
    blocks = args.read_bytes // args.block_bytes
    sent = 0
    session.sock.settimeout(0.5)
    itt = 0x1000
    try:
        while not stop.is_set() and sent < args.window:
            lba = (sent * blocks) % max(1, args.volume_blocks - blocks)
            session.sock.sendall(session.command(itt, cdb16(READ16, lba, blocks), args.read_bytes, True, False))
            itt += 1
            sent += 1
        outcome.add("readers", "READs sent", sent)
        stop.wait()
    except (socket.timeout, TimeoutError):
        outcome.add("readers", "READs sent", sent)
        outcome.add("readers", "send blocked (target stopped reading)")
        stop.wait()
    except OSError as error:
        outcome.add("readers", f"error {error.__class__.__name__}")
    finally:
        session.sock.close()


def immediate_flood(args, stop, outcome):
    session = Session(args.host, args.port, args.target, 0x410000000000)
    session.sock.settimeout(0.2)
    itt = 0x2000
    pending = bytearray()
    try:
        while not stop.is_set():
            for _ in range(64):
                cdb = cdb16(WRITE16, 0, args.read_bytes // args.block_bytes)
                session.sock.sendall(session.command(itt, cdb, args.read_bytes, False, True, immediate=True,
                                                     final=False))
                itt += 1
            outcome.add("immediate", "immediate WRITEs sent", 64)
            try:
                while True:
                    chunk = session.sock.recv(65536)
                    if not chunk:
                        outcome.add("immediate", "closed by the target")
                        return
                    pending += chunk
                    while len(pending) >= BHS_BYTES:
                        length = int.from_bytes(pending[5:8], "big")
                        total = BHS_BYTES + length + (-length % 4)
                        if len(pending) < total:
                            break
                        opcode, reason = pending[0] & 0x3F, pending[2]
                        outcome.add("immediate", f"Reject {reason:#04x}" if opcode == 0x3F else f"opcode {opcode:#04x}")
                        del pending[:total]
            except (socket.timeout, TimeoutError):
                pass
    except OSError as error:
        outcome.add("immediate", f"connection ended ({error.__class__.__name__})")
    finally:
        session.sock.close()


def half_pdu(args, index, stop, outcome):
    session = Session(args.host, args.port, args.target, 0x420000000000 + index)
    message = session.command(0x3000, cdb16(WRITE16, 0, 2), 8192, False, True, data=b"\xAB" * 8192)
    session.sock.sendall(message[:BHS_BYTES + 100])
    outcome.add("half-PDU", "half PDUs sent")
    while not stop.is_set():
        if closed_by_peer(session.sock, 0.5):
            outcome.add("half-PDU", "closed by the target")
            break
    session.sock.close()


def silent(args, stop, outcome):
    sock = socket.create_connection((args.host, args.port))
    outcome.add("silent", "connections without a login")
    while not stop.is_set():
        if closed_by_peer(sock, 0.5):
            outcome.add("silent", "closed by the target")
            break
    sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--half-pdus", type=int, default=4)
    parser.add_argument("--silent", type=int, default=4)
    parser.add_argument("--window", type=int, default=128, help="READs each reader pipelines")
    parser.add_argument("--read-bytes", type=int, default=16 << 20)
    parser.add_argument("--block-bytes", type=int, default=4096)
    parser.add_argument("--volume-bytes", type=int, default=1 << 30)
    args = parser.parse_args()
    args.volume_blocks = args.volume_bytes // args.block_bytes

    stop = threading.Event()
    outcome = Outcome()
    workers = [threading.Thread(target=reader, args=(args, i, stop, outcome)) for i in range(args.readers)]
    workers.append(threading.Thread(target=immediate_flood, args=(args, stop, outcome)))
    workers += [threading.Thread(target=half_pdu, args=(args, i, stop, outcome)) for i in range(args.half_pdus)]
    workers += [threading.Thread(target=silent, args=(args, stop, outcome)) for _ in range(args.silent)]
    failed = []

    def guarded(worker):
        target = worker._target

        def run(*run_args):
            try:
                target(*run_args)
            except Exception as error:  # a setup failure is the tool's, reported and fatal
                failed.append(f"{target.__name__}: {error}")
        worker._target = run

    for worker in workers:
        guarded(worker)
        worker.daemon = True
        worker.start()
    time.sleep(args.seconds)
    stop.set()
    for worker in workers:
        worker.join(timeout=5)
    for kind, counts in sorted(outcome.counts.items()):
        print(f"{kind}: " + ", ".join(f"{what} {count}" for what, count in sorted(counts.items())))
    if failed:
        print("flood setup failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
