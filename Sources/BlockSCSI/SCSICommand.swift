// Decoded commands: what a CDB asks for, with every field already validated and converted to
// plain values (transfer lengths in blocks, with READ(6)'s 0-means-256 already applied).
//
// Invariant: a value of these types says nothing about the volume; range checks against the
// capacity happen when the command executes.

/// A run of logical blocks named by a CDB.
public struct BlockExtent: Sendable, Equatable {
    public var lba: UInt64
    public var blockCount: UInt64

    public init(lba: UInt64, blockCount: UInt64) {
        self.lba = lba
        self.blockCount = blockCount
    }
}

/// The BYTCHK field of VERIFY (SBC-4 5.29).
public enum VerifyByteCheck: UInt8, Sendable, Equatable {
    /// 00b: verify the medium, no Data-Out.
    case mediumOnly = 0
    /// 01b: compare the Data-Out with every block.
    case compare = 1
    /// 11b: the Data-Out holds one block, compared with each block of the range.
    case compareOneBlock = 3
}

/// The PAGE CONTROL field of MODE SENSE.
public enum ModePageControl: UInt8, Sendable, Equatable {
    case current = 0, changeable = 1, defaults = 2, saved = 3
}

/// MODE SENSE(6) or (10).
public struct ModeSenseCommand: Sendable, Equatable {
    public var tenByte: Bool
    public var disableBlockDescriptors: Bool
    public var longLBAAccepted: Bool
    public var pageControl: ModePageControl
    public var pageCode: UInt8
    public var subpageCode: UInt8
    public var allocationLength: Int
}

/// MODE SELECT(6) or (10).
public struct ModeSelectCommand: Sendable, Equatable {
    public var tenByte: Bool
    public var pageFormat: Bool
    public var savePages: Bool
    public var parameterListLength: Int
}

/// WRITE SAME(10) or (16).
public struct WriteSameCommand: Sendable, Equatable {
    /// A block count of 0 means "to the last LBA" (WSNZ is 0).
    public var extent: BlockExtent
    public var unmap: Bool
    /// NDOB: no Data-Out, the block is all zeros.
    public var noDataOutBuffer: Bool
}

/// REPORT SUPPORTED OPERATION CODES (MAINTENANCE IN, service action 0Ch).
public struct ReportOpcodesCommand: Sendable, Equatable {
    /// 000b all, 001b one opcode, 010b opcode and service action, 011b either.
    public var reportingOptions: UInt8
    public var includeTimeouts: Bool
    public var opcode: UInt8
    public var serviceAction: UInt16
    public var allocationLength: Int
}

/// PERSISTENT RESERVE IN service actions (SPC-4 6.15).
public enum PersistentReserveInAction: UInt8, Sendable, Equatable {
    case readKeys = 0, readReservation = 1, reportCapabilities = 2, readFullStatus = 3
}

/// PERSISTENT RESERVE OUT service actions (SPC-4 6.16); REGISTER AND MOVE is not supported.
public enum PersistentReserveOutAction: UInt8, Sendable, Equatable {
    case register = 0, reserve = 1, release = 2, clear = 3, preempt = 4, preemptAndAbort = 5
    case registerAndIgnoreExistingKey = 6
}

/// PERSISTENT RESERVE OUT.
public struct PersistentReserveOutCommand: Sendable, Equatable {
    public var action: PersistentReserveOutAction
    public var scope: UInt8
    /// The raw TYPE field; validated by the service actions that use it.
    public var type: UInt8
    public var parameterListLength: Int
}

/// Every command this logical unit executes.
public enum SCSICommand: Sendable, Equatable {
    case testUnitReady
    case requestSense(allocationLength: Int)
    /// `page` nil asks for standard INQUIRY data.
    case inquiry(page: UInt8?, allocationLength: Int)
    case reportLUNs(selectReport: UInt8, allocationLength: Int)
    case readCapacity10
    case readCapacity16(allocationLength: Int)
    case read(BlockExtent, fua: Bool)
    case write(BlockExtent, fua: Bool)
    case verify(BlockExtent, byteCheck: VerifyByteCheck)
    case writeAndVerify(BlockExtent, byteCheck: Bool)
    case writeSame(WriteSameCommand)
    case compareAndWrite(BlockExtent, fua: Bool)
    /// ORWRITE(16): OR the Data-Out into the blocks.
    case orWrite(BlockExtent, fua: Bool)
    /// A block count of 0 means "to the last LBA".
    case synchronizeCache(BlockExtent)
    case prefetch(BlockExtent)
    case unmap(parameterListLength: Int)
    case getLBAStatus(lba: UInt64, allocationLength: Int)
    case modeSense(ModeSenseCommand)
    case modeSelect(ModeSelectCommand)
    case startStopUnit(start: Bool, loadEject: Bool, noFlush: Bool)
    case preventAllowMediumRemoval(prevent: Bool)
    case reportSupportedOperationCodes(ReportOpcodesCommand)
    case reportTargetPortGroups(extendedHeader: Bool, allocationLength: Int)
    case persistentReserveIn(PersistentReserveInAction, allocationLength: Int)
    case persistentReserveOut(PersistentReserveOutCommand)
    /// RESERVE(6) or RESERVE(10) of the whole logical unit.
    case reserve
    /// RELEASE(6) or RELEASE(10).
    case release
    case readDefectData(tenByte: Bool, listFormat: UInt8, allocationLength: Int)
}
