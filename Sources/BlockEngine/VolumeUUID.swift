/// A volume's identity: 16 random bytes (RFC 9562 version 4), fixed at create.
/// Frontends derive stable identifiers from it (SCSI serial number, NAA designator).
public struct VolumeUUID: Sendable, Hashable, CustomStringConvertible {
    /// The 16 bytes, in the order they appear on disk and in the text form.
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "a UUID has 16 bytes")
        self.bytes = bytes
    }

    /// A new random version-4 UUID.
    public static func random() -> VolumeUUID {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return VolumeUUID(bytes: bytes)
    }

    /// The canonical 8-4-4-4-12 lowercase hex form.
    public var description: String {
        let hex = bytes.map { byte in
            let text = String(byte, radix: 16)
            return text.count == 1 ? "0" + text : text
        }
        return [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex[$0].joined() }.joined(separator: "-")
    }
}
