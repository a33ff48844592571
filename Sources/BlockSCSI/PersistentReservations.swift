// The persistent reservation state machine (SPC-4 5.9): registrations, the reservation and
// the PERSISTENT RESERVE OUT service actions, as a value type with no I/O.
//
// Invariants (checked by `checkInvariants`, asserted after every mutation):
// - At most one registration per I_T nexus, never with key 0, at most `maxRegistrations`.
// - A reservation of a non-all-registrants type is held by a registered nexus.
// - A reservation of an all-registrants type exists only while someone is registered; every
//   registrant holds it (`holder` then only records who created it).
// - PRgeneration grows by one for every REGISTER, REGISTER AND IGNORE EXISTING KEY, CLEAR,
//   PREEMPT and PREEMPT AND ABORT that changes state; never for RESERVE or RELEASE.

/// Persistent reservation types (SPC-4 table 171).
public enum PersistentReservationType: UInt8, Sendable, CaseIterable {
    case writeExclusive = 1
    case exclusiveAccess = 3
    case writeExclusiveRegistrantsOnly = 5
    case exclusiveAccessRegistrantsOnly = 6
    case writeExclusiveAllRegistrants = 7
    case exclusiveAccessAllRegistrants = 8

    var isAllRegistrants: Bool { self == .writeExclusiveAllRegistrants || self == .exclusiveAccessAllRegistrants }

    /// Registrants (holders or not) get full access.
    var admitsRegistrants: Bool { rawValue >= 5 }

    /// Non-holders may not even read.
    var excludesReads: Bool {
        self == .exclusiveAccess || self == .exclusiveAccessRegistrantsOnly || self == .exclusiveAccessAllRegistrants
    }
}

/// What a command does to the medium, for reservation conflict checks (SPC-4 table 67).
enum ReservationAccess: Sendable {
    /// Never conflicts (INQUIRY, REPORT LUNS, PR IN, TEST UNIT READY, ...).
    case unrestricted
    /// Conflicts under exclusive-access reservations.
    case read
    /// Conflicts under every reservation type.
    case write
}

struct PersistentRegistration: Sendable, Equatable {
    var nexus: ITNexus
    var key: UInt64
}

struct PersistentReservation: Sendable, Equatable {
    var type: PersistentReservationType
    var holder: ITNexus
}

/// The PERSISTENT RESERVE OUT parameter list (SPC-4 6.16.3), basic form.
struct ReserveOutParameters: Sendable, Equatable {
    static let lengthBytes = 24

    var reservationKey: UInt64
    var serviceActionKey: UInt64
    var specifyInitiatorPorts: Bool
    var allTargetPorts: Bool
    var persistThroughPowerLoss: Bool

    /// Parses exactly `lengthBytes` bytes.
    init(bytes: [UInt8]) {
        precondition(bytes.count == Self.lengthBytes, "the basic parameter list has 24 bytes")
        reservationKey = bytes.loadBigEndian(UInt64.self, at: 0)
        serviceActionKey = bytes.loadBigEndian(UInt64.self, at: 8)
        specifyInitiatorPorts = bytes[20] & 0x08 != 0
        allTargetPorts = bytes[20] & 0x04 != 0
        persistThroughPowerLoss = bytes[20] & 0x01 != 0
    }

    init(reservationKey: UInt64, serviceActionKey: UInt64, persistThroughPowerLoss: Bool = false) {
        self.reservationKey = reservationKey
        self.serviceActionKey = serviceActionKey
        specifyInitiatorPorts = false
        allTargetPorts = false
        self.persistThroughPowerLoss = persistThroughPowerLoss
    }
}

/// What a successful PERSISTENT RESERVE OUT requires of the rest of the logical unit.
struct ReserveOutEffects: Sendable, Equatable {
    var unitAttentions: [UnitAttentionTarget] = []
    /// PREEMPT AND ABORT: nexuses whose tasks must be aborted.
    var abortedNexuses: Set<ITNexus> = []
}

struct UnitAttentionTarget: Sendable, Equatable {
    var nexus: ITNexus
    var code: SenseCode
}

struct ReservationState: Sendable, Equatable {
    static let maxRegistrations = 1024

    var generation: UInt32 = 0
    var registrations: [PersistentRegistration] = []
    var reservation: PersistentReservation?
    /// APTPL: the state survives power loss (it is written to the sidecar file).
    var persistThroughPowerLoss = false

    func key(of nexus: ITNexus) -> UInt64? {
        registrations.first { $0.nexus == nexus }?.key
    }

