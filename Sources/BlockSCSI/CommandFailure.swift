// How command handlers say no: a CHECK CONDITION with sense data, or a bare status
// (RESERVATION CONFLICT, TASK SET FULL). Handlers throw it; `SCSILogicalUnit.execute` turns it
// into a `SCSIResult`, so no handler builds error results by hand.

import BlockEngine

enum CommandFailure: Error, Sendable, Equatable {
    case sense(SenseData)
    case status(SCSIStatus)

    static func check(_ code: SenseCode, information: UInt32? = nil) -> CommandFailure {
        .sense(SenseData(code, information: information))
    }

    static let reservationConflict = CommandFailure.status(.reservationConflict)
    static let taskSetFull = CommandFailure.status(.taskSetFull)
    static let lbaOutOfRange = check(.lbaOutOfRange)
    static let dataOutMismatch = check(.invalidFieldInCommandInformationUnit)
    static let parameterListLengthError = check(.parameterListLengthError)

    static func invalidFieldInCDB(byte: Int, bit: UInt8? = nil) -> CommandFailure {
        .sense(SenseData(.invalidFieldInCDB,
                         fieldPointer: SenseFieldPointer(inCDB: true, byteOffset: UInt16(byte), bitIndex: bit)))
    }

    static func invalidFieldInParameterList(byte: Int, bit: UInt8? = nil) -> CommandFailure {
        .sense(SenseData(.invalidFieldInParameterList,
                         fieldPointer: SenseFieldPointer(inCDB: false, byteOffset: UInt16(clamping: byte), bitIndex: bit)))
    }

    /// The failure an engine error becomes (the table in docs/ERRORS.md, kept in `SenseMapping.swift`).
    static func engine(_ error: BlockError, _ direction: TransferDirection) -> CommandFailure {
        check(SenseCode.mapping(error, direction: direction))
    }

    var result: SCSIResult {
        switch self {
        case .sense(let sense): return .checkCondition(sense)
        case .status(let status): return SCSIResult(status: status)
        }
    }
}

/// Runs an engine call, turning its error into the matching CHECK CONDITION.
@inline(__always)
func engineCall<T>(_ direction: TransferDirection, _ body: () throws(BlockError) -> T) throws(CommandFailure) -> T {
    do throws(BlockError) {
        return try body()
    } catch {
        throw .engine(error, direction)
    }
}

/// The asynchronous form of `engineCall`.
@inline(__always)
func engineCall<T>(_ direction: TransferDirection, _ body: () async throws(BlockError) -> T) async throws(CommandFailure) -> T {
    do throws(BlockError) {
        return try await body()
    } catch {
        throw .engine(error, direction)
    }
}
