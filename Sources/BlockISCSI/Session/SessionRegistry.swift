// Sessions of one server: TSIH allocation, session reinstatement (a new login with the same
// initiator, ISID and target replaces the old session), and the live connections per target
// so a LUN or target reset reaches every session.
//
// Invariants:
// - A TSIH is never 0 and names at most one live session.
// - At most one session per (initiator name, ISID, target name).

import BlockSCSI
import NIOCore
import Synchronization

/// The key RFC 7143 uses to identify a session across reconnects.
struct SessionKey: Hashable, Sendable {
    var initiatorName: String
    var isid: UInt64
    var targetName: String
}

/// A live connection, reachable from other event loops.
struct ConnectionReference: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<ISCSIConnectionHandler>
    /// The session's TSIH once bound (0 before).
    var tsih: UInt16 = 0

    /// Runs `body` on the connection's event loop.
    func run(_ body: @escaping @Sendable (ISCSIConnectionHandler) -> Void) {
        let handler = self.handler
        channel.eventLoop.execute { body(handler.value) }
    }

    /// Ends the session for a reinstating login or a removed target: aborts every task and
    /// closes the connection; the future succeeds once none of its tasks can still reach a
    /// volume.
    func end(because reason: String) -> EventLoopFuture<Void> {
        let handler = self.handler
        let done = channel.eventLoop.makePromise(of: Void.self)
        channel.eventLoop.execute { handler.value.closeAbortingTasks(because: "\(reason)") { done.succeed() } }
        return done.futureResult
    }

    /// Aborts this connection's tasks that `predicate` selects; the future succeeds once they
    /// have ended (LUN and target resets wait for other sessions' tasks this way).
    func abortTasks(where predicate: @escaping @Sendable (CommandTask) -> Bool) -> EventLoopFuture<Void> {
        let handler = self.handler
        let done = channel.eventLoop.makePromise(of: Void.self)
        channel.eventLoop.execute {
            let connection = handler.value
            connection.abort(connection.tasks.values.filter(predicate).map(\.initiatorTaskTag)) { done.succeed() }
        }
        return done.futureResult
    }

    /// Aborts this connection's tasks addressed to `unit` if its session is one of `nexuses`,
    /// and returns once those tasks have ended (PREEMPT AND ABORT). The unit, not a LUN number:
    /// the same number names another unit in another target.
    func abortTasks(of nexuses: Set<ITNexus>, on unit: SCSILogicalUnit) async {
        let handler = self.handler
        let done = channel.eventLoop.makePromise(of: Void.self)
        channel.eventLoop.execute {
            let connection = handler.value
            guard let session = connection.session, nexuses.contains(session.nexus) else {
                done.succeed()
                return
            }
            let tags = connection.tasks.values.filter { task in
                task.lun.flatMap { session.logicalUnits[$0] } === unit
            }.map(\.initiatorTaskTag)
            connection.abort(tags) { done.succeed() }
        }
        try? await done.futureResult.get()
    }
}

/// Which pool of the session table a session counts against: discovery and
/// unauthenticated logins cannot take the places of authenticated sessions.
enum SessionClass: Sendable, CaseIterable {
    case discovery
    case unauthenticated
    case authenticated
}

/// How many sessions of each kind the table holds at most.
struct SessionLimits: Sendable {
    var discovery: Int
    var unauthenticated: Int
    var authenticated: Int
    var perInitiator: Int

    init(_ configuration: ISCSIServerConfiguration) {
        discovery = configuration.maxDiscoverySessions
        unauthenticated = configuration.maxUnauthenticatedSessions
        authenticated = configuration.maxAuthenticatedSessions
        perInitiator = configuration.maxSessionsPerInitiator
    }

    func limit(_ sessionClass: SessionClass) -> Int {
        switch sessionClass {
        case .discovery: discovery
        case .unauthenticated: unauthenticated
        case .authenticated: authenticated
        }
    }
}

final class SessionRegistry: Sendable {
    private struct Record {
        var key: SessionKey
        var sessionClass: SessionClass
        var connection: ConnectionReference
    }

