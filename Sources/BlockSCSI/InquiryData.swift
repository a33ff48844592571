// INQUIRY data: the standard data (SPC-4 6.6.2) and the vital product data pages 00h, 80h,
// 83h (SPC-4 7.8), B0h, B1h, B2h (SBC-4 6.6). Built once per logical unit: none of it changes
// while the logical unit exists.
//
// Byte offsets that sw-block got wrong, stated here so a reader can check them against SBC-4:
//   B0h: 20..23 MAXIMUM UNMAP LBA COUNT, 24..27 MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT,
//        28..31 OPTIMAL UNMAP GRANULARITY, 32..35 UGAVALID + alignment,
//        36..43 MAXIMUM WRITE SAME LENGTH.
//   B2h: byte 5 = LBPU (bit 7) | LBPWS (6) | LBPWS10 (5) | LBPRZ (4..2) | ANC_SUP (1) | DP (0);
//        byte 6 bits 2..0 = PROVISIONING TYPE.
// Invariants: each page's PAGE LENGTH equals its byte count minus 4; the supported-pages list
// is ascending and names exactly the pages `page(_:)` answers; the serial number and the NAA
// designator depend only on the volume UUID and the configuration, so they are unique per
// volume and stable across restarts.

import BlockEngine

/// Limits the logical unit enforces and advertises in the Block Limits page, in blocks.
struct BlockLimits: Sendable, Equatable {
    let maximumTransferBlocks: UInt32
    let maximumWriteSameBlocks: UInt64
    let maximumCompareAndWriteBlocks: UInt8
    let maximumUnmapBlocks: UInt32
    let maximumUnmapDescriptors: UInt32
    /// Blocks per 4 KiB: the granularity below which I/O costs a read-modify-write underneath.
    let granularityBlocks: UInt32
    /// 1 MiB, or the maximum transfer when smaller.
    let optimalTransferBlocks: UInt32

    init(configuration: SCSILogicalUnitConfiguration, blockSizeBytes: Int) {
        maximumTransferBlocks = UInt32(configuration.maximumTransferLengthBytes / blockSizeBytes)
        maximumWriteSameBlocks = UInt64(configuration.maximumWriteSameLengthBytes / blockSizeBytes)
        maximumCompareAndWriteBlocks = UInt8(configuration.maximumCompareAndWriteBlocks)
        maximumUnmapBlocks = configuration.maximumUnmapBlockCount
        maximumUnmapDescriptors = configuration.maximumUnmapDescriptorCount
        granularityBlocks = UInt32(max(1, 4096 / blockSizeBytes))
        optimalTransferBlocks = min(maximumTransferBlocks, UInt32(max(1, (1 << 20) / blockSizeBytes)))
    }
}

struct InquiryData: Sendable {
    static let vendorSpecificOffset = 36

    let standard: [UInt8]
    /// VPD pages by page code.
    private let pages: [UInt8: [UInt8]]

    /// The unit serial number: the volume UUID as 32 hex digits.
    let serialNumber: String

    init(configuration: SCSILogicalUnitConfiguration, uuid: VolumeUUID, blockSizeBytes: Int, limits: BlockLimits) {
        serialNumber = uuid.bytes.map { hexDigits(UInt64($0), width: 2) }.joined()
        standard = Self.standardData(configuration)
        var pages: [UInt8: [UInt8]] = [
            0x80: Self.page(0x80, Array(serialNumber.utf8)),
            0x83: Self.page(0x83, Self.designators(configuration, uuid: uuid, serialNumber: serialNumber)),
            0xB0: Self.page(0xB0, Self.blockLimits(limits, thin: configuration.thinProvisioning)),
            0xB1: Self.page(0xB1, Self.blockDeviceCharacteristics()),
        ]
        if configuration.thinProvisioning {
            pages[0xB2] = Self.page(0xB2, Self.logicalBlockProvisioning(unmappedReadZeros: configuration.reportsUnmappedReadZeros))
        }
        pages[0x00] = Self.page(0x00, [0x00] + pages.keys.sorted())
        self.pages = pages
        for (code, page) in pages {
            assert(page[1] == code && Int(page.loadBigEndian(UInt16.self, at: 2)) == page.count - 4, "VPD page length")
        }
    }

    /// The VPD page `code`, or nil when it is not supported.
    func page(_ code: UInt8) -> [UInt8]? { pages[code] }

    private static func page(_ code: UInt8, _ body: [UInt8]) -> [UInt8] {
        precondition(body.count <= Int(UInt16.max), "VPD page too long")
        var data: [UInt8] = [0x00, code]  // peripheral qualifier 0, direct-access block device
        data.appendBigEndian(UInt16(body.count))
        return data + body
    }

