// Task management (RFC 7143 section 11.5): aborts that really stop queued work, and resets
// that reach every session of the target. A response goes out only after the tasks it
// aborted have ended, and aborted tasks never answer.

import BlockSCSI
import NIOCore

/// Task management response codes (section 11.6.1).
enum TaskManagementResponse: UInt8 {
    case functionComplete = 0
    case taskDoesNotExist = 1
    case logicalUnitDoesNotExist = 2
    case reassignmentNotSupported = 4
    case functionNotSupported = 5
    case functionRejected = 255
}

extension ISCSIConnectionHandler {
    func handleTaskManagement(_ request: TaskManagementRequestPDU) {
        guard let session, !session.isDiscovery else {
            reject(.protocolError, header: request.pdu.header)
            return
        }
        guard acceptSequenced(immediate: request.immediate, cmdSN: request.cmdSN) else { return }
        deliver(immediate: request.immediate, cmdSN: request.cmdSN) { [self] in perform(request, session: session) }
    }

    private func perform(_ request: TaskManagementRequestPDU, session: SessionState) {
        let respond: (TaskManagementResponse) -> Void = { [self] response in
            if !request.immediate { window.complete() }
            send(.taskManagementResponse(initiatorTaskTag: request.initiatorTaskTag, response: response.rawValue),
                 flush: true)
        }
        guard let function = request.function else {
            respond(.functionRejected)
            return
        }
        let lun = LUNAddressing.decode(request.lunField)
        logger.info("task management", metadata: ["function": "\(function)", "lun": "\(lun.map { "\($0)" } ?? "?")"])
        switch function {
        case .abortTask:
            guard let task = tasks[request.referencedTaskTag], task.lun == lun else {
                // A referenced command that never arrived counts as received, so its CmdSN
                // no longer holds up the window (RFC 7143 section 11.5.1).
                if serialLessThan(request.refCmdSN, request.cmdSN) || request.immediate,
                   window.markReceived(request.refCmdSN) {
                    respond(.functionComplete)
                } else {
                    respond(.taskDoesNotExist)
                }
                return
            }
            abort([task.initiatorTaskTag]) { respond(.functionComplete) }
        case .abortTaskSet, .clearTaskSet:
            abort(tasks.values.filter { $0.lun == lun }.map(\.initiatorTaskTag)) { respond(.functionComplete) }
        case .logicalUnitReset:
            guard let lun, session.logicalUnits[lun] != nil else {
                respond(.logicalUnitDoesNotExist)
                return
            }
            reset(logicalUnits: [lun]) { respond(.functionComplete) }
        case .targetWarmReset:
            reset(logicalUnits: Array(session.logicalUnits.keys)) { respond(.functionComplete) }
        case .targetColdReset:
            respond(.functionComplete)
            reset(logicalUnits: Array(session.logicalUnits.keys)) { [self] in
                for connection in server.registry.connections(toTarget: session.target!.name) {
                    connection.run { $0.close() }
                }
            }
        case .clearACA:
            respond(.functionNotSupported)
        case .taskReassign:
            respond(.reassignmentNotSupported)
        }
    }

    /// Aborts tasks; `then` runs once every one of them has ended.
    func abort(_ tags: [UInt32], then: @escaping () -> Void) {
        var running = 0
        let barrier = AbortBarrier(then)
        for tag in tags {
            guard var task = tasks[tag] else { continue }
            switch task.state {
            case .collecting, .parked:
                // Not started: drop it (its remaining Data-Out is ignored on arrival).
                removeTask(task)
            case .executing, .aborted:
                task.state = .aborted
                running += 1
                task.endWaiters.append { barrier.arrive() }
                tasks[tag] = task
            }
        }
        barrier.expect(running)
        finishLogoutIfIdle()
    }

    /// Ends every task without waiting (connection teardown).
    func abortAllTasks() {
        abort(Array(tasks.keys)) {}
    }

    /// Aborts the tasks on `luns` in every session of this target, then resets the units.
    /// `then` runs only once no aborted task, in any session, can still reach a volume.
    func reset(logicalUnits luns: [UInt64], then: @escaping () -> Void) {
        guard let session, let target = session.target, let context else { return }
        let lunSet = Set(luns)
        let onLUNs: @Sendable (CommandTask) -> Bool = { task in task.lun.map(lunSet.contains) ?? false }
        let others = server.registry.connections(toTarget: target.name).filter { $0.channel !== context.channel }
        var ended = others.map { $0.abortTasks(where: onLUNs) }
        let own = context.eventLoop.makePromise(of: Void.self)
        abort(tasks.values.filter(onLUNs).map(\.initiatorTaskTag)) { own.succeed() }
        ended.append(own.futureResult)
        let finish = NIOLoopBound({
            for lun in luns { session.logicalUnits[lun]?.logicalUnitReset(initiatedBy: session.nexus) }
            then()
        }, eventLoop: context.eventLoop)
        EventLoopFuture.andAllComplete(ended, on: context.eventLoop).whenComplete { _ in finish.value() }
    }
}

/// Counts ended tasks and runs the continuation after the last one (on the event loop).
final class AbortBarrier {
    private var remaining: Int?
    private var arrived = 0
    private var body: (() -> Void)?

    init(_ body: @escaping () -> Void) { self.body = body }

    func expect(_ count: Int) {
        remaining = count
        fireIfDone()
    }

    func arrive() {
        arrived += 1
        fireIfDone()
    }

    private func fireIfDone() {
        guard let remaining, arrived >= remaining, let body else { return }
        self.body = nil
        body()
    }
}
