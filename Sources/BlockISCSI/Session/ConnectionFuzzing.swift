// Entry points for the connection fuzzer: a server with one target, connection handlers on
// channels the fuzzer drives with PDU sequences, and the bounds a connection promises checked
// with `precondition`, so a violation is a crash the fuzzer reports.
//
// Checked after every PDU (`checkBounds`):
// - tasks stay within the CmdSN window plus `maxImmediateCommands`, immediate ones counted once;
// - the write and read budgets equal what the tasks hold and stay within their limits plus
//   one command; the admission queue holds only live writes (its storage bounded);
// - parked work stays within the window, and the bytes waiting for framing within one PDU
//   plus one fuzzer step.
// Checked once no task runs in the logical unit (`checkSettled`): queued writes wait only
// for budget that another write holds.
// Checked once a closed connection's tasks have ended (`checkReleased`): nothing is held and
// the session left the session table.

import BlockSCSI
import NIOCore

/// A server context serving one logical unit, for fuzzing connections.
@_spi(Fuzzing) public final class ConnectionFuzzTarget: Sendable {
    let context: ServerContext

    public init(targetName: String, logicalUnit: SCSILogicalUnit, configuration: ISCSIServerConfiguration) {
        let catalog = TargetCatalog(targets: [ISCSITargetDefinition(name: targetName, logicalUnits: [0: logicalUnit])],
                                    portalGroupTag: configuration.portalGroupTag, discoveryAuthentication: .none)
        context = ServerContext(configuration: configuration, catalog: catalog)
    }

    /// Adds a new connection handler to `channel`; call on the channel's event loop.
    public func attach(to channel: any Channel) throws -> ConnectionProbe {
        let handler = ISCSIConnectionHandler(server: context, framing: ISCSIFramingSettings())
        try channel.pipeline.syncOperations.addHandler(handler)
        return ConnectionProbe(handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
    }

    /// Sessions in the session table now.
    public var sessionCount: Int { context.registry.allConnections().count }
}

/// A view of one fuzzed connection's state; every member runs on the channel's event loop.
@_spi(Fuzzing) public struct ConnectionProbe: Sendable {
    let handler: NIOLoopBound<ISCSIConnectionHandler>

    /// No task is left (executing ones included).
    public var isIdle: Bool { handler.value.tasks.isEmpty }

    /// No task runs in the logical unit: what is left waits for the initiator (data, a
    /// lower CmdSN) or for budget another task holds.
    public var isSettled: Bool {
        handler.value.tasks.values.allSatisfy {
            switch $0.state {
            case .collecting, .parked: return true
            case .executing, .aborted: return false
            }
        }
    }

    /// Once settled, nothing waits for something that will not happen by itself: a write
    /// queued for the write budget waits behind one that holds it.
    public func checkSettled() {
        let connection = handler.value
        precondition(connection.admissionQueue.isEmpty || connection.writeReservedBytes > 0,
                     "a write waits for budget that nothing holds")
    }

    public func checkBounds() {
        let connection = handler.value
        let configuration = connection.server.configuration
        let tasks = connection.tasks.values
        precondition(tasks.count <= configuration.commandWindow + configuration.maxImmediateCommands, "tasks bounded")
        let immediate = tasks.filter { $0.cmdSN == nil }.count
        precondition(connection.immediateTaskCount == immediate, "immediate tasks counted once each")
        precondition(immediate <= configuration.maxImmediateCommands, "immediate tasks bounded")
        let reservedWrites = tasks.reduce(0) { $0 + $1.reservedWriteBytes }
        precondition(connection.writeReservedBytes == reservedWrites, "write budget matches its tasks")
        precondition(reservedWrites <= configuration.maxSolicitedBytesPerConnection + configuration.maxTransferBytes,
                     "write budget bounded")
        let reservedReads = tasks.reduce(0) { $0 + $1.reservedDataInBytes }
        precondition(connection.dataInReservedBytes == reservedReads, "read budget matches its tasks")
        precondition(reservedReads <= configuration.maxDataInBytesPerConnection + configuration.maxTransferBytes,
                     "read budget bounded")
        precondition(connection.admissionQueue.count <= tasks.count, "only live writes wait for admission")
        precondition(connection.admissionQueue.storedCount <= 2 * tasks.count + AdmissionQueue.compactionSlack + 1,
                     "admission queue storage bounded")
        precondition(connection.parked.count <= configuration.commandWindow, "parked work bounded by the window")
        precondition(connection.window.inFlight <= connection.window.capacity, "window bounded")
        let largestPDUBytes = BasicHeaderSegment.sizeBytes + 255 * 4 + 8 + configuration.limits.maxRecvDataSegmentLength + 3
        precondition(connection.inbound.readableBytes <= largestPDUBytes + Self.largestFuzzStepBytes,
                     "bytes waiting for framing bounded")
        // (Growth by appending rounds up to a power of two.)
        precondition(connection.inbound.capacity <= 2 * (largestPDUBytes + Self.largestFuzzStepBytes),
                     "the framing buffer does not grow with the stream")
    }

    /// The most bytes the fuzzer hands the connection in one step.
    public static let largestFuzzStepBytes = 64 << 10

    /// After the connection closed and its tasks ended: nothing held, session unbound.
    public func checkReleased() {
        let connection = handler.value
        precondition(connection.tasks.isEmpty, "no task outlives its connection's end")
        precondition(connection.writeReservedBytes == 0 && connection.dataInReservedBytes == 0, "budgets released")
        precondition(connection.immediateTaskCount == 0, "immediate count released")
        precondition(connection.admissionQueue.isEmpty, "admission queue empty")
        precondition(connection.sessionBinding == nil, "the session left the table")
    }
}