    private static func standardData(_ configuration: SCSILogicalUnitConfiguration) -> [UInt8] {
        var data: [UInt8] = [
            0x00,        // connected, direct-access block device
            0x00,        // not removable
            0x06,        // VERSION: SPC-4
            0x12,        // HISUP, RESPONSE DATA FORMAT 2
            0x00,        // ADDITIONAL LENGTH, set below
            0x10,        // TPGS 01b: implicit asymmetric access only
            0x00,
            0x02,        // CMDQUE
        ]
        data.appendPaddedASCII(configuration.vendor, width: 8)
        data.appendPaddedASCII(configuration.product, width: 16)
        data.appendPaddedASCII(configuration.revision, width: 4)
        data.append(contentsOf: repeatElement(0, count: 58 - data.count))  // vendor specific, reserved
        // Version descriptors (SPC-4 table 144): SAM-5, SPC-4, SBC-3, SBC-4.
        for descriptor: UInt16 in [0x00A0, 0x0460, 0x04C0, 0x0600] { data.appendBigEndian(descriptor) }
        data.append(contentsOf: repeatElement(0, count: 96 - data.count))
        data[4] = UInt8(data.count - 5)
        assert(data.count == 96, "standard INQUIRY data is 96 bytes")
        return data
    }

    /// Device identification descriptors (SPC-4 7.8.6).
    private static func designators(_ configuration: SCSILogicalUnitConfiguration, uuid: VolumeUUID,
                                    serialNumber: String) -> [UInt8] {
        var data: [UInt8] = []
        // NAA IEEE Registered Extended (6h): company id, then 100 bits of the UUID.
        let id = configuration.ieeeCompanyID
        let u = uuid.bytes
        var naa: [UInt8] = [0x60 | UInt8((id >> 20) & 0x0F), UInt8((id >> 12) & 0xFF), UInt8((id >> 4) & 0xFF),
                            UInt8((id & 0x0F) << 4) | (u[0] >> 4)]
        for index in 1...12 { naa.append(u[index - 1] << 4 | u[index] >> 4) }
        data += [0x01, 0x03, 0x00, UInt8(naa.count)] + naa                      // binary, LU, NAA
        // T10 vendor identification: vendor, then the serial number.
        var t10: [UInt8] = []
        t10.appendPaddedASCII(configuration.vendor, width: 8)
        t10 += Array(serialNumber.utf8)
        data += [0x02, 0x01, 0x00, UInt8(t10.count)] + t10                       // ASCII, LU, T10
        // Relative target port and target port group (association: target port, iSCSI).
        data += [0x51, 0x94, 0x00, 0x04, 0x00, 0x00]
        data.appendBigEndian(configuration.relativeTargetPort)
        data += [0x51, 0x95, 0x00, 0x04, 0x00, 0x00]
        data.appendBigEndian(configuration.targetPortGroup)
        if let name = configuration.targetName {
            // SCSI name string of the target device: NUL-terminated UTF-8, padded to 4 bytes.
            var text = Array(name.utf8)
            text.append(0)
            while text.count % 4 != 0 { text.append(0) }
            data += [0x53, 0xA8, 0x00, UInt8(text.count)] + text
        }
        return data
    }

    /// Block Limits (SBC-4 6.6.4), 60 bytes after the header.
    private static func blockLimits(_ limits: BlockLimits, thin: Bool) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: 64)
        page[4] = 0x00                                                   // WSNZ 0: length 0 = to the end
        page[5] = limits.maximumCompareAndWriteBlocks
        page.storeBigEndian(UInt16(clamping: limits.granularityBlocks), at: 6)
        page.storeBigEndian(limits.maximumTransferBlocks, at: 8)
        page.storeBigEndian(limits.optimalTransferBlocks, at: 12)
        if thin {
            page.storeBigEndian(limits.maximumUnmapBlocks, at: 20)
            page.storeBigEndian(limits.maximumUnmapDescriptors, at: 24)
            page.storeBigEndian(limits.granularityBlocks, at: 28)
            page.storeBigEndian(UInt32(0x8000_0000), at: 32)               // UGAVALID, alignment 0
        }
        page.storeBigEndian(limits.maximumWriteSameBlocks, at: 36)
        return Array(page[4...])
    }

    /// Block Device Characteristics (SBC-4 6.6.2): a non-rotating medium.
    private static func blockDeviceCharacteristics() -> [UInt8] {
        var body = [UInt8](repeating: 0, count: 60)
        body.storeBigEndian(UInt16(0x0001), at: 0)                        // MEDIUM ROTATION RATE
        return body
    }

    /// Logical Block Provisioning (SBC-4 6.6.6): thin, UNMAP and WRITE SAME (both sizes) with
    /// UNMAP, unmapped blocks read as zeros.
    private static func logicalBlockProvisioning(unmappedReadZeros: Bool) -> [UInt8] {
        [0x00,                          // THRESHOLD EXPONENT
         0x80 | 0x40 | 0x20 | (unmappedReadZeros ? 0x04 : 0), // LBPU, LBPWS, LBPWS10, LBPRZ; ANC_SUP 0, DP 0
         0x02,                          // PROVISIONING TYPE: thin
         0x00]
    }
}
