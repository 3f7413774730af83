import CLibPQ
import Pooling

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    import Darwin
#endif

/// One libpq connection.
///
/// `@unchecked Sendable` because libpq connections must never be used by two threads at once: the
/// pool lends each connection to one caller at a time and every call runs on one thread-pool
/// thread for its whole duration, so no two threads ever touch `handle` together.
final class PostgresConnection: PooledConnection, @unchecked Sendable {
    private var handle: OpaquePointer?
    /// The statements this session has prepared, by their text: each is parsed and planned once
    /// per connection, then only executed (`PQexecPrepared`), which saves the server the parse
    /// and plan of every call. Bounded, since a caller could build statement texts on the fly.
    private var prepared: [String: String] = [:]
    private static let maxPrepared = 256
    /// Through a transaction pooler nothing is prepared: the next transaction may run on
    /// another server connection, which does not know the name.
    private let preparesStatements: Bool

    private init(handle: OpaquePointer, preparesStatements: Bool) {
        self.handle = handle
        self.preparesStatements = preparesStatements
    }

    deinit {
        // The pool closes every connection it drops; this only catches a pool released without
        // `shutdown()`, where leaking the socket would be worse than closing it late.
        close()
    }

    /// Opens a connection (blocking). `url` is a libpq connection URI or keyword string; the other
    /// settings override what it says. `transactionPooling`: see `PostgresClient.Configuration`.
    static func connect(url: String, settings: [(String, String)], transactionPooling: Bool = false) throws
        -> PostgresConnection
    {
        // expand_dbname = 1: the first "dbname" value is read as a full connection string, and the
        // entries after it override what it sets.
        let entries = [("dbname", url)] + settings
        let keywords = entries.map { strdup($0.0) }
        let values = entries.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let keywordPointers = keywords.map { UnsafePointer($0) } + [nil]
        let valuePointers = values.map { UnsafePointer($0) } + [nil]
        guard let handle = PQconnectdbParams(keywordPointers, valuePointers, 1) else {
            throw PostgresError(code: .connectionFailed, serverMessage: "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle))
            PQfinish(handle)
            throw PostgresError(code: .connectionFailed, serverMessage: message)
        }
        // libpq prints server NOTICEs to stderr by default; they are expected (e.g. "relation
        // already exists, skipping") and must not pollute the service's structured logs.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        if transactionPooling {
            // The time zone cannot be sent through the pooler; statements read a time without an
            // offset as UTC, so the server must already be in UTC (the pooler reports its setting).
            let timeZone = PQparameterStatus(handle, "TimeZone").map { String(cString: $0) } ?? "unknown"
            let utc = ["UTC", "UCT", "GMT", "GMT0", "Zulu", "Universal", "Greenwich"]
            guard (utc + utc.map { "Etc/" + $0 }).contains(timeZone) else {
                PQfinish(handle)
                throw PostgresError(
                    code: .connectionFailed,
                    serverMessage:
                        "through a transaction pooler the server's TimeZone must be UTC, not \(timeZone) "
                        + "(ALTER ROLE <user> SET timezone = 'UTC')")
            }
        }
        return PostgresConnection(handle: handle, preparesStatements: !transactionPooling)
    }

