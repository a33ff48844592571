// The queue of writes waiting for the write budget: arrival order, lazy removal, and a bound
// on what it stores however many writes are queued and dropped.

import Testing
@testable import BlockISCSI

@Suite("Session: admission queue")
struct AdmissionQueueTests {
    @Test("Writes come out in arrival order; removed ones are skipped")
    func arrivalOrder() {
        var queue = AdmissionQueue()
        for id in 1...5 { queue.append(taskID: UInt64(id), initiatorTaskTag: UInt32(100 + id)) }
        queue.remove(taskID: 1)
        queue.remove(taskID: 3)
        var seen: [UInt32] = []
        while let (taskID, itt) = queue.first() {
            seen.append(itt)
            queue.remove(taskID: taskID)
        }
        #expect(seen == [102, 104, 105])
        #expect(queue.isEmpty && queue.storedCount == 0)
    }

    @Test("A write queued and dropped a million times behind one that waits leaves the queue small")
    func storageBounded() {
        var queue = AdmissionQueue()
        queue.append(taskID: 0, initiatorTaskTag: 7)
        for id in 1...1_000_000 {
            queue.append(taskID: UInt64(id), initiatorTaskTag: 8)
            queue.remove(taskID: UInt64(id))
            #expect(queue.storedCount <= 2 * queue.count + AdmissionQueue.compactionSlack + 1)
        }
        #expect(queue.first()?.initiatorTaskTag == 7, "the oldest write keeps its place")
    }
}
