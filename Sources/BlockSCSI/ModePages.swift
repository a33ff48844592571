// Mode parameters (SPC-4 7.5, SBC-4 6.5): MODE SENSE data and MODE SELECT parsing, as pure
// functions of the current `ModeParameters`.
//
// Pages: Caching (08h, WCE changeable) and Control (0Ah, nothing changeable); 3Fh returns both.
// The header's device-specific parameter has DPOFUA set (DPO and FUA are honoured). Saved
// values are not implemented: PC 11b answers SAVING PARAMETERS NOT SUPPORTED and SP=1 is an
// invalid field.
// Invariants: every page is rendered with the same length for every page control; MODE
// SELECT accepts a page only when each byte differs from the current value at most in
// changeable bits, and applies nothing unless the whole parameter list is valid.

/// The changeable mode state of a logical unit.
public struct ModeParameters: Sendable, Equatable {
    /// WCE: with the write cache off every write is durable before it completes (as FUA).
    public var writeCacheEnabled: Bool

    public init(writeCacheEnabled: Bool = true) {
        self.writeCacheEnabled = writeCacheEnabled
    }
}

enum ModePages {
    static let caching: UInt8 = 0x08
    static let control: UInt8 = 0x0A
    static let allPages: UInt8 = 0x3F
    /// Supported pages in ascending order.
    static let supported: [UInt8] = [caching, control]

    /// Page `code` as MODE SENSE returns it for `pageControl` (current, changeable, default).
    static func page(_ code: UInt8, _ pageControl: ModePageControl, _ parameters: ModeParameters) -> [UInt8]? {
        precondition(pageControl != .saved, "saved values are not implemented")
        switch code {
        case caching:
            var page = [UInt8](repeating: 0, count: 20)
            page[0] = caching
            page[1] = 0x12
            switch pageControl {
            case .current: page[2] = parameters.writeCacheEnabled ? 0x04 : 0
            case .changeable: page[2] = 0x04
            case .defaults, .saved: page[2] = ModeParameters().writeCacheEnabled ? 0x04 : 0
            }
            return page
        case control:
            var page = [UInt8](repeating: 0, count: 12)
            page[0] = control
            page[1] = 0x0A
            guard pageControl != .changeable else { return page }
            page[2] = 0x02               // GLTSD: no log parameters are saved; D_SENSE 0 (fixed format)
            page[3] = 0x10               // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering; QERR 0
            page.storeBigEndian(UInt16(0xFFFF), at: 8)  // BUSY TIMEOUT PERIOD: unlimited
            return page
        default:
            return nil
        }
    }

    /// MODE SENSE(6) or (10) data, before the allocation length cuts it.
    static func senseData(_ command: ModeSenseCommand, parameters: ModeParameters,
                          blockCount: UInt64, blockSizeBytes: Int) throws(CommandFailure) -> [UInt8] {
        guard command.pageControl != .saved else { throw .check(.savingParametersNotSupported) }
        let codes: [UInt8]
        if command.pageCode == allPages {
            codes = supported
        } else if supported.contains(command.pageCode) {
            codes = [command.pageCode]
        } else {
            throw .invalidFieldInCDB(byte: 2, bit: 5)
        }
        // No page has subpages: only subpage 00h, or FFh ("all subpages"), make sense.
        guard command.subpageCode == 0x00 || command.subpageCode == 0xFF else { throw .invalidFieldInCDB(byte: 3) }
        let pages = codes.flatMap { page($0, command.pageControl, parameters)! }

        var descriptor: [UInt8] = []
        let longLBA = command.longLBAAccepted
        if !command.disableBlockDescriptors {
            let changeable = command.pageControl == .changeable
            if longLBA {
                descriptor = [UInt8](repeating: 0, count: 16)
                if !changeable {
                    descriptor.storeBigEndian(blockCount, at: 0)
                    descriptor.storeBigEndian(UInt32(blockSizeBytes), at: 12)
                }
            } else {
                descriptor = [UInt8](repeating: 0, count: 8)
                if !changeable {
                    descriptor.storeBigEndian(UInt32(clamping: blockCount), at: 0)
                    descriptor.storeBigEndian(UInt64(blockSizeBytes), at: 5, byteCount: 3)
                }
            }
        }
        let deviceSpecific: UInt8 = 0x10  // DPOFUA; WP 0
        var data: [UInt8]
        if command.tenByte {
            data = [0, 0, 0x00, deviceSpecific, longLBA && !descriptor.isEmpty ? 0x01 : 0x00, 0]
            data.appendBigEndian(UInt16(descriptor.count))
            data += descriptor + pages
            data.storeBigEndian(UInt16(data.count - 2), at: 0)
        } else {
            data = [0, 0x00, deviceSpecific, UInt8(descriptor.count)] + descriptor + pages
            data[0] = UInt8(clamping: data.count - 1)
        }
        return data
    }