    private struct State {
        var nextTSIH: UInt16 = 1
        var sessions: [UInt16: Record] = [:]
        var countByClass: [SessionClass: Int] = [:]
        var countByInitiator: [String: Int] = [:]
        var tsihByKey: [SessionKey: UInt16] = [:]

        mutating func remove(_ tsih: UInt16) -> Record? {
            guard let record = sessions.removeValue(forKey: tsih) else { return nil }
            if tsihByKey[record.key] == tsih { tsihByKey[record.key] = nil }
            countByClass[record.sessionClass, default: 0] -= 1
            let name = record.key.initiatorName
            countByInitiator[name, default: 0] -= 1
            if countByInitiator[name] == 0 { countByInitiator[name] = nil }
            return record
        }
    }

    private let state = Mutex(State())
    private let limits: SessionLimits
    /// TSIHs are 16 bits and 0 is reserved; the pools together stay below that.
    static let maxSessions = 65_000

    init(limits: SessionLimits) {
        precondition(limits.discovery + limits.unauthenticated + limits.authenticated <= Self.maxSessions,
                     "session pools fit the TSIH space")
        self.limits = limits
    }

    /// Binds a completed login to a session. A TSIH of 0 asks for a new session (replacing
    /// an existing one with the same key: session reinstatement); a non-zero TSIH would add
    /// a connection, which this target (MaxConnections=1) refuses. A replaced session's
    /// connection comes back with the TSIH: the new session may start only once the old
    /// one's tasks have ended (`ConnectionReference.end`).
    func bind(key: SessionKey, sessionClass: SessionClass, requestedTSIH: UInt16,
              connection: ConnectionReference) -> Result<(tsih: UInt16, replaced: ConnectionReference?), LoginStatus> {
        state.withLock { state in
            if requestedTSIH != 0 {
                guard state.sessions[requestedTSIH] != nil else { return .failure(.sessionDoesNotExist) }
                return .failure(.tooManyConnections)
            }
            let existing = state.tsihByKey[key].flatMap { state.sessions[$0] }
            // The session being replaced frees its own places.
            let classCount = state.countByClass[sessionClass, default: 0] - (existing?.sessionClass == sessionClass ? 1 : 0)
            let initiatorCount = state.countByInitiator[key.initiatorName, default: 0] - (existing == nil ? 0 : 1)
            guard classCount < limits.limit(sessionClass), initiatorCount < limits.perInitiator else {
                return .failure(.outOfResources)
            }
            if let existing { _ = state.remove(existing.connection.tsih) }
            // Bounded: fewer than maxSessions TSIHs are taken, so a free one is found quickly.
            var tsih = state.nextTSIH
            while tsih == 0 || state.sessions[tsih] != nil { tsih &+= 1 }
            state.nextTSIH = tsih &+ 1
            var reference = connection
            reference.tsih = tsih
            state.sessions[tsih] = Record(key: key, sessionClass: sessionClass, connection: reference)
            state.tsihByKey[key] = tsih
            state.countByClass[sessionClass, default: 0] += 1
            state.countByInitiator[key.initiatorName, default: 0] += 1
            return .success((tsih, existing?.connection))
        }
    }

    func unbind(tsih: UInt16, channel: any Channel) {
        state.withLock { state in
            if let record = state.sessions[tsih], record.connection.channel === channel {
                _ = state.remove(tsih)
            }
        }
    }

    /// Live connections logged in to `targetName` (and closed ones whose tasks still run).
    /// iSCSI names compare case-insensitively: a session's key has the name as its
    /// initiator wrote it.
    func connections(toTarget targetName: String) -> [ConnectionReference] {
        let name = targetName.lowercased()
        return state.withLock { state in
            state.sessions.values.filter { $0.key.targetName.lowercased() == name }.map(\.connection)
        }
    }

    /// Every live connection.
    func allConnections() -> [ConnectionReference] {
        state.withLock { state in state.sessions.values.map(\.connection) }
    }

    /// Sessions bound now, per pool (tests and status).
    func count(_ sessionClass: SessionClass) -> Int {
        state.withLock { $0.countByClass[sessionClass, default: 0] }
    }
}
