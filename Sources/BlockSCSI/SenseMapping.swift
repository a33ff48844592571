// Engine errors as SCSI status and sense (the table in docs/ERRORS.md), and the sense
// codes the command layer itself reports. The one place that decides what an initiator sees
// when the engine says no.

import BlockEngine

/// SCSI sense keys used by the target (SPC-5 table 50).
public enum SenseKey: UInt8, Sendable {
    case noSense = 0x0
    case recoveredError = 0x1
    case notReady = 0x2
    case mediumError = 0x3
    case hardwareError = 0x4
    case illegalRequest = 0x5
    case unitAttention = 0x6
    case dataProtect = 0x7
    case abortedCommand = 0xB
    case miscompare = 0xE
}

/// A sense key with its additional sense code and qualifier.
public struct SenseCode: Sendable, Equatable, CustomStringConvertible {
    public var key: SenseKey
    public var asc: UInt8
    public var ascq: UInt8

    public init(_ key: SenseKey, asc: UInt8, ascq: UInt8) {
        self.key = key
        self.asc = asc
        self.ascq = ascq
    }

    public var description: String {
        "\(key) \(hex2(asc))/\(hex2(ascq))"
    }

    public static let lbaOutOfRange = SenseCode(.illegalRequest, asc: 0x21, ascq: 0x00)
    public static let invalidFieldInCDB = SenseCode(.illegalRequest, asc: 0x24, ascq: 0x00)
    public static let invalidOpcode = SenseCode(.illegalRequest, asc: 0x20, ascq: 0x00)
    public static let asymmetricAccessTransitioning = SenseCode(.notReady, asc: 0x04, ascq: 0x0A)
    public static let asymmetricAccessStandby = SenseCode(.notReady, asc: 0x04, ascq: 0x0B)
    public static let asymmetricAccessUnavailable = SenseCode(.notReady, asc: 0x04, ascq: 0x0C)
    public static let logicalUnitCommunicationFailure = SenseCode(.hardwareError, asc: 0x08, ascq: 0x00)
    public static let unrecoveredReadError = SenseCode(.mediumError, asc: 0x11, ascq: 0x00)
    public static let writeError = SenseCode(.mediumError, asc: 0x0C, ascq: 0x00)
    /// Thin provisioning: the backing store is full (SBC-4 4.7.3.6).
    public static let spaceAllocationFailedWriteProtect = SenseCode(.dataProtect, asc: 0x27, ascq: 0x07)
    public static let capacityDataChanged = SenseCode(.unitAttention, asc: 0x2A, ascq: 0x09)
    public static let modeParametersChanged = SenseCode(.unitAttention, asc: 0x2A, ascq: 0x01)

    // Command-layer codes (SPC-4 annex D).
    public static let noSense = SenseCode(.noSense, asc: 0x00, ascq: 0x00)
    public static let invalidFieldInParameterList = SenseCode(.illegalRequest, asc: 0x26, ascq: 0x00)
    public static let parameterListLengthError = SenseCode(.illegalRequest, asc: 0x1A, ascq: 0x00)
    /// The Data-Out length disagrees with the CDB (FCP-4 / SAM-5 overlength and underlength).
    public static let invalidFieldInCommandInformationUnit = SenseCode(.illegalRequest, asc: 0x0E, ascq: 0x03)
    public static let logicalUnitNotSupported = SenseCode(.illegalRequest, asc: 0x25, ascq: 0x00)
    public static let savingParametersNotSupported = SenseCode(.illegalRequest, asc: 0x39, ascq: 0x00)
    public static let invalidReleaseOfPersistentReservation = SenseCode(.illegalRequest, asc: 0x26, ascq: 0x04)
    public static let insufficientRegistrationResources = SenseCode(.illegalRequest, asc: 0x55, ascq: 0x04)
    public static let miscompareDuringVerify = SenseCode(.miscompare, asc: 0x1D, ascq: 0x00)
    public static let internalTargetFailure = SenseCode(.hardwareError, asc: 0x44, ascq: 0x00)
    public static let powerOnResetOccurred = SenseCode(.unitAttention, asc: 0x29, ascq: 0x00)
    public static let busDeviceResetOccurred = SenseCode(.unitAttention, asc: 0x29, ascq: 0x03)
    public static let reservationsPreempted = SenseCode(.unitAttention, asc: 0x2A, ascq: 0x03)
    public static let reservationsReleased = SenseCode(.unitAttention, asc: 0x2A, ascq: 0x04)
    public static let registrationsPreempted = SenseCode(.unitAttention, asc: 0x2A, ascq: 0x05)
    public static let asymmetricAccessStateChanged = SenseCode(.unitAttention, asc: 0x2A, ascq: 0x06)
}

/// Which side of the data path failed: a medium error reads differently on a read.
public enum TransferDirection: Sendable {
    case read, write, none
}

extension SenseCode {
    /// The sense an initiator receives when the engine fails a command with `error`.
    public static func mapping(_ error: BlockError, direction: TransferDirection) -> SenseCode {
        switch error {
        case .outOfRange:
            return .lbaOutOfRange
        case .misaligned, .invalidArgument:
            return .invalidFieldInCDB
        case .notPrimary:
            return .asymmetricAccessStandby
        case .fenced, .staleEpoch:
            return .asymmetricAccessUnavailable
        case .closed, .walFullTimeout, .leaseExpired:
            // Transient on this path: multipath retries or fails over instead of the file
            // system seeing an I/O error.
            return .asymmetricAccessTransitioning
        case .failed:
            return .asymmetricAccessUnavailable
        case .barrierFailed, .quorumLost:
            return .logicalUnitCommunicationFailure
        case .noSpace:
            return .spaceAllocationFailedWriteProtect
        case .io, .corrupt, .truncated, .notAVolume, .unsupportedVersion, .alreadyExists, .inUse:
            return direction == .read ? .unrecoveredReadError : .writeError
        }
    }
}

private func hex2(_ value: UInt8) -> String {
    let text = String(value, radix: 16, uppercase: true)
    return text.count == 1 ? "0" + text : text
}
