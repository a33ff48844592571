// A Swift TaskExecutor that runs jobs on a NIO event loop. Commands of a connection run as
// tasks that prefer their channel's event loop, so executing a command and answering it
// never hops threads (the engine's blocking work is short: page-cache writes and reads).

import NIOCore

final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        eventLoop.execute {
            unowned.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
