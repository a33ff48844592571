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

    /// Runs `body` on the connection's event loop.
    func run(_ body: @escaping @Sendable (ISCSIConnectionHandler) -> Void) {
        let handler = self.handler
        channel.eventLoop.execute { body(handler.value) }
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

final class SessionRegistry: Sendable {
    private struct Record {
        var key: SessionKey
        var connection: ConnectionReference
    }

    private struct State {
        var nextTSIH: UInt16 = 1
        var sessions: [UInt16: Record] = [:]
    }

    private let state = Mutex(State())
    static let maxSessions = 4096

    /// Binds a completed login to a session. A TSIH of 0 asks for a new session (replacing
    /// an existing one with the same key); a non-zero TSIH would add a connection, which
    /// this target (MaxConnections=1) refuses.
    func bind(key: SessionKey, requestedTSIH: UInt16, connection: ConnectionReference) -> Result<UInt16, LoginStatus> {
        let (result, replaced): (Result<UInt16, LoginStatus>, ConnectionReference?) = state.withLock { state in
            if requestedTSIH != 0 {
                guard state.sessions[requestedTSIH] != nil else { return (.failure(.sessionDoesNotExist), nil) }
                return (.failure(.tooManyConnections), nil)
            }
            let existing = state.sessions.first { $0.value.key == key }
            if let existing { state.sessions[existing.key] = nil }
            guard state.sessions.count < Self.maxSessions else { return (.failure(.outOfResources), nil) }
            // Bounded: at most maxSessions TSIHs are taken, so a free one is found quickly.
            var tsih = state.nextTSIH
            while tsih == 0 || state.sessions[tsih] != nil { tsih &+= 1 }
            state.nextTSIH = tsih &+ 1
            state.sessions[tsih] = Record(key: key, connection: connection)
            return (.success(tsih), existing?.value.connection)
        }
        if let replaced {
            // Session reinstatement: the old connection's tasks end and it closes.
            replaced.run { $0.closeForReinstatement() }
        }
        return result
    }

    func unbind(tsih: UInt16, channel: any Channel) {
        state.withLock { state in
            if let record = state.sessions[tsih], record.connection.channel === channel {
                state.sessions[tsih] = nil
            }
        }
    }

    /// Live connections logged in to `targetName`.
    func connections(toTarget targetName: String) -> [ConnectionReference] {
        state.withLock { state in state.sessions.values.filter { $0.key.targetName == targetName }.map(\.connection) }
    }

    /// Every live connection.
    func allConnections() -> [ConnectionReference] {
        state.withLock { state in state.sessions.values.map(\.connection) }
    }
}