    func holdsReservation(_ nexus: ITNexus) -> Bool {
        guard let reservation else { return false }
        if reservation.type.isAllRegistrants { return key(of: nexus) != nil }
        return reservation.holder == nexus
    }

    /// True when `access` from `nexus` conflicts with the reservation (SPC-4 table 67).
    func conflicts(_ nexus: ITNexus, _ access: ReservationAccess) -> Bool {
        guard let reservation, access != .unrestricted, !holdsReservation(nexus) else { return false }
        if reservation.type.admitsRegistrants && key(of: nexus) != nil { return false }
        return access == .write || reservation.type.excludesReads
    }

    /// Applies one PERSISTENT RESERVE OUT service action from `nexus`. On a throw the state
    /// is unchanged.
    mutating func apply(_ command: PersistentReserveOutCommand, _ parameters: ReserveOutParameters,
                        from nexus: ITNexus) throws(CommandFailure) -> ReserveOutEffects {
        // SPEC_I_PT and ALL_TG_PT are not supported (SIP_C and ATP_C are 0).
        if parameters.specifyInitiatorPorts { throw .invalidFieldInParameterList(byte: 20, bit: 3) }
        if parameters.allTargetPorts { throw .invalidFieldInParameterList(byte: 20, bit: 2) }
        var next = self
        let effects: ReserveOutEffects
        switch command.action {
        case .register, .registerAndIgnoreExistingKey:
            effects = try next.register(nexus, parameters, ignoringExistingKey: command.action == .registerAndIgnoreExistingKey)
        case .reserve, .release, .clear, .preempt, .preemptAndAbort:
            // Everything else requires a registered nexus quoting its own key.
            guard let key = key(of: nexus), key == parameters.reservationKey else { throw .reservationConflict }
            switch command.action {
            case .reserve: effects = try next.reserve(nexus, scope: command.scope, type: command.type)
            case .release: effects = try next.release(nexus, scope: command.scope, type: command.type)
            case .clear: effects = next.clear(nexus)
            default:
                effects = try next.preempt(nexus, parameters.serviceActionKey, scope: command.scope, type: command.type,
                                           abort: command.action == .preemptAndAbort)
            }
        }
        next.checkInvariants()
        self = next
        return effects
    }

    private mutating func register(_ nexus: ITNexus, _ parameters: ReserveOutParameters,
                                   ignoringExistingKey: Bool) throws(CommandFailure) -> ReserveOutEffects {
        let newKey = parameters.serviceActionKey
        guard let index = registrations.firstIndex(where: { $0.nexus == nexus }) else {
            if !ignoringExistingKey && parameters.reservationKey != 0 { throw .reservationConflict }
            // Registering key 0 for an unregistered nexus does nothing (SPC-4 5.9.7.3).
            guard newKey != 0 else { return ReserveOutEffects() }
            guard registrations.count < Self.maxRegistrations else { throw .check(.insufficientRegistrationResources) }
            registrations.append(PersistentRegistration(nexus: nexus, key: newKey))
            persistThroughPowerLoss = parameters.persistThroughPowerLoss
            generation &+= 1
            return ReserveOutEffects()
        }
        if !ignoringExistingKey && registrations[index].key != parameters.reservationKey { throw .reservationConflict }
        var effects = ReserveOutEffects()
        if newKey == 0 {
            effects = unregister(at: index)
        } else {
            registrations[index].key = newKey
        }
        persistThroughPowerLoss = parameters.persistThroughPowerLoss
        generation &+= 1
        return effects
    }

    /// Removes a registration and whatever reservation depended on it (SPC-4 5.9.11.3).
    private mutating func unregister(at index: Int) -> ReserveOutEffects {
        let nexus = registrations.remove(at: index).nexus
        guard let reservation else { return ReserveOutEffects() }
        var effects = ReserveOutEffects()
        if reservation.type.isAllRegistrants {
            if registrations.isEmpty { self.reservation = nil }
        } else if reservation.holder == nexus {
            self.reservation = nil
            if reservation.type.admitsRegistrants {
                effects.unitAttentions = registrations.map { UnitAttentionTarget(nexus: $0.nexus, code: .reservationsReleased) }
            }
        }
        return effects
    }

    private func validatedType(scope: UInt8, type: UInt8) throws(CommandFailure) -> PersistentReservationType {
        // Only logical-unit scope exists in SPC-4.
        guard scope == 0 else { throw .invalidFieldInCDB(byte: 2, bit: 7) }
        guard let valid = PersistentReservationType(rawValue: type) else { throw .invalidFieldInCDB(byte: 2, bit: 3) }
        return valid
    }

