// Asymmetric logical unit access (ALUA, SPC-4 5.15): the state of this server's target port
// group, derived from the volume's replication role, and which commands run in each state.
// The table is docs/ISCSI.md, "Asymmetric access (ALUA)".
//
// Every copy of a volume is the same logical unit to an initiator (the LU designators come
// from the volume UUID), reached through one target port group per server. So the state
// follows the write gate of this server's copy, and nothing else:
//   writes accepted (standalone, assigned primary)       -> active/optimized
//   notPrimary (replica, no role)                        -> standby
//   fenced                                               -> unavailable
//   leaseExpired (primary not yet assigned, lease over)  -> transitioning
//
// Invariants:
// - A state refuses a command with exactly the sense `SenseCode.mapping` gives the refusal it
//   comes from (04/0B, 04/0C, 04/0A), so the gate and this table never disagree about why.
// - `admits` names every `SCSICommand` case: a new command needs a decision here to compile.
// - Active/optimized admits everything; the other states admit only commands that read no
//   blocks and change nothing but this server's own parameters and registrations.

import BlockEngine

/// Asymmetric access states (SPC-4 5.15.2.4) of this server's target port group. Only the
/// states a volume's role can produce exist; active/non-optimized does not.
public enum AsymmetricAccessState: UInt8, Sendable, CaseIterable {
    case activeOptimized = 0x0
    case standby = 0x2
    case unavailable = 0x3
    case transitioning = 0xF

    /// T_SUP, U_SUP, S_SUP and AO_SUP (SPC-4 6.37): the states above, no others.
    static let supportedStatesMask: UInt8 = 0x80 | 0x08 | 0x04 | 0x01

    /// The state a volume with this write refusal (`Volume.writeRefusal`) is in.
    public init(writeRefusal: BlockError?) {
        switch writeRefusal {
        case nil: self = .activeOptimized
        case .notPrimary?: self = .standby
        case .fenced?, .staleEpoch?: self = .unavailable
        case .leaseExpired?: self = .transitioning
        // Not a gate refusal today: no media access through this port, and no retry storm.
        case _?: self = .unavailable
        }
    }

    /// The sense of a command this state refuses (LOGICAL UNIT NOT ACCESSIBLE, ...); nil for
    /// active/optimized, which refuses nothing.
    var refusalSense: SenseCode? {
        switch self {
        case .activeOptimized: nil
        case .standby: .asymmetricAccessStandby
        case .unavailable: .asymmetricAccessUnavailable
        case .transitioning: .asymmetricAccessTransitioning
        }
    }

    /// Whether `command` runs through a port in this state. SPC-4 requires INQUIRY, REPORT
    /// LUNS, REPORT TARGET PORT GROUPS and REQUEST SENSE in every state, and in standby also
    /// MODE SENSE/SELECT and PERSISTENT RESERVE IN/OUT; it lets a device server support
    /// others. TEST UNIT READY is refused, so it reports the state.
    func admits(_ command: SCSICommand) -> Bool {
        if self == .activeOptimized { return true }
        switch command {
        case .inquiry, .reportLUNs, .reportTargetPortGroups, .requestSense:
            return true
        // Descriptions of the logical unit, the same through every port. Hosts probe them on
        // every path when it appears, whatever its state (a path whose READ CAPACITY fails is
        // sized 0 by Linux).
        case .reportSupportedOperationCodes, .readCapacity10, .readCapacity16, .modeSense, .persistentReserveIn:
            return true
        // Standby takes parameter and registration changes (a cluster registers its keys on
        // every path); unavailable and transitioning take no changes.
        case .modeSelect, .persistentReserveOut:
            return self == .standby
        case .testUnitReady, .read, .write, .verify, .writeAndVerify, .writeSame, .compareAndWrite, .orWrite,
             .synchronizeCache, .prefetch, .unmap, .getLBAStatus, .startStopUnit, .preventAllowMediumRemoval,
             .reserve, .release, .readDefectData:
            return false
        }
    }
}
