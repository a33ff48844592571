// The catalog of supported commands: opcode, service action and CDB usage data, as REPORT
// SUPPORTED OPERATION CODES reports them (SPC-4 6.35).
//
// Invariants: every opcode `CDBDecoder` accepts appears here and nothing else does (a test
// checks both directions); each usage-data array has the CDB's length and starts with the
// opcode (and, for service-action commands, the service action in byte 1). Entries are sorted
// by opcode, then service action.

/// One supported command.
struct CommandDescriptor: Sendable {
    let opcode: UInt8
    /// Nil for commands without service actions.
    let serviceAction: UInt16?
    /// Bits the device server evaluates, one array element per CDB byte (SPC-4 6.35.3).
    let usageData: [UInt8]

    var cdbLength: Int { usageData.count }
}

enum CommandCatalog {
    private static let lba4: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]
    private static let lba8: [UInt8] = lba4 + lba4

    /// READ/WRITE-style 10-, 12- and 16-byte CDBs with `flags` as the byte-1 usage.
    private static func block10(_ opcode: UInt8, _ flags: UInt8) -> CommandDescriptor {
        CommandDescriptor(opcode: opcode, serviceAction: nil, usageData: [opcode, flags] + lba4 + [0x00, 0xFF, 0xFF, 0x00])
    }

    private static func block12(_ opcode: UInt8, _ flags: UInt8) -> CommandDescriptor {
        CommandDescriptor(opcode: opcode, serviceAction: nil, usageData: [opcode, flags] + lba4 + lba4 + [0x00, 0x00])
    }

    private static func block16(_ opcode: UInt8, _ flags: UInt8) -> CommandDescriptor {
        CommandDescriptor(opcode: opcode, serviceAction: nil, usageData: [opcode, flags] + lba8 + lba4 + [0x00, 0x00])
    }

    private static func plain(_ usage: [UInt8]) -> CommandDescriptor {
        CommandDescriptor(opcode: usage[0], serviceAction: nil, usageData: usage)
    }

    private static func serviceAction(_ usage: [UInt8]) -> CommandDescriptor {
        CommandDescriptor(opcode: usage[0], serviceAction: UInt16(usage[1] & 0x1F), usageData: usage)
    }

    /// DPO (bit 4) and FUA (bit 3) are both honoured: DPOFUA is 1 in MODE SENSE.
    private static let dpoFUA: UInt8 = 0x18
    /// DPO plus the two-bit BYTCHK field.
    private static let dpoByteCheck: UInt8 = 0x16

    static let all: [CommandDescriptor] = [
        plain([0x00, 0x00, 0x00, 0x00, 0x00, 0x00]),                          // TEST UNIT READY
        plain([0x03, 0x01, 0x00, 0x00, 0xFF, 0x00]),                          // REQUEST SENSE
        plain([0x08, 0x1F, 0xFF, 0xFF, 0xFF, 0x00]),                          // READ(6)
        plain([0x0A, 0x1F, 0xFF, 0xFF, 0xFF, 0x00]),                          // WRITE(6)
        plain([0x12, 0x03, 0xFF, 0xFF, 0xFF, 0x00]),                          // INQUIRY
        plain([0x15, 0x11, 0x00, 0x00, 0xFF, 0x00]),                          // MODE SELECT(6)
        plain([0x16, 0x1F, 0x00, 0x00, 0x00, 0x00]),                          // RESERVE(6)
        plain([0x17, 0x1F, 0x00, 0x00, 0x00, 0x00]),                          // RELEASE(6)
        plain([0x1A, 0x08, 0xFF, 0xFF, 0xFF, 0x00]),                          // MODE SENSE(6)
        plain([0x1B, 0x00, 0x00, 0x00, 0xF7, 0x00]),                          // START STOP UNIT
        plain([0x1E, 0x00, 0x00, 0x00, 0x03, 0x00]),                          // PREVENT ALLOW MEDIUM REMOVAL
        plain([0x25, 0x00] + lba4 + [0x00, 0x00, 0x01, 0x00]),                // READ CAPACITY(10)
        block10(0x28, dpoFUA),                                                // READ(10)
        block10(0x2A, dpoFUA),                                                // WRITE(10)
        block10(0x2E, dpoByteCheck),                                          // WRITE AND VERIFY(10)
        block10(0x2F, dpoByteCheck),                                          // VERIFY(10)
        block10(0x34, 0x02),                                                  // PRE-FETCH(10)
        block10(0x35, 0x02),                                                  // SYNCHRONIZE CACHE(10)
        plain([0x37, 0x00, 0x1F, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00]),  // READ DEFECT DATA(10)
        block10(0x41, 0x18),                                                  // WRITE SAME(10)
        plain([0x42, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00]),  // UNMAP
        plain([0x55, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00]),  // MODE SELECT(10)
        plain([0x56, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]),  // RESERVE(10)
        plain([0x57, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]),  // RELEASE(10)
        plain([0x5A, 0x18, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00]),  // MODE SENSE(10)
        serviceAction([0x5E, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00]),  // PR IN: READ KEYS
        serviceAction([0x5E, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00]),  // READ RESERVATION
        serviceAction([0x5E, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00]),  // REPORT CAPABILITIES
        serviceAction([0x5E, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00]),  // READ FULL STATUS
        serviceAction([0x5F, 0x00, 0xFF, 0x00, 0x00] + lba4 + [0x00]),        // PR OUT: REGISTER
        serviceAction([0x5F, 0x01, 0xFF, 0x00, 0x00] + lba4 + [0x00]),        // RESERVE
        serviceAction([0x5F, 0x02, 0xFF, 0x00, 0x00] + lba4 + [0x00]),        // RELEASE
        serviceAction([0x5F, 0x03, 0xFF, 0x00, 0x00] + lba4 + [0x00]),        // CLEAR
        serviceAction([0x5F, 0x04, 0xFF, 0x00, 0x00] + lba4 + [0x00]),        // PREEMPT
        serviceAction([0x5F, 0x05, 0xFF, 0x00, 0x00] + lba4 + [0x00]),        // PREEMPT AND ABORT
        serviceAction([0x5F, 0x06, 0xFF, 0x00, 0x00] + lba4 + [0x00]),        // REGISTER AND IGNORE EXISTING KEY
        block16(0x88, dpoFUA),                                                // READ(16)
        plain([0x89, 0x18] + lba8 + [0x00, 0x00, 0x00, 0xFF, 0x00, 0x00]),    // COMPARE AND WRITE
        block16(0x8A, dpoFUA),                                                // WRITE(16)
        block16(0x8B, dpoFUA),                                                // ORWRITE(16)
        block16(0x8E, dpoByteCheck),                                          // WRITE AND VERIFY(16)
        block16(0x8F, dpoByteCheck),                                          // VERIFY(16)
        block16(0x90, 0x02),                                                  // PRE-FETCH(16)
        block16(0x91, 0x02),                                                  // SYNCHRONIZE CACHE(16)
        block16(0x93, 0x19),                                                  // WRITE SAME(16)
        serviceAction([0x9E, 0x10] + [UInt8](repeating: 0, count: 8) + lba4 + [0x00, 0x00]),  // READ CAPACITY(16)
        serviceAction([0x9E, 0x12] + lba8 + lba4 + [0x00, 0x00]),             // GET LBA STATUS
        plain([0xA0, 0x00, 0xFF, 0x00, 0x00, 0x00] + lba4 + [0x00, 0x00]),    // REPORT LUNS
        serviceAction([0xA3, 0x2A, 0x00, 0x00, 0x00, 0x00] + lba4 + [0x00, 0x00]),  // REPORT TARGET PORT GROUPS
        serviceAction([0xA3, 0x0C, 0x87, 0xFF, 0xFF, 0xFF] + lba4 + [0x00, 0x00]),  // REPORT SUPPORTED OPERATION CODES
        block12(0xA8, dpoFUA),                                                // READ(12)
        block12(0xAA, dpoFUA),                                                // WRITE(12)
        block12(0xAE, dpoByteCheck),                                          // WRITE AND VERIFY(12)
        block12(0xAF, dpoByteCheck),                                          // VERIFY(12)
        plain([0xB7, 0x1F, 0x00, 0x00, 0x00, 0x00] + lba4 + [0x00, 0x00]),    // READ DEFECT DATA(12)
    ]

    /// Opcodes that carry service actions.
    static let serviceActionOpcodes: Set<UInt8> = Set(all.filter { $0.serviceAction != nil }.map(\.opcode))

    static let supportedOpcodes: Set<UInt8> = Set(all.map(\.opcode))

    /// The descriptor for `opcode` (and `serviceAction` when the opcode has them).
    static func descriptor(opcode: UInt8, serviceAction: UInt16?) -> CommandDescriptor? {
        all.first { $0.opcode == opcode && $0.serviceAction == serviceAction }
    }
}
