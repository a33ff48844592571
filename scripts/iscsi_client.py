"""A minimal iSCSI initiator for the test scripts: PDU framing and one logged-in normal
session without authentication or digests (RFC 7143). Enough to drive a target in ways
real initiators do not (flood-test) or to time single commands (flush-latency)."""
import socket
import struct

BHS_BYTES = 48
READ16, WRITE16 = 0x88, 0x8A


def pad4(data):
    return data + b"\0" * (-len(data) % 4)


def pdu(opcode, flags, data=b"", itt=0, fields=b"", lun=0, immediate=False):
    """A PDU: byte 0 opcode (I bit), byte 1 flags, DataSegmentLength, LUN, ITT, then bytes 20..47."""
    header = bytearray(BHS_BYTES)
    header[0] = opcode | (0x40 if immediate else 0)
    header[1] = flags
    header[5:8] = len(data).to_bytes(3, "big")
    header[8:16] = struct.pack(">Q", lun)
    header[16:20] = struct.pack(">I", itt)
    header[20:20 + len(fields)] = fields
    return bytes(header) + pad4(data)


def recv_exact(sock, count):
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks += chunk
    return bytes(chunks)


def recv_pdu(sock):
    header = recv_exact(sock, BHS_BYTES)
    length = int.from_bytes(header[5:8], "big") + header[4] * 4
    data = recv_exact(sock, length + (-length % 4)) if length else b""
    return header, data[:length]


class Session:
    """A logged-in normal session without authentication or digests."""

    def __init__(self, host, port, target, isid, receive_buffer=None, initiator="flood"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.connect((host, port))
        self.cmd_sn = 1
        self.exp_stat_sn = 0
        keys = {
            "InitiatorName": f"iqn.2026-11.org.swift-block.test:{initiator}", "TargetName": target,
            "SessionType": "Normal", "HeaderDigest": "None", "DataDigest": "None",
            "MaxRecvDataSegmentLength": "262144", "ImmediateData": "Yes", "InitialR2T": "No",
            "MaxBurstLength": "16776192", "FirstBurstLength": "262144", "ErrorRecoveryLevel": "0",
            "MaxConnections": "1", "DefaultTime2Wait": "2", "DefaultTime2Retain": "0",
        }
        text = b"".join(f"{key}={value}".encode() + b"\0" for key, value in keys.items())
        # Operational stage straight to full feature (T bit, CSG 1, NSG 3); ISID, TSIH 0.
        fields = isid.to_bytes(6, "big") + b"\0\0"
        login = bytearray(pdu(0x03, 0x87, text, itt=1, immediate=True))
        login[8:16] = fields
        login[24:28] = struct.pack(">I", self.cmd_sn)
        self.sock.sendall(bytes(login))
        header, _ = recv_pdu(self.sock)
        if header[0] & 0x3F != 0x23 or header[36] != 0 or header[1] & 0x83 != 0x83:
            raise RuntimeError(f"login refused: class {header[36]:#x} detail {header[37]:#x}")
        self.exp_stat_sn = struct.unpack(">I", header[24:28])[0] + 1
        self.max_cmd_sn = struct.unpack(">I", header[32:36])[0]

    def command(self, itt, cdb, expected_bytes, read, write, immediate=False, final=True, data=b""):
        flags = (0x80 if final else 0) | (0x40 if read else 0) | (0x20 if write else 0) | 0x01
        fields = struct.pack(">III", expected_bytes, self.cmd_sn, self.exp_stat_sn)
        message = bytearray(pdu(0x01, flags, data, itt=itt, fields=fields, immediate=immediate))
        message[32:32 + len(cdb)] = cdb
        if not immediate:
            self.cmd_sn += 1
        return bytes(message)

    def exchange(self, message):
        """Sends one command and returns its SCSI Response header (Data-In PDUs are skipped)."""
        self.sock.sendall(message)
        while True:
            header, _ = recv_pdu(self.sock)
            if header[0] & 0x3F == 0x21:
                self.exp_stat_sn = struct.unpack(">I", header[24:28])[0] + 1
                return header


def cdb16(opcode, lba, blocks):
    return struct.pack(">BBQIBB", opcode, 0, lba, blocks, 0, 0)
