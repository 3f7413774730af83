import ServiceLifecycle

/// A client that runs as a `Service`: `run()` keeps it open until graceful shutdown, then closes
/// it. A service group shuts its services down in reverse order, so a client listed before the
/// services that use it closes after they finished.
public protocol ClosesOnShutdown: Service {
    /// Closes the client; later calls fail with its "closed" error.
    func shutdown() async
}

extension ClosesOnShutdown {
    public func run() async throws {
        // Cancellation ends the wait too; the client is closed either way.
        try? await gracefulShutdown()
        await shutdown()
    }
}