    /// Validates a MODE SELECT parameter list and returns the parameters it sets.
    static func select(_ command: ModeSelectCommand, parameterList list: [UInt8], current: ModeParameters,
                       blockCount: UInt64, blockSizeBytes: Int) throws(CommandFailure) -> ModeParameters {
        precondition(list.count == command.parameterListLength, "the caller passes exactly the parameter list")
        if command.savePages { throw .invalidFieldInCDB(byte: 1, bit: 0) }
        guard !list.isEmpty else { return current }
        if !command.pageFormat { throw .invalidFieldInCDB(byte: 1, bit: 4) }
        let headerBytes = command.tenByte ? 8 : 4
        guard list.count >= headerBytes else { throw .parameterListLengthError }
        let descriptorBytes = command.tenByte ? Int(list.loadBigEndian(UInt16.self, at: 6)) : Int(list[3])
        let longLBA = command.tenByte && list[4] & 0x01 != 0
        let descriptorSize = longLBA ? 16 : 8
        guard headerBytes + descriptorBytes <= list.count else { throw .parameterListLengthError }
        guard descriptorBytes % descriptorSize == 0 else { throw .invalidFieldInParameterList(byte: command.tenByte ? 6 : 3) }

        // Block descriptors may restate the geometry but not change it (no FORMAT UNIT).
        var offset = headerBytes
        while offset < headerBytes + descriptorBytes {
            let blocks = longLBA ? list.loadBigEndian(UInt64.self, at: offset)
                                 : UInt64(list.loadBigEndian(UInt32.self, at: offset))
            let lengthBytes = longLBA ? UInt64(list.loadBigEndian(UInt32.self, at: offset + 12))
                                      : UInt64(list[offset + 5]) << 16 | UInt64(list.loadBigEndian(UInt16.self, at: offset + 6))
            let sameCount = blocks == 0 || blocks == blockCount || (!longLBA && blocks == 0xFFFF_FFFF && blockCount > blocks)
            guard sameCount else { throw .invalidFieldInParameterList(byte: offset) }
            guard lengthBytes == UInt64(blockSizeBytes) else {
                throw .invalidFieldInParameterList(byte: offset + (longLBA ? 12 : 5))
            }
            offset += descriptorSize
        }

        var next = current
        while offset < list.count {
            guard offset + 2 <= list.count else { throw .parameterListLengthError }
            let code = list[offset] & 0x3F
            // PS is reserved in MODE SELECT; SPF would name a subpage, and there are none.
            if list[offset] & 0xC0 != 0 { throw .invalidFieldInParameterList(byte: offset, bit: 6) }
            guard let currentPage = page(code, .current, next), let changeable = page(code, .changeable, next) else {
                throw .invalidFieldInParameterList(byte: offset, bit: 5)
            }
            let length = Int(list[offset + 1]) + 2
            guard length == currentPage.count else { throw .invalidFieldInParameterList(byte: offset + 1) }
            guard offset + length <= list.count else { throw .parameterListLengthError }
            for index in 2..<length where (list[offset + index] ^ currentPage[index]) & ~changeable[index] != 0 {
                throw .invalidFieldInParameterList(byte: offset + index)
            }
            if code == caching { next.writeCacheEnabled = list[offset + 2] & 0x04 != 0 }
            offset += length
        }
        return next
    }
}
