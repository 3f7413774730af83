import HummingbirdCore
import Logging
import NIOCore

/// HTTP/1.1 connections whose handling runs on the connection's own event loop.
///
/// Hummingbird serves each connection in a task on Swift's global executor, so every request
/// crosses threads twice (the event loop hands the request to the task, the task hands the response
/// back), and on a 2-core pod those hand-offs were the largest cost of a cached read (perf: context
/// switches and futex wake-ups). With the event loop as the task's executor preference, reading the
/// request, running the handlers (default actors they call included) and writing the response
/// happen on one thread, and a Redis call uses a connection of the same loop; only a blocking C
/// call leaves it, for its pool's thread.
///
/// Handlers must therefore never block: every blocking C call runs on a `BlockingExecutor`
/// (closing a dropped libpq connection included).
@available(macOS 15, *)
struct EventLoopPinnedChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value

    let inner: Inner

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await inner.handle(value: value, logger: logger)
        }
    }
}

/// An event loop as a task executor: jobs run in the loop's own queue, in order. Each job's
/// closure holds the executor, so it outlives every job enqueued on it.
@available(macOS 15, *)
final class EventLoopTaskExecutor: TaskExecutor {
    private let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
