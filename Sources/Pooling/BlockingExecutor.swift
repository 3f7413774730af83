import NIOPosix

/// Threads of their own for blocking C calls (libpq, rabbitmq-c): `run` moves a call onto
/// one of them, so it never blocks the caller's thread or an event loop.
///
/// With one thread, calls run one at a time in the order they were made, which is what a library
/// that is not thread-safe needs (rabbitmq-c, a dedicated libpq connection).
package final class BlockingExecutor: Sendable {
    private let threads: NIOThreadPool

    /// Starts `threadCount` threads.
    package init(threadCount: Int) {
        precondition(threadCount > 0, "an executor needs a thread")
        threads = NIOThreadPool(numberOfThreads: threadCount)
        threads.start()
    }

    /// Runs `call` on one of the threads and returns what it returned; throws what it threw, or
    /// an error of its own once the executor was shut down.
    package func run<T: Sendable>(_ call: @escaping @Sendable () throws -> T) async throws -> T {
        try await threads.runIfActive(call)
    }

    /// Waits for the calls already running, then stops the threads; later calls throw.
    package func shutdown() async {
        try? await threads.shutdownGracefully()
    }
}
