// SAM-5 LUN addressing in the 8-byte LUN field: peripheral (method 0) and flat (method 1)
// single-level addresses, which is all a target with a handful of LUNs hands out.

enum LUNAddressing {
    /// The LUN number in an 8-byte LUN field, or nil for an address method this target never
    /// assigns (so no logical unit can match it).
    static func decode(_ field: UInt64) -> UInt64? {
        let method = field >> 62
        let first = (field >> 48) & 0xFFFF
        guard field & 0x0000_FFFF_FFFF_FFFF == 0 else { return nil }
        switch method {
        case 0: return (first >> 8) & 0x3F == 0 ? first & 0xFF : nil // bus 0 only
        case 1: return first & 0x3FFF
        default: return nil
        }
    }

    /// The 8-byte LUN field for `lun` (peripheral method below 256, flat above).
    static func encode(_ lun: UInt64) -> UInt64 {
        precondition(lun < 1 << 14, "LUN beyond the flat address space")
        if lun < 256 { return lun << 48 }
        return (0x4000 | lun) << 48
    }
}
