// How a logical unit presents itself: identity strings, the target it belongs to, this
// server's target port group and port, and the limits it advertises in the Block Limits VPD
// page and enforces.
//
// Invariant: `validate()` accepts only values the encoders can represent (ASCII field widths,
// 24-bit company id, limits that fit their VPD fields); `SCSILogicalUnit.init` calls it.

import Logging

/// The configuration of one logical unit.
public struct SCSILogicalUnitConfiguration: Sendable {
    /// T10 vendor identification (8 ASCII characters at most).
    public var vendor: String
    /// Product identification (16 ASCII characters at most).
    public var product: String
    /// Product revision level (4 ASCII characters at most).
    public var revision: String
    /// Every LUN of the target, for REPORT LUNS.
    public var reportedLUNs: [UInt64]
    /// The iSCSI target name, for the SCSI name string designator; nil leaves it out.
    public var targetName: String?
    /// This server's target port group (VPD 83h, REPORT TARGET PORT GROUPS). Every server
    /// holding a copy of a volume must use its own number: the copies report one logical unit
    /// (same designators), and an initiator tells the paths' states apart by this group (Linux
    /// keeps one state per logical unit and group).
    public var targetPortGroup: UInt16
    /// The relative target port identifier of this server's target port (1...65535; VPD 83h,
    /// REPORT TARGET PORT GROUPS, READ FULL STATUS). Also distinct per server, as if the
    /// servers were the ports of one device.
    public var relativeTargetPort: UInt16
    /// Thin provisioning: LBPME, UNMAP, WRITE SAME with UNMAP, GET LBA STATUS report holes.
    public var thinProvisioning: Bool
    /// Whether READ CAPACITY(16) and VPD B2h promise that unmapped blocks read as zeros
    /// (LBPRZ). They always do; the promise can be withheld because QEMU 7.2's iSCSI driver
    /// asserts (iscsi_co_block_status) on LBPRZ LUNs whose block size does not divide
    /// BDRV_REQUEST_MAX_BYTES, i.e. 4096-byte LUNs.
    public var reportsUnmappedReadZeros: Bool
    /// The sidecar file for persistent reservations (APTPL); nil keeps them in memory only.
    public var reservationFilePath: String?
    /// IEEE company id (24 bits) in the NAA 6 designator; the rest of the designator comes from
    /// the volume UUID. Every server holding a copy of a volume must use the same value.
    public var ieeeCompanyID: UInt32
    /// Largest READ/WRITE transfer, also the bound on one command's buffer.
    public var maximumTransferLengthBytes: Int
    /// Largest WRITE SAME (VPD B0 MAXIMUM WRITE SAME LENGTH).
    public var maximumWriteSameLengthBytes: Int
    /// Largest COMPARE AND WRITE, in blocks (1...255).
    public var maximumCompareAndWriteBlocks: Int
    /// Largest total of one UNMAP command, in blocks.
    public var maximumUnmapBlockCount: UInt32
    /// Most block descriptors in one UNMAP parameter list.
    public var maximumUnmapDescriptorCount: UInt32
    /// Bound on commands waiting for an LBA range at once; beyond it commands get TASK SET FULL.
    public var maximumWaitingCommands: Int
    public var logger: Logger

