// The CmdSN window of a session (RFC 7143 sections 3.2.2.1 and 4.2.2.1), as a plain value.
//
// Invariants:
// - Commands are accepted once each, only within [ExpCmdSN, MaxCmdSN] (serial arithmetic);
//   others are ignored silently, as the RFC requires.
// - ExpCmdSN is the lowest CmdSN not yet received; it advances over contiguous receipts.
// - MaxCmdSN never moves back. It rises to ExpCmdSN - 1 + (capacity - commands in flight), so
//   in-flight commands stay bounded by `capacity` while the window stays honest: a CmdSN
//   once advertised is always accepted.
// - A command is deliverable (may start) once every lower CmdSN was received.

/// Serial-number arithmetic on 32-bit sequence numbers (RFC 1982).
@inline(__always)
func serialLessThan(_ a: UInt32, _ b: UInt32) -> Bool {
    a != b && (b &- a) < (1 << 31)
}

struct CommandWindow: Sendable {
    let capacity: UInt32
    private(set) var expCmdSN: UInt32
    private(set) var maxCmdSN: UInt32
    private(set) var inFlight: UInt32 = 0
    /// CmdSNs above ExpCmdSN already received (bounded by the window).
    private var received: Set<UInt32> = []

    init(initialCmdSN: UInt32, capacity: UInt32) {
        precondition(capacity >= 1 && capacity <= 1 << 16, "window capacity")
        self.capacity = capacity
        self.expCmdSN = initialCmdSN
        self.maxCmdSN = initialCmdSN &- 1 &+ capacity
    }

    /// Whether `cmdSN` is inside the window and new. Accepting it counts it in flight
    /// until `complete()`.
    mutating func accept(_ cmdSN: UInt32) -> Bool {
        guard record(cmdSN) else { return false }
        inFlight += 1
        assert(inFlight <= capacity, "in-flight commands bounded by the window")
        return true
    }

    /// Treats `cmdSN` as received without a command (ABORT TASK of a command that never
    /// arrived, RFC 7143 section 11.5.1); false when it is outside the window or already seen.
    mutating func markReceived(_ cmdSN: UInt32) -> Bool {
        guard record(cmdSN) else { return false }
        raiseMax()
        return true
    }

    /// Every CmdSN below `cmdSN` was received, so the command may start.
    func isDeliverable(_ cmdSN: UInt32) -> Bool {
        serialLessThan(cmdSN, expCmdSN)
    }

    /// A command accepted earlier finished (its response is going out).
    mutating func complete() {
        precondition(inFlight > 0, "completing more commands than accepted")
        inFlight -= 1
        raiseMax()
    }

    private mutating func record(_ cmdSN: UInt32) -> Bool {
        guard !serialLessThan(cmdSN, expCmdSN), !serialLessThan(maxCmdSN, cmdSN) else { return false }
        guard cmdSN == expCmdSN || !received.contains(cmdSN) else { return false }
        if cmdSN == expCmdSN {
            expCmdSN &+= 1
            // Bounded by the window: each step consumes one remembered CmdSN.
            while received.remove(expCmdSN) != nil { expCmdSN &+= 1 }
        } else {
            received.insert(cmdSN)
        }
        assert(received.count <= Int(capacity), "reorder set bounded by the window")
        return true
    }

    private mutating func raiseMax() {
        let candidate = expCmdSN &- 1 &+ (capacity - min(inFlight, capacity))
        if serialLessThan(maxCmdSN, candidate) { maxCmdSN = candidate }
    }
}
