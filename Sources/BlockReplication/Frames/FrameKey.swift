// The key that authenticates one direction of a connection's frames: HMAC-SHA256 over
// header bytes [0, 24) and the payload, truncated to 16 bytes; or no key (`none`: the MAC is
// 16 zero bytes), which is what every handshake frame carries.

import Crypto
import NIOCore

/// How the frames of one direction are authenticated.
public struct FrameKey: Sendable {
    enum Storage: Sendable {
        case none
        case hmacSHA256(SendableKey)
    }

    let storage: Storage

    /// No authentication: MACs are zero. Handshake frames, and `.none` mode. (Not named
    /// `none`: on an optional parameter `.none` would mean nil.)
    public static let unauthenticated = FrameKey(storage: .none)

    /// HMAC-SHA256 with `key` (a session key from the handshake).
    public static func hmacSHA256(_ key: SymmetricKey) -> FrameKey {
        FrameKey(storage: .hmacSHA256(SendableKey(key: key)))
    }

    /// True when frames carry a real MAC.
    public var authenticates: Bool {
        if case .hmacSHA256 = storage { return true }
        return false
    }

    /// Whether two keys are the same (constant time); for tests and the fuzzers.
    public func isSame(as other: FrameKey) -> Bool {
        switch (storage, other.storage) {
        case (.none, .none): true
        case let (.hmacSHA256(a), .hmacSHA256(b)): a.key == b.key
        default: false
        }
    }

    /// The MAC of the frame at absolute index `start` of `buffer`'s readable bytes.
    func mac(of buffer: ByteBuffer, frameAt start: Int, payloadBytes: Int) -> [UInt8] {
        guard case let .hmacSHA256(box) = storage else { return [UInt8](repeating: 0, count: FrameHeader.macBytes) }
        return buffer.withUnsafeReadableBytes { bytes in
            let offset = start - buffer.readerIndex
            let payloadStart = offset + FrameHeader.sizeBytes
            var hmac = HMAC<SHA256>(key: box.key)
            hmac.update(data: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + FrameHeader.macCoveredBytes)]))
            hmac.update(data: UnsafeRawBufferPointer(rebasing: bytes[payloadStart..<(payloadStart + payloadBytes)]))
            return Array(hmac.finalize().prefix(FrameHeader.macBytes))
        }
    }
}

/// The keys of one side of an established connection.
public struct SessionKeys: Sendable {
    /// Checks the MACs of frames from the peer.
    public var inbound: FrameKey
    /// Makes the MACs of frames to the peer.
    public var outbound: FrameKey

    public init(inbound: FrameKey, outbound: FrameKey) {
        self.inbound = inbound
        self.outbound = outbound
    }

    /// `.none` mode: no MACs either way.
    public static let unauthenticated = SessionKeys(inbound: .unauthenticated, outbound: .unauthenticated)
}

/// Byte-wise equality whose time does not depend on where the bytes differ (MACs, proofs).
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}

/// A SymmetricKey that may cross threads. swift-crypto does not mark SymmetricKey Sendable
/// in the versions this package accepts, but it is an immutable value (its bytes are set at
/// init and never changed), so sharing it is safe.
struct SendableKey: @unchecked Sendable {
    let key: SymmetricKey
}
