// Writes waiting for a connection's write budget, in arrival order.
//
// Invariants:
// - Every operation is O(1) amortized: removal is lazy (the entry stays in `order` and is
//   skipped), and stale entries are compacted away once they outnumber the live ones.
// - `order` holds at most 2 * waiting + `compactionSlack` entries, so a peer that queues and
//   aborts writes forever cannot grow it.
// - Entries are task ids, unique per connection, so a reused initiator task tag never
//   inherits an older task's place.

import DequeModule

struct AdmissionQueue {
    private var order = Deque<UInt64>()
    private var waiting: [UInt64: UInt32] = [:]
    static let compactionSlack = 16

    var isEmpty: Bool { waiting.isEmpty }
    var count: Int { waiting.count }
    /// Entries held, stale ones included (bounded, see the invariants).
    var storedCount: Int { order.count }

    mutating func append(taskID: UInt64, initiatorTaskTag: UInt32) {
        guard waiting.updateValue(initiatorTaskTag, forKey: taskID) == nil else { return }
        order.append(taskID)
    }

    func contains(taskID: UInt64) -> Bool { waiting[taskID] != nil }

    mutating func remove(taskID: UInt64) {
        guard waiting.removeValue(forKey: taskID) != nil else { return }
        if order.count > 2 * waiting.count + Self.compactionSlack {
            order = Deque(order.filter { waiting[$0] != nil })
        }
        precondition(order.count <= 2 * waiting.count + Self.compactionSlack + 1, "admission queue bounded")
    }

    /// The oldest waiting write.
    mutating func first() -> (taskID: UInt64, initiatorTaskTag: UInt32)? {
        // Bounded by the stored entries: each turn drops one stale entry.
        while let taskID = order.first {
            if let itt = waiting[taskID] { return (taskID, itt) }
            order.removeFirst()
        }
        return nil
    }
}