    private mutating func reserve(_ nexus: ITNexus, scope: UInt8, type: UInt8) throws(CommandFailure) -> ReserveOutEffects {
        let requested = try validatedType(scope: scope, type: type)
        if let reservation {
            // Reserving again what one already holds is allowed; anything else conflicts.
            guard holdsReservation(nexus), reservation.type == requested else { throw .reservationConflict }
            return ReserveOutEffects()
        }
        reservation = PersistentReservation(type: requested, holder: nexus)
        return ReserveOutEffects()
    }

    private mutating func release(_ nexus: ITNexus, scope: UInt8, type: UInt8) throws(CommandFailure) -> ReserveOutEffects {
        // Releasing without holding is a successful no-op (SPC-4 5.9.10.2).
        guard let reservation, holdsReservation(nexus) else { return ReserveOutEffects() }
        guard scope == 0, reservation.type.rawValue == type else { throw .check(.invalidReleaseOfPersistentReservation) }
        self.reservation = nil
        guard reservation.type.admitsRegistrants else { return ReserveOutEffects() }
        return ReserveOutEffects(unitAttentions: registrations.filter { $0.nexus != nexus }
            .map { UnitAttentionTarget(nexus: $0.nexus, code: .reservationsReleased) })
    }

    private mutating func clear(_ nexus: ITNexus) -> ReserveOutEffects {
        let others = registrations.filter { $0.nexus != nexus }
        registrations = []
        reservation = nil
        generation &+= 1
        return ReserveOutEffects(unitAttentions: others.map { UnitAttentionTarget(nexus: $0.nexus, code: .reservationsPreempted) })
    }

    /// PREEMPT and PREEMPT AND ABORT (SPC-4 5.9.11.4).
    private mutating func preempt(_ nexus: ITNexus, _ victimKey: UInt64, scope: UInt8, type: UInt8,
                                  abort: Bool) throws(CommandFailure) -> ReserveOutEffects {
        var victims: [PersistentRegistration]
        var reservationChanged = false
        if let current = reservation, current.type.isAllRegistrants, victimKey == 0 {
            // Key 0 under an all-registrants reservation: everyone else goes, we hold it alone.
            let requested = try validatedType(scope: scope, type: type)
            victims = registrations.filter { $0.nexus != nexus }
            reservation = PersistentReservation(type: requested, holder: nexus)
            reservationChanged = requested != current.type
        } else if let current = reservation, !current.type.isAllRegistrants, key(of: current.holder) == victimKey {
            // Preempting the holder: its reservation becomes ours.
            let requested = try validatedType(scope: scope, type: type)
            victims = registrations.filter { $0.key == victimKey && $0.nexus != nexus }
            reservation = PersistentReservation(type: requested, holder: nexus)
            reservationChanged = requested != current.type
        } else {
            // Only registrations go; the reservation (if any) stays.
            guard victimKey != 0 else { throw .invalidFieldInParameterList(byte: 8) }
            victims = registrations.filter { $0.key == victimKey }
            guard !victims.isEmpty else { throw .reservationConflict }
        }
        let victimNexuses = Set(victims.map(\.nexus))
        registrations.removeAll { victimNexuses.contains($0.nexus) }
        if let current = reservation, current.type.isAllRegistrants, registrations.isEmpty { reservation = nil }
        generation &+= 1

        var effects = ReserveOutEffects()
        for victim in victimNexuses where victim != nexus {
            effects.unitAttentions.append(UnitAttentionTarget(nexus: victim, code: .registrationsPreempted))
        }
        if reservationChanged {
            for remaining in registrations where remaining.nexus != nexus {
                effects.unitAttentions.append(UnitAttentionTarget(nexus: remaining.nexus, code: .reservationsReleased))
            }
        }
        if abort { effects.abortedNexuses = victimNexuses.subtracting([nexus]) }
        return effects
    }

    /// Asserts the invariants at the top of this file.
    func checkInvariants() {
        assert(registrations.count <= Self.maxRegistrations, "too many registrations")
        assert(Set(registrations.map(\.nexus)).count == registrations.count, "one registration per nexus")
        assert(registrations.allSatisfy { $0.key != 0 }, "key 0 is never registered")
        if let reservation {
            if reservation.type.isAllRegistrants {
                assert(!registrations.isEmpty, "an all-registrants reservation needs registrants")
            } else {
                assert(key(of: reservation.holder) != nil, "the holder is registered")
            }
        }
    }
}
