import Logging
import NIOCore
import NIOPosix
import Pooling

/// One multiplexed Redis connection, bound to one event loop: callers' commands are pipelined on
/// it and their replies matched in order, so many requests share one socket and none holds a
/// thread while it waits.
///
/// All state is touched on `eventLoop` only (`@unchecked Sendable` for that reason); `send` hops
/// there when called from elsewhere. The connection opens on first use and again after it broke
/// or timed out.
///
/// - At most `window` calls are in flight; later ones wait their turn, up to the acquire timeout
///   (load: `poolTimeout`, which never opens a circuit breaker).
/// - Calls made while the connection opens wait for it; its failure (no TCP connection within
///   the connect timeout, or AUTH/SELECT refused or unanswered within the command timeout) fails
///   them with `connectionFailed`, an outage, and nothing reconnects until the next call.
/// - A call in flight (flushed) longer than the command timeout drops the connection and fails
///   every call in flight on it with `timeout`: a pipelined reply order cannot survive a lost
///   reply. Redis runs one command at a time, so the calls behind a slow one were waiting for it on
///   any connection. A loop too busy to read the reply in time does not count against Redis (see
///   `checkDeadlines`).
///   Calls not sent yet stay queued for the next connection.
final class RedisConnection: @unchecked Sendable {
    struct Settings: Sendable {
        var endpoint: RedisEndpoint
        var connectTimeout: Duration
        var commandTimeout: Duration
        var acquireTimeout: Duration
        /// The most calls written and not yet answered.
        var window: Int
        /// When set, the sentinels say where the primary is (`endpoint` gives only the login and
        /// the database).
        var sentinel: RedisSentinel? = nil
    }

    private enum State {
        /// No connection; the next call opens one.
        case idle
        case connecting
        /// Connected, AUTH/SELECT sent; calls wait until they succeed, so none can run in the
        /// wrong database.
        case settingUp(any Channel)
        case ready(any Channel)
        case closed
    }

    private struct Call {
        var commands: [RedisCommand]
        var promise: EventLoopPromise<[RedisValue]>
        var replies: [RedisValue] = []
        var queuedAt: NIODeadline
        /// When the call was flushed to the socket (`distantFuture` until then).
        var sentAt: NIODeadline = .distantFuture
    }

    let eventLoop: any EventLoop
    private let settings: Settings
    private let logger: Logger
    private var state = State.idle
    private var reader = RedisReplyReader()
    /// Written to the socket, in the order their replies will come.
    private var inFlight = CircularBuffer<Call>()
    /// Not written yet: the connection is not ready or the window is full.
    private var waiting = CircularBuffer<Call>()
    private var timer: Scheduled<Void>?
    /// A check found the oldest call late: at the recheck, a call sent `allowance` or more before
    /// `checkedAt` is still waiting, and times out.
    private var pendingRecheck: (checkedAt: NIODeadline, allowance: TimeAmount)?
    private var flushPending = false
    private(set) var acquireTimeouts = 0

