// The CmdSN window of a session (RFC 7143 sections 3.2.2.1 and 4.2.2.1), as a plain value.
//
// Invariants:
// - Commands are accepted once each, only within [ExpCmdSN, MaxCmdSN] (serial arithmetic);
//   others are ignored silently, as the RFC requires.
// - ExpCmdSN is the lowest CmdSN not yet received; it advances over contiguous receipts.
// - MaxCmdSN = ExpCmdSN - 1 + (capacity - commands in flight): the window shrinks while
//   commands run, so in-flight commands stay bounded by `capacity`, and it never moves back.

/// Serial-number arithmetic on 32-bit sequence numbers (RFC 1982).
@inline(__always)
func serialLessThan(_ a: UInt32, _ b: UInt32) -> Bool {
    a != b && (b &- a) < (1 << 31)
}

struct CommandWindow: Sendable {
    let capacity: UInt32
    private(set) var expCmdSN: UInt32
    private(set) var inFlight: UInt32 = 0
    /// CmdSNs above ExpCmdSN already received (bounded by the window).
    private var received: Set<UInt32> = []

    init(initialCmdSN: UInt32, capacity: UInt32) {
        precondition(capacity >= 1 && capacity <= 1 << 16, "window capacity")
        self.capacity = capacity
        self.expCmdSN = initialCmdSN
    }

    var maxCmdSN: UInt32 { expCmdSN &- 1 &+ (capacity - min(inFlight, capacity)) }

    /// Whether `cmdSN` is inside the window and new. Accepting it counts it in flight
    /// until `complete()`.
    mutating func accept(_ cmdSN: UInt32) -> Bool {
        let max = maxCmdSN
        guard !serialLessThan(cmdSN, expCmdSN), !serialLessThan(max, cmdSN) else { return false }
        guard cmdSN == expCmdSN || !received.contains(cmdSN) else { return false }
        inFlight += 1
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

    /// A command accepted earlier finished (its response is going out).
    mutating func complete() {
        precondition(inFlight > 0, "completing more commands than accepted")
        inFlight -= 1
    }
}
