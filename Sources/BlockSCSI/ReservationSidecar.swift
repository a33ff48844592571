// The sidecar file that keeps persistent reservations across restarts (APTPL, SPC-4 5.9.5).
//
// Format (little-endian), version 2:
//   0   8  magic "SWBLKPR1"
//   8   4  format version (2)
//   12  4  payload length P (at most `maxPayloadBytes`)
//   16  P  payload:
//            1  flags (bit 0: APTPL)
//            1  reservation present (0 or 1)
//            [1 type, nexus]       when present: type and holder
//            4  registration count N (at most ReservationState.maxRegistrations)
//            N × (8 key, nexus)
//          nexus = 8 ISID, 2 TPGT, 2 initiator name length L (at most 223), L bytes UTF-8
//                  initiator name, 2 target name length T (at most 223), T bytes UTF-8 target name
//   16+P 4 CRC32C of bytes 0 ..< 16+P
// Version 1 had no target name in a nexus; such a file is still read, its nexuses taking the
// logical unit's own target name (before version 2 a logical unit had exactly one target).
//
// Invariants:
// - Written atomically: a temporary file is written and fsynced, renamed over the sidecar,
//   and the directory is fsynced; a crash leaves the old file or the new one, never a mix.
// - Read strictly: any bad magic, version, length, checksum, bound or trailing byte is an
//   error naming the file and the reason. A damaged file is never silently dropped.
// - PRgeneration is not stored: it restarts at 0 after power on (SPC-4 6.15.2).

import BlockEngine

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why the reservation sidecar file could not be used.
public enum ReservationFileError: Error, Sendable, Equatable, CustomStringConvertible {
    case corrupt(path: String, reason: String)
    case unsupportedVersion(path: String, version: UInt32)
    case io(path: String, operation: String, errno: Int32)

    public var description: String {
        switch self {
        case let .corrupt(path, reason):
            return "persistent reservation file \(path) is damaged: \(reason)"
        case let .unsupportedVersion(path, version):
            return "persistent reservation file \(path) has format version \(version); this build reads versions \(ReservationSidecar.readableVersions)"
        case let .io(path, operation, errno):
            return "persistent reservation file \(path): \(operation) failed (errno \(errno))"
        }
    }
}

enum ReservationSidecar {
    static let magic: [UInt8] = Array("SWBLKPR1".utf8)
    static let version: UInt32 = 2
    static let readableVersions: ClosedRange<UInt32> = 1...2
    static let headerBytes = 16
    static let maxPayloadBytes = 1 << 20
    static let maxNameBytes = 223

    // MARK: Encoding

    static func encode(_ state: ReservationState) -> [UInt8] {
        var payload: [UInt8] = [state.persistThroughPowerLoss ? 1 : 0]
        if let reservation = state.reservation {
            payload.append(1)
            payload.append(reservation.type.rawValue)
            appendNexus(reservation.holder, to: &payload)
        } else {
            payload.append(0)
        }
        appendLE(UInt32(state.registrations.count), to: &payload)
        for registration in state.registrations {
            appendLE(registration.key, to: &payload)
            appendNexus(registration.nexus, to: &payload)
        }
        precondition(payload.count <= maxPayloadBytes, "reservation state exceeds the sidecar bound")
        var file = magic
        appendLE(version, to: &file)
        appendLE(UInt32(payload.count), to: &file)
        file.append(contentsOf: payload)
        appendLE(CRC32C.checksum(file), to: &file)
        return file
    }

    private static func appendNexus(_ nexus: ITNexus, to bytes: inout [UInt8]) {
        // Login refuses longer iSCSI names, so nothing is cut here in practice.
        let initiatorName = Array(nexus.initiatorName.utf8.prefix(maxNameBytes))
        let targetName = Array(nexus.targetName.utf8.prefix(maxNameBytes))
        appendLE(nexus.initiatorSessionID, to: &bytes)
        appendLE(nexus.targetPortalGroupTag, to: &bytes)
        appendLE(UInt16(initiatorName.count), to: &bytes)
        bytes.append(contentsOf: initiatorName)
        appendLE(UInt16(targetName.count), to: &bytes)
        bytes.append(contentsOf: targetName)
    }

    private static func appendLE<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    // MARK: Decoding