    init(eventLoop: any EventLoop, settings: Settings, logger: Logger) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.logger = logger
    }

    /// Sends the commands in one pipelined write and completes with their replies, in order;
    /// error replies are `.error` values.
    func send(_ commands: [RedisCommand]) -> EventLoopFuture<[RedisValue]> {
        let promise = eventLoop.makePromise(of: [RedisValue].self)
        if eventLoop.inEventLoop {
            enqueue(commands, promise)
        } else {
            eventLoop.execute { self.enqueue(commands, promise) }
        }
        return promise.futureResult
    }

    /// How busy the connection is: (open, calls in flight, calls waiting, acquire timeouts so far).
    func snapshot() -> EventLoopFuture<(open: Bool, inFlight: Int, waiting: Int, timeouts: Int)> {
        eventLoop.submit {
            let open: Bool
            switch self.state {
            case .ready, .settingUp: open = true
            case .idle, .connecting, .closed: open = false
            }
            return (open, self.inFlight.count, self.waiting.count, self.acquireTimeouts)
        }
    }

    /// Fails every call with `poolClosed`, closes the socket; later calls fail the same way.
    func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            let channel: (any Channel)?
            switch self.state {
            case .ready(let open), .settingUp(let open): channel = open
            case .idle, .connecting, .closed: channel = nil
            }
            self.state = .closed
            self.timer?.cancel()
            self.timer = nil
            self.failAll(RedisError(code: .poolClosed))
            guard let channel else { return self.eventLoop.makeSucceededVoidFuture() }
            return channel.close().recover { _ in }
        }
    }

    // MARK: On the event loop

    private func enqueue(_ commands: [RedisCommand], _ promise: EventLoopPromise<[RedisValue]>) {
        let call = Call(commands: commands, promise: promise, queuedAt: .now())
        guard !commands.isEmpty else { return promise.succeed([]) }
        switch state {
        case .closed:
            promise.fail(RedisError(code: .poolClosed))
            return
        case .ready(let channel) where inFlight.count < settings.window && waiting.isEmpty:
            write(call, to: channel)
        case .idle:
            waiting.append(call)
            connect()
        case .ready, .connecting, .settingUp:
            waiting.append(call)
        }
        armTimer()
    }

    private func write(_ call: Call, to channel: any Channel) {
        var buffer = channel.allocator.buffer(capacity: call.commands.reduce(0) { $0 + $1.encodedSize })
        for command in call.commands { command.write(to: &buffer) }
        inFlight.append(call)
        channel.write(buffer, promise: nil)
        // One flush for every call written in this turn of the loop: under load many requests
        // share a syscall (and Redis reads them as one batch).
        if !flushPending {
            flushPending = true
            eventLoop.execute { self.flush() }
        }
    }

    /// Sends what was written, on the connection open now, and starts the command timeout of
    /// those calls: the time they queued behind the loop's other work is load, not Redis' delay.
    private func flush() {
        flushPending = false
        let channel: any Channel
        switch state {
        case .ready(let open), .settingUp(let open): channel = open
        case .idle, .connecting, .closed: return
        }
        let now = NIODeadline.now()
        var index = inFlight.endIndex
        while index > inFlight.startIndex {
            index = inFlight.index(before: index)
            guard inFlight[index].sentAt == .distantFuture else { break }
            inFlight[index].sentAt = now
        }
        channel.flush()
    }

    /// Opens a connection unless one is open or opening: one attempt at a time, so no reply can
    /// reach a caller of another connection.
    private func connect() {
        guard case .idle = state else { return }
        state = .connecting
        let settings = self.settings
        primaryAddress()
            .flatMap { host, port in
                ClientBootstrap(group: self.eventLoop)
                    .connectTimeout(.nanoseconds(settings.connectTimeout.totalNanoseconds))
                    .channelOption(.socketOption(.so_keepalive), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(RedisReplyHandler(connection: self))
                        }
                    }
                    .connect(host: host, port: port)
            }
            .whenComplete { result in
                switch result {
                case .success(let channel): self.connected(channel)
                case .failure(let error as RedisError): self.connectFailed(error)
                case .failure(let error): self.connectFailed(RedisError(code: .connectionFailed, serverMessage: "\(error)"))
                }
            }
    }

    /// The endpoint's address, or the primary's as the first sentinel that answers names it.
    private func primaryAddress() -> EventLoopFuture<(String, Int)> {
        guard let sentinel = settings.sentinel else {
            return eventLoop.makeSucceededFuture((settings.endpoint.host, settings.endpoint.port))
        }
        return primaryAddress(askingFrom: 0, of: sentinel)
    }

    /// Asks the sentinel at `index`, then the next ones until one names the primary.
    private func primaryAddress(askingFrom index: Int, of sentinel: RedisSentinel) -> EventLoopFuture<(String, Int)> {
        guard index < sentinel.sentinels.count else {
            return eventLoop.makeFailedFuture(
                RedisError(code: .connectionFailed, serverMessage: "no sentinel named a primary for \(sentinel.primaryName)"))
        }
        let address = sentinel.sentinels[index]
        var settings = self.settings
        settings.endpoint = RedisEndpoint(host: address.host, port: address.port)
        settings.sentinel = nil
        let asking = RedisConnection(eventLoop: eventLoop, settings: settings, logger: logger)
        return asking.send([RedisCommand("SENTINEL", "get-master-addr-by-name", sentinel.primaryName)])
            .flatMapThrowing { replies -> (String, Int) in
                guard let pair = replies.first?.array, pair.count == 2, let host = pair[0].string,
                    let port = pair[1].string.flatMap({ Int($0) })
                else {
                    throw RedisError(code: .unexpectedReply, serverMessage: "the sentinel does not know the primary")
                }
                return (host, port)
            }
            .always { _ in _ = asking.close() }
            .flatMapError { error in
                self.logger.warning(
                    "Redis sentinel did not answer",
                    metadata: ["sentinel": "\(address.host):\(address.port)", "error": "\(error)"])
                return self.primaryAddress(askingFrom: index + 1, of: sentinel)
            }
    }

    private func connected(_ channel: any Channel) {
        guard case .connecting = state else {
            // Closed while connecting.
            channel.close(promise: nil)
            return
        }
        reader = RedisReplyReader()
        // Through sentinels, ROLE last: the address they gave may be a primary demoted since.
        let checksRole = settings.sentinel != nil
        let setup = settings.endpoint.setupCommands + (checksRole ? [RedisCommand("ROLE")] : [])
        guard !setup.isEmpty else { return becomeReady(channel) }
        state = .settingUp(channel)
        let promise = eventLoop.makePromise(of: [RedisValue].self)
        write(Call(commands: setup, promise: promise, queuedAt: .now()), to: channel)
        armTimer()
        promise.futureResult.whenComplete { result in
            guard case .settingUp(let current) = self.state, current === channel else { return }
            switch result {
            case .success(let replies):
                if case .error(let message) = replies.first(where: { if case .error = $0 { true } else { false } }) {
                    self.drop(channel)
                    self.connectFailed(RedisError(code: .connectionFailed, serverMessage: message))
                } else if checksRole, replies.last?.array?.first?.string != "master" {
                    let role = replies.last?.array?.first?.string ?? "server of unknown role"
                    self.drop(channel)
                    self.connectFailed(
                        RedisError(code: .connectionFailed, serverMessage: "the server is a \(role), not the primary"))
                } else {
                    self.becomeReady(channel)
                }
            case .failure:
                // The connection broke or timed out during setup: `lost` already failed the calls.
                break
            }
        }
    }

    private func becomeReady(_ channel: any Channel) {
        state = .ready(channel)
        writeWaiting(to: channel)
    }

    private func writeWaiting(to channel: any Channel) {
        while inFlight.count < settings.window, let call = waiting.popFirst() {
            write(call, to: channel)
        }
    }

    /// The connection could not be opened: the calls waiting for it fail, since the next one might
    /// find it reachable again.
    private func connectFailed(_ error: RedisError) {
        if case .closed = state { return }
        state = .idle
        logger.warning("Redis connection failed", metadata: ["error": "\(error.debugDescription)"])
        failAll(error)
    }

    /// Replies arrived on `channel`: each completes the oldest call in flight once all of that
    /// call's replies are in.
    fileprivate func received(_ bytes: ByteBuffer, on channel: any Channel) {
        guard isCurrent(channel) else { return }
        var demoted = false
        do throws(RedisError) {
            try reader.feed(bytes)
            while let reply = try reader.next() {
                guard !inFlight.isEmpty else {
                    throw RedisError(code: .connectionLost, serverMessage: "a reply nobody asked for")
                }
                if case .error(let message) = reply, message.hasPrefix("READONLY") { demoted = true }
                inFlight[inFlight.startIndex].replies.append(reply)
                if inFlight[inFlight.startIndex].replies.count == inFlight[inFlight.startIndex].commands.count {
                    // Out of the queue before the promise runs its callbacks, which may send more.
                    let call = inFlight.removeFirst()
                    call.promise.succeed(call.replies)
                    guard isCurrent(channel) else { return }
                }
            }
        } catch {
            lost(channel, error)
            return
        }
        if demoted {
            // The server became a replica (a failover): the next connection finds the primary.
            return lost(channel, RedisError(code: .connectionLost, serverMessage: "the server is a replica now"))
        }
        if case .ready(let open) = state { writeWaiting(to: open) }
    }

    /// The socket closed or failed: calls in flight fail, calls not sent yet go to a new connection.
    fileprivate func lost(_ channel: any Channel, _ error: RedisError) {
        guard isCurrent(channel) else { return }
        if case .settingUp = state {
            // AUTH/SELECT did not complete: the connection never opened.
            drop(channel)
            return connectFailed(RedisError(code: .connectionFailed, serverMessage: error.debugDescription))
        }
        drop(channel)
        failInFlight(error)
        if !waiting.isEmpty { connect() }
    }

    private func drop(_ channel: any Channel) {
        state = .idle
        channel.close(promise: nil)
    }

    private func isCurrent(_ channel: any Channel) -> Bool {
        switch state {
        case .ready(let current), .settingUp(let current): current === channel
        case .idle, .connecting, .closed: false
        }
    }

    private func failInFlight(_ error: RedisError) {
        while let call = inFlight.popFirst() { call.promise.fail(error) }
    }

    private func failAll(_ error: RedisError) {
        failInFlight(error)
        while let call = waiting.popFirst() { call.promise.fail(error) }
    }

    /// One timer per connection, running while calls are queued, checks both deadlines a quarter
    /// of the shorter one apart, rather than a timer per call.
    private func armTimer(in delay: TimeAmount? = nil) {
        guard timer == nil else { return }
        let period = min(settings.commandTimeout, settings.acquireTimeout) / 4
        let due = NIODeadline.now() + (delay ?? .nanoseconds(max(period.totalNanoseconds, 1_000_000)))
        timer = eventLoop.scheduleTask(deadline: due) {
            self.timer = nil
            self.checkDeadlines(due: due)
        }
    }

    /// Times out the oldest call in flight when Redis, not this event loop, kept its reply.
    ///
    /// A busy loop reads its sockets late, so a reply can be in the socket, unread, past the
    /// deadline. Two allowances keep that from counting against Redis: the time this check itself
    /// ran late (how far behind the loop is), and one recheck 1 ms later, which a loop that ran out
    /// of work by then makes after reading its sockets. The recheck holds the calls of the first
    /// check to their deadline: a Redis that answers slowly, one reply per recheck, still times out.
    private func checkDeadlines(due: NIODeadline) {
        let now = NIODeadline.now()
        var recheck: TimeAmount?
        let timeout = timeAmount(settings.commandTimeout)
        let lateness = max(now - due, .zero)
        if let overdue = pendingRecheck {
            pendingRecheck = nil
            if let oldest = inFlight.first, oldest.sentAt != .distantFuture,
                overdue.checkedAt - oldest.sentAt > overdue.allowance
            {
                switch state {
                case .ready(let channel), .settingUp(let channel):
                    lost(channel, RedisError(code: .timeout, serverMessage: "no reply within the command timeout"))
                case .idle, .connecting, .closed:
                    break
                }
            }
        } else if let oldest = inFlight.first, oldest.sentAt != .distantFuture, now - oldest.sentAt > timeout + lateness {
            pendingRecheck = (checkedAt: now, allowance: timeout + lateness)
            recheck = .milliseconds(1)
        }
        // Only a full window is load; calls waiting for the connection to open end with it.
        let acquireTimeout = timeAmount(settings.acquireTimeout)
        while case .ready = state, let first = waiting.first, now - first.queuedAt > acquireTimeout {
            waiting.removeFirst().promise.fail(RedisError(code: .poolTimeout))
            acquireTimeouts += 1
        }
        if !inFlight.isEmpty || !waiting.isEmpty { armTimer(in: recheck) }
    }

    private func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(duration.totalNanoseconds)
    }
}

/// Hands what a connection's socket reads, and its closing, to the `RedisConnection`.
private final class RedisReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let connection: RedisConnection

    init(connection: RedisConnection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.received(unwrapInboundIn(data), on: context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.lost(context.channel, RedisError(code: .connectionLost, serverMessage: "the server closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.lost(context.channel, RedisError(code: .connectionLost, serverMessage: "\(error)"))
        context.close(promise: nil)
    }
}

extension RedisEndpoint {
    /// AUTH and SELECT, as the endpoint asks, sent first on every new connection.
    var setupCommands: [RedisCommand] {
        var setup: [RedisCommand] = []
        if let password {
            setup.append(username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password))
        }
        if database != 0 {
            setup.append(RedisCommand("SELECT", database))
        }
        return setup
    }
}
