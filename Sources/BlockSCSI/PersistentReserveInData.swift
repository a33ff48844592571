// PERSISTENT RESERVE IN parameter data (SPC-4 6.15): the four service actions as bytes.
//
// Invariant: every ADDITIONAL LENGTH field counts the complete data, whatever the allocation
// length later cuts (SPC-4 6.15.2: it is "not altered based on the allocation length").

extension ReservationState {
    /// READ KEYS: PRgeneration, additional length, one 8-byte key per registration.
    func readKeysData() -> [UInt8] {
        var data: [UInt8] = []
        data.reserveCapacity(8 + 8 * registrations.count)
        data.appendBigEndian(generation)
        data.appendBigEndian(UInt32(8 * registrations.count))
        for registration in registrations { data.appendBigEndian(registration.key) }
        return data
    }

    /// READ RESERVATION: the reservation key (0 for all-registrants types), scope and type.
    func readReservationData() -> [UInt8] {
        var data: [UInt8] = []
        data.appendBigEndian(generation)
        guard let reservation else {
            data.appendBigEndian(UInt32(0))
            return data
        }
        data.appendBigEndian(UInt32(16))
        data.appendBigEndian(reservation.type.isAllRegistrants ? 0 : (key(of: reservation.holder) ?? 0))
        data.append(contentsOf: [0, 0, 0, 0, 0])       // obsolete, reserved
        data.append(reservation.type.rawValue)         // scope 0 (logical unit) | type
        data.append(contentsOf: [0, 0])                // obsolete
        return data
    }

    /// REPORT CAPABILITIES: APTPL is supported, every SPC-4 reservation type is.
    func reportCapabilitiesData() -> [UInt8] {
        var data = [UInt8](repeating: 0, count: 8)
        data.storeBigEndian(UInt16(8), at: 0)
        data[2] = 0x01                                  // PTPL_C: APTPL supported
        data[3] = 0x80 | (persistThroughPowerLoss ? 0x01 : 0)  // TMV, PTPL_A
        // PERSISTENT RESERVATION TYPE MASK (SPC-4 table 178).
        data[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02      // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
        data[5] = 0x01                                  // EX_AC_AR
        return data
    }

    /// READ FULL STATUS: one descriptor per registration, with its iSCSI TransportID.
    func readFullStatusData(relativeTargetPort: UInt16) -> [UInt8] {
        var descriptors: [UInt8] = []
        for registration in registrations {
            let transportID = Self.transportID(registration.nexus)
            descriptors.appendBigEndian(registration.key)
            descriptors.append(contentsOf: [0, 0, 0, 0])
            let holder = holdsReservation(registration.nexus)
            descriptors.append(holder ? 0x01 : 0x00)                        // ALL_TG_PT 0, R_HOLDER
            descriptors.append(holder ? reservation?.type.rawValue ?? 0 : 0) // scope | type
            descriptors.append(contentsOf: [0, 0, 0, 0])
            descriptors.appendBigEndian(relativeTargetPort)
            descriptors.appendBigEndian(UInt32(transportID.count))
            descriptors.append(contentsOf: transportID)
        }
        var data: [UInt8] = []
        data.appendBigEndian(generation)
        data.appendBigEndian(UInt32(descriptors.count))
        data.append(contentsOf: descriptors)
        return data
    }

    /// The iSCSI TransportID of an initiator port (SPC-4 7.6.4.6, format 01b): the name,
    /// ",i,0x" and the ISID, NUL-terminated and padded to a multiple of 4 bytes.
    static func transportID(_ nexus: ITNexus) -> [UInt8] {
        var name = Array(nexus.initiatorPortName.utf8)
        name.append(0)
        while name.count % 4 != 0 { name.append(0) }
        var id: [UInt8] = [0x40 | 0x05, 0x00]          // format 01b, protocol iSCSI
        id.appendBigEndian(UInt16(name.count))
        id.append(contentsOf: name)
        return id
    }
}
