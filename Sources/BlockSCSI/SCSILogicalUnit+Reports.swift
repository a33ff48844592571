// REPORT SUPPORTED OPERATION CODES (SPC-4 6.35) and REPORT TARGET PORT GROUPS (SPC-4 6.37),
// answered from `CommandCatalog`, and from the configuration and the volume's ALUA state.
//
// Invariant: the all-commands list and the one-command answers come from the same catalog, so
// they cannot disagree.

extension SCSILogicalUnit {
    func reportSupportedOperationCodes(_ command: ReportOpcodesCommand) throws(CommandFailure) -> SCSIResult {
        let timeouts = command.includeTimeouts
        let data: [UInt8]
        switch command.reportingOptions {
        case 0:
            var descriptors: [UInt8] = []
            for entry in CommandCatalog.all {
                descriptors.append(entry.opcode)
                descriptors.append(0)
                descriptors.appendBigEndian(entry.serviceAction ?? 0)
                descriptors.append(0)
                descriptors.append((timeouts ? 0x02 : 0) | (entry.serviceAction != nil ? 0x01 : 0))  // CTDP, SERVACTV
                descriptors.appendBigEndian(UInt16(entry.cdbLength))
                if timeouts { descriptors += Self.timeoutsDescriptor }
            }
            var all: [UInt8] = []
            all.appendBigEndian(UInt32(descriptors.count))
            data = all + descriptors
        case 1:
            // One opcode: an opcode with service actions must be asked for with one.
            if CommandCatalog.serviceActionOpcodes.contains(command.opcode) { throw .invalidFieldInCDB(byte: 2, bit: 2) }
            data = oneCommand(CommandCatalog.descriptor(opcode: command.opcode, serviceAction: nil), timeouts: timeouts)
        case 2:
            // Opcode and service action: the opcode must have service actions.
            if CommandCatalog.supportedOpcodes.contains(command.opcode)
                && !CommandCatalog.serviceActionOpcodes.contains(command.opcode) {
                throw .invalidFieldInCDB(byte: 2, bit: 2)
            }
            data = oneCommand(CommandCatalog.descriptor(opcode: command.opcode, serviceAction: command.serviceAction),
                              timeouts: timeouts)
        default:
            // 011b: the service action counts only for opcodes that have them.
            let action = CommandCatalog.serviceActionOpcodes.contains(command.opcode) ? command.serviceAction : nil
            data = oneCommand(CommandCatalog.descriptor(opcode: command.opcode, serviceAction: action), timeouts: timeouts)
        }
        return dataIn(data, allocationLength: command.allocationLength)
    }

    /// The one-command parameter data: SUPPORT 011b with the usage data, or 001b.
    private func oneCommand(_ entry: CommandDescriptor?, timeouts: Bool) -> [UInt8] {
        guard let entry else { return [0, 0x01, 0, 0] }
        var data: [UInt8] = [0, (timeouts ? 0x80 : 0) | 0x03]
        data.appendBigEndian(UInt16(entry.cdbLength))
        data += entry.usageData
        if timeouts { data += Self.timeoutsDescriptor }
        return data
    }

    /// Command timeouts descriptor (SPC-4 6.35.4): length 0Ah, no timeouts specified.
    private static let timeoutsDescriptor: [UInt8] = [0x00, 0x0A] + [UInt8](repeating: 0, count: 10)

    /// REPORT TARGET PORT GROUPS: this server's group only, with its one port, in the state
    /// the volume's role gives it. The other copies of the volume are other servers' groups;
    /// an initiator learns their states through their own paths.
    func reportTargetPortGroups(extendedHeader: Bool, allocationLength: Int) -> SCSIResult {
        // PREF stays 0: every server would claim it for its own group, and multipath's alua
        // prioritizer ranks a preferred group that is not active/optimized above one that is.
        var group: [UInt8] = [accessState.rawValue, AsymmetricAccessState.supportedStatesMask]
        group.appendBigEndian(configuration.targetPortGroup)
        group += [0x00, 0x00, 0x00, 0x01]     // reserved, STATUS CODE (none), vendor specific, port count
        group += [0x00, 0x00]                 // obsolete
        group.appendBigEndian(configuration.relativeTargetPort)
        // FORMAT TYPE 001b; IMPLICIT TRANSITION TIME 0, unspecified: how long a primary waits to
        // be assigned again is up to whoever assigns roles.
        let header: [UInt8] = extendedHeader ? [0x10, 0x00, 0x00, 0x00] : []
        // RETURN DATA LENGTH counts every byte after itself, the extended header's too.
        var data: [UInt8] = []
        data.appendBigEndian(UInt32(header.count + group.count))
        return dataIn(data + header + group, allocationLength: allocationLength)
    }
}