    /// Decodes a whole file; generation starts at 0. A version 1 nexus gets
    /// `targetNameOfVersion1`.
    static func decode(_ file: [UInt8], path: String, targetNameOfVersion1: String) throws(ReservationFileError) -> ReservationState {
        var reader = LittleEndianReader(bytes: file, path: path)
        guard file.count >= headerBytes + 4 else { throw .corrupt(path: path, reason: "\(file.count) bytes is shorter than the header") }
        guard Array(file[0..<8]) == magic else { throw .corrupt(path: path, reason: "bad magic") }
        reader.offset = 8
        let foundVersion = try reader.read(UInt32.self)
        guard readableVersions.contains(foundVersion) else { throw .unsupportedVersion(path: path, version: foundVersion) }
        let versionOneTarget = foundVersion == 1 ? targetNameOfVersion1 : nil
        let payloadBytes = Int(try reader.read(UInt32.self))
        guard payloadBytes <= maxPayloadBytes, file.count == headerBytes + payloadBytes + 4 else {
            throw .corrupt(path: path, reason: "payload length \(payloadBytes) does not match the file size \(file.count)")
        }
        let stored = file.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: headerBytes + payloadBytes, as: UInt32.self) }
        guard CRC32C.checksum(Array(file[..<(headerBytes + payloadBytes)])) == UInt32(littleEndian: stored) else {
            throw .corrupt(path: path, reason: "checksum mismatch")
        }
        reader.limit = headerBytes + payloadBytes

        var state = ReservationState()
        let flags = try reader.read(UInt8.self)
        guard flags & ~1 == 0 else { throw .corrupt(path: path, reason: "unknown flags \(flags)") }
        state.persistThroughPowerLoss = flags & 1 != 0
        switch try reader.read(UInt8.self) {
        case 0: break
        case 1:
            let rawType = try reader.read(UInt8.self)
            guard let type = PersistentReservationType(rawValue: rawType) else {
                throw .corrupt(path: path, reason: "unknown reservation type \(rawType)")
            }
            state.reservation = PersistentReservation(type: type, holder: try readNexus(&reader, versionOneTarget))
        case let other:
            throw .corrupt(path: path, reason: "reservation marker \(other)")
        }
        let count = Int(try reader.read(UInt32.self))
        guard count <= ReservationState.maxRegistrations else { throw .corrupt(path: path, reason: "\(count) registrations") }
        for _ in 0..<count {
            let key = try reader.read(UInt64.self)
            state.registrations.append(PersistentRegistration(nexus: try readNexus(&reader, versionOneTarget), key: key))
        }
        guard reader.offset == reader.limit else { throw .corrupt(path: path, reason: "trailing bytes in the payload") }
        guard isConsistent(state) else { throw .corrupt(path: path, reason: "registrations and reservation disagree") }
        return state
    }

    /// One nexus; `versionOneTarget` is the target name of a version 1 file (which stored none).
    private static func readNexus(_ reader: inout LittleEndianReader,
                                  _ versionOneTarget: String?) throws(ReservationFileError) -> ITNexus {
        let isid = try reader.read(UInt64.self)
        let tag = try reader.read(UInt16.self)
        let initiatorName = try readName(&reader, "initiator")
        var targetName = versionOneTarget ?? ""
        if versionOneTarget == nil { targetName = try readName(&reader, "target") }
        return ITNexus(initiatorName: initiatorName, initiatorSessionID: isid, targetName: targetName,
                       targetPortalGroupTag: tag)
    }

    private static func readName(_ reader: inout LittleEndianReader, _ what: String) throws(ReservationFileError) -> String {
        let length = Int(try reader.read(UInt16.self))
        guard length <= maxNameBytes else { throw .corrupt(path: reader.path, reason: "\(what) name of \(length) bytes") }
        return String(decoding: try reader.take(length), as: UTF8.self)
    }

    /// The state-machine invariants, checked without asserting (the input is untrusted).
    private static func isConsistent(_ state: ReservationState) -> Bool {
        guard Set(state.registrations.map(\.nexus)).count == state.registrations.count,
              state.registrations.allSatisfy({ $0.key != 0 }) else { return false }
        guard let reservation = state.reservation else { return true }
        return reservation.type.isAllRegistrants ? !state.registrations.isEmpty : state.key(of: reservation.holder) != nil
    }

    // MARK: File I/O

    /// The file's state, or nil when it does not exist (see `decode` for `targetNameOfVersion1`).
    static func load(path: String, targetNameOfVersion1: String) throws(ReservationFileError) -> ReservationState? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            if errno == ENOENT { return nil }
            throw .io(path: path, operation: "open", errno: errno)
        }
        defer { close(descriptor) }
        var file: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, operation: "read", errno: errno)
            }
            if count == 0 { break }
            file.append(contentsOf: chunk[..<count])
            guard file.count <= headerBytes + maxPayloadBytes + 4 else {
                throw .corrupt(path: path, reason: "larger than the format allows")
            }
        }
        return try decode(file, path: path, targetNameOfVersion1: targetNameOfVersion1)
    }

    /// Replaces the file with `state` atomically and durably.
    static func store(_ state: ReservationState, path: String) throws(ReservationFileError) {
        let bytes = encode(state)
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io(path: temporary, operation: "open", errno: errno) }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                let code = errno
                close(descriptor)
                throw .io(path: temporary, operation: "write", errno: code)
            }
            written += count
        }
        if fsync(descriptor) != 0 {
            let code = errno
            close(descriptor)
            throw .io(path: temporary, operation: "fsync", errno: code)
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else { throw .io(path: path, operation: "rename", errno: errno) }
        do {
            try DurableDirectory.syncEntry(of: path)
        } catch {
            guard case let .io(operation, code) = error else { throw .io(path: path, operation: "\(error)", errno: EIO) }
            throw .io(path: path, operation: operation, errno: code)
        }
    }
}

/// Bounds-checked little-endian reads of untrusted bytes.
private struct LittleEndianReader {
    let bytes: [UInt8]
    let path: String
    var offset = 0
    var limit: Int

    init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
        limit = bytes.count
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws(ReservationFileError) -> T {
        let size = MemoryLayout<T>.size
        guard offset + size <= limit else { throw .corrupt(path: path, reason: "truncated at byte \(offset)") }
        var value: T = 0
        for index in (0..<size).reversed() { value = value << 8 | T(bytes[offset + index]) }
        offset += size
        return value
    }

    mutating func take(_ count: Int) throws(ReservationFileError) -> ArraySlice<UInt8> {
        guard offset + count <= limit else { throw .corrupt(path: path, reason: "truncated at byte \(offset)") }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }
}