    /// True when the connection can still be used for another statement.
    var isUsable: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// True when the connection is usable and outside any transaction, as the pool expects it back.
    var isReusable: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK && PQtransactionStatus(handle) == PQTRANS_IDLE
    }

    /// Runs one statement with text-format parameters `$1...` (blocking) and copies the result out.
    /// The statement is prepared on this connection the first time it runs here.
    func execute(_ sql: String, _ parameters: [String?]) throws -> PostgresRows {
        guard let handle else { throw PostgresError(code: .connectionLost, serverMessage: "connection is closed") }
        let copies = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { UnsafePointer($0) }
        guard let name = try preparedName(of: sql, parameterCount: Int32(pointers.count), on: handle) else {
            let result = PQexecParams(handle, sql, Int32(pointers.count), nil, pointers, nil, nil, 0)
            defer { PQclear(result) }
            return try Self.rows(of: result, connection: handle)
        }
        let result = PQexecPrepared(handle, name, Int32(pointers.count), pointers, nil, nil, 0)
        defer { PQclear(result) }
        return try Self.rows(of: result, connection: handle)
    }

    /// The name `sql` is prepared under on this connection, preparing it first if needed; nil
    /// once this connection holds as many prepared statements as it keeps (then the statement
    /// runs unprepared).
    private func preparedName(of sql: String, parameterCount: Int32, on handle: OpaquePointer) throws -> String? {
        if let name = prepared[sql] { return name }
        guard preparesStatements, prepared.count < Self.maxPrepared else { return nil }
        let name = "s\(prepared.count)"
        let result = PQprepare(handle, name, sql, parameterCount, nil)
        defer { PQclear(result) }
        _ = try Self.rows(of: result, connection: handle)
        prepared[sql] = name
        return name
    }

    /// Runs a script of one or more statements without parameters (blocking), e.g. a migration.
    func executeScript(_ sql: String) throws {
        guard let handle else { throw PostgresError(code: .connectionLost, serverMessage: "connection is closed") }
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        _ = try Self.rows(of: result, connection: handle)
    }

    /// Waits up to `timeout` (blocking) for notifications on the channels this connection LISTENs
    /// to, and returns their channel names; empty when none came.
    func waitForNotifications(timeout: Duration) throws -> [PostgresNotification] {
        guard let handle else { throw PostgresError(code: .connectionLost, serverMessage: "connection is closed") }
        var notifications = Self.takeNotifications(handle)
        guard notifications.isEmpty else { return notifications }
        // Never negative: poll() waits forever on a negative timeout.
        let milliseconds = max(0, timeout.totalMilliseconds)
        var socket = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        guard socket.fd >= 0 else { throw PostgresError(code: .connectionLost, serverMessage: "connection has no socket") }
        if poll(&socket, 1, Int32(clamping: milliseconds)) > 0 {
            guard PQconsumeInput(handle) == 1 else {
                throw PostgresError(code: .connectionLost, serverMessage: String(cString: PQerrorMessage(handle)))
            }
            notifications = Self.takeNotifications(handle)
        }
        return notifications
    }

    private static func takeNotifications(_ handle: OpaquePointer) -> [PostgresNotification] {
        var notifications: [PostgresNotification] = []
        while let notification = PQnotifies(handle) {
            notifications.append(
                PostgresNotification(
                    channel: String(cString: notification.pointee.relname),
                    payload: notification.pointee.extra.map { String(cString: $0) } ?? ""
                ))
            PQfreemem(notification)
        }
        return notifications
    }

    /// Closes the connection; safe to call more than once.
    func close() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// Copies a result into Swift values, or throws the error it carries.
    private static func rows(of result: OpaquePointer?, connection: OpaquePointer) throws -> PostgresRows {
        guard let result else {
            throw PostgresError(code: .connectionLost, serverMessage: String(cString: PQerrorMessage(connection)))
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PostgresRows(columns: [], values: [], affectedRows: affectedRows(of: result))
        case PGRES_TUPLES_OK:
            let columnCount = PQnfields(result)
            let rowCount = PQntuples(result)
            let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
            var values: [[String?]] = []
            values.reserveCapacity(Int(rowCount))
            for row in 0..<rowCount {
                values.append(
                    (0..<columnCount).map { column in
                        PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
                    }
                )
            }
            return PostgresRows(columns: columns, values: values, affectedRows: Int(rowCount))
        default:
            let message = String(cString: PQresultErrorMessage(result))
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let lost = PQstatus(connection) != CONNECTION_OK
            throw PostgresError(code: lost ? .connectionLost : .queryFailed, sqlState: sqlState, serverMessage: message)
        }
    }

    private static func affectedRows(of result: OpaquePointer) -> Int {
        guard let tuples = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: tuples)) ?? 0
    }
}
