import Logging
import Pooling
import Testing

/// A client's own error, as `PostgresError` and `RedisError` are.
struct ClientError: PoolErrorConvertible, Equatable {
    let refusal: PoolError

    init(_ refusal: PoolError) {
        self.refusal = refusal
    }
}

@Suite struct BlockingTests {
    @Test func theExecutorRunsCallsUntilItIsShutDown() async throws {
        let executor = BlockingExecutor(threadCount: 1)
        #expect(try await executor.run { 6 * 7 } == 42)
        await #expect(throws: ConnectFailed()) { try await executor.run { throw ConnectFailed() } }
        await executor.shutdown()
        await #expect(throws: (any Error).self) { try await executor.run { 1 } }
    }

    @Test func theBlockingPoolThrowsItsRefusalsAsTheClientsError() async throws {
        let server = FakeServer()
        let pool = BlockingConnectionPool<FakeConnection, ClientError>(
            capacity: 1, acquireTimeout: .milliseconds(20), logger: Logger(label: "test")
        ) {
            try server.connect()
        }
        let id = try await pool.withConnection { lease in try await lease.run { $0.id } }
        #expect(id == 1)
        // A second lease while the only connection is leased: the pool times out.
        await #expect(throws: ClientError(.timeout)) {
            try await pool.withConnection { _ in try await pool.withConnection { _ in } }
        }
        // The connection's own errors pass unchanged.
        await #expect(throws: ConnectFailed()) {
            try await pool.withConnection { lease in try await lease.run { _ in throw ConnectFailed() } }
        }
        #expect(await pool.statistics().timeouts == 1)
        await pool.shutdown()
        await #expect(throws: ClientError(.closed)) { try await pool.withConnection { _ in } }
    }
}