    public init(vendor: String = "SWBLOCK", product: String = "VOLUME", revision: String = "0001",
                reportedLUNs: [UInt64] = [0], targetName: String? = nil, targetPortGroup: UInt16 = 1,
                relativeTargetPort: UInt16 = 1, thinProvisioning: Bool = true, reservationFilePath: String? = nil,
                ieeeCompanyID: UInt32 = 0x000000, maximumTransferLengthBytes: Int = 16 << 20,
                maximumWriteSameLengthBytes: Int = 16 << 20, maximumCompareAndWriteBlocks: Int = 255,
                maximumUnmapBlockCount: UInt32 = 1 << 20, maximumUnmapDescriptorCount: UInt32 = 256,
                maximumWaitingCommands: Int = 1024, logger: Logger = Logger(label: "BlockSCSI")) {
        self.vendor = vendor
        self.product = product
        self.revision = revision
        self.reportedLUNs = reportedLUNs
        self.targetName = targetName
        self.targetPortGroup = targetPortGroup
        self.relativeTargetPort = relativeTargetPort
        self.thinProvisioning = thinProvisioning
        self.reportsUnmappedReadZeros = true
        self.reservationFilePath = reservationFilePath
        self.ieeeCompanyID = ieeeCompanyID
        self.maximumTransferLengthBytes = maximumTransferLengthBytes
        self.maximumWriteSameLengthBytes = maximumWriteSameLengthBytes
        self.maximumCompareAndWriteBlocks = maximumCompareAndWriteBlocks
        self.maximumUnmapBlockCount = maximumUnmapBlockCount
        self.maximumUnmapDescriptorCount = maximumUnmapDescriptorCount
        self.maximumWaitingCommands = maximumWaitingCommands
        self.logger = logger
    }

    /// Throws `SCSIConfigurationError` naming the first bad field.
    public func validate(blockSizeBytes: Int) throws(SCSIConfigurationError) {
        func ascii(_ text: String, _ field: String, width: Int) throws(SCSIConfigurationError) {
            guard text.utf8.count <= width, text.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
                throw SCSIConfigurationError(field: field, reason: "must be at most \(width) printable ASCII characters")
            }
        }
        try ascii(vendor, "vendor", width: 8)
        try ascii(product, "product", width: 16)
        try ascii(revision, "revision", width: 4)
        guard !reportedLUNs.isEmpty, reportedLUNs.count <= 16384, reportedLUNs.allSatisfy({ $0 < 16384 }) else {
            throw SCSIConfigurationError(field: "reportedLUNs", reason: "must hold 1...16384 LUNs below 16384")
        }
        if let targetName, targetName.utf8.count > 223 {
            throw SCSIConfigurationError(field: "targetName", reason: "an iSCSI name has at most 223 bytes")
        }
        guard relativeTargetPort != 0 else {
            throw SCSIConfigurationError(field: "relativeTargetPort", reason: "0 is reserved (SPC-4)")
        }
        guard ieeeCompanyID <= 0xFF_FFFF else {
            throw SCSIConfigurationError(field: "ieeeCompanyID", reason: "must fit in 24 bits")
        }
        guard maximumTransferLengthBytes >= blockSizeBytes, maximumTransferLengthBytes / blockSizeBytes <= Int(UInt32.max) else {
            throw SCSIConfigurationError(field: "maximumTransferLengthBytes", reason: "must cover at least one block")
        }
        guard maximumWriteSameLengthBytes >= blockSizeBytes else {
            throw SCSIConfigurationError(field: "maximumWriteSameLengthBytes", reason: "must cover at least one block")
        }
        guard (1...255).contains(maximumCompareAndWriteBlocks),
              2 * maximumCompareAndWriteBlocks * blockSizeBytes <= maximumTransferLengthBytes else {
            throw SCSIConfigurationError(field: "maximumCompareAndWriteBlocks",
                                         reason: "must be 1...255 and its Data-Out within the transfer limit")
        }
        guard maximumUnmapBlockCount >= 1, (1...65535 / 16).contains(maximumUnmapDescriptorCount) else {
            throw SCSIConfigurationError(field: "maximumUnmapDescriptorCount",
                                         reason: "must be 1...4095 (an UNMAP parameter list has a 16-bit length)")
        }
        guard maximumWaitingCommands >= 1 else {
            throw SCSIConfigurationError(field: "maximumWaitingCommands", reason: "must be at least 1")
        }
    }
}

/// A configuration value the logical unit cannot use.
public struct SCSIConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var reason: String

    public var description: String { "invalid logical unit configuration: \(field) \(reason)" }
}
