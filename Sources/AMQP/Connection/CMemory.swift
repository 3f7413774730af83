import CRabbitMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    import Darwin
#endif

/// Copies of what rabbitmq-c hands out, as Swift values (its buffers are reused by the next call).
enum CMemory {
    static func bytes(_ bytes: amqp_bytes_t) -> [UInt8] {
        guard let start = bytes.bytes, bytes.len > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: start, count: bytes.len))
    }

    static func string(_ bytes: amqp_bytes_t) -> String {
        String(decoding: Self.bytes(bytes), as: UTF8.self)
    }

    static func properties(_ raw: amqp_basic_properties_t) -> AMQPProperties {
        func has(_ flag: amqp_flags_t) -> Bool { raw._flags & flag != 0 }
        return AMQPProperties(
            contentType: has(CRABBITMQ_CONTENT_TYPE_FLAG) ? string(raw.content_type) : nil,
            persistent: has(CRABBITMQ_DELIVERY_MODE_FLAG) && raw.delivery_mode == 2,
            messageID: has(CRABBITMQ_MESSAGE_ID_FLAG) ? string(raw.message_id) : nil,
            type: has(CRABBITMQ_TYPE_FLAG) ? string(raw.type) : nil,
            timestamp: has(CRABBITMQ_TIMESTAMP_FLAG) ? Int64(raw.timestamp) : nil,
            correlationID: has(CRABBITMQ_CORRELATION_ID_FLAG) ? string(raw.correlation_id) : nil,
            headers: has(CRABBITMQ_HEADERS_FLAG) ? stringEntries(raw.headers) : [:]
        )
    }

    /// The entries of `table` whose values are strings (long strings or byte arrays).
    static func stringEntries(_ table: amqp_table_t) -> [String: String] {
        guard let entries = table.entries, table.num_entries > 0 else { return [:] }
        var values: [String: String] = [:]
        for index in 0..<Int(table.num_entries) {
            let entry = entries[index]
            let kind = UInt32(entry.value.kind)
            guard kind == AMQP_FIELD_KIND_UTF8.rawValue || kind == AMQP_FIELD_KIND_BYTES.rawValue else { continue }
            values[string(entry.key)] = string(entry.value.value.bytes)
        }
        return values
    }
}

/// C copies of Swift strings, bytes and tables for one call, freed when the arena goes away:
/// `amqp_bytes_t` does not copy, so what it points to must outlive the call.
final class CMemoryArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        allocations.forEach { free($0) }
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        bytes(Array(string.utf8))
    }

    func bytes(_ bytes: [UInt8]) -> amqp_bytes_t {
        guard !bytes.isEmpty, let memory = malloc(bytes.count) else { return amqp_bytes_t(len: 0, bytes: nil) }
        allocations.append(memory)
        bytes.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return amqp_bytes_t(len: bytes.count, bytes: memory)
    }

    func table(_ arguments: [String: AMQPArgument]) -> amqp_table_t {
        guard !arguments.isEmpty,
            let memory = malloc(MemoryLayout<amqp_table_entry_t>.stride * arguments.count)
        else { return amqp_table_t(num_entries: 0, entries: nil) }
        allocations.append(memory)
        let entries = memory.bindMemory(to: amqp_table_entry_t.self, capacity: arguments.count)
        for (index, (key, argument)) in arguments.sorted(by: { $0.key < $1.key }).enumerated() {
            var entry = amqp_table_entry_t()
            entry.key = bytes(key)
            switch argument {
            case .string(let value):
                entry.value.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
                entry.value.value.bytes = bytes(value)
            case .int(let value):
                entry.value.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
                entry.value.value.i64 = value
            }
            (entries + index).initialize(to: entry)
        }
        return amqp_table_t(num_entries: Int32(arguments.count), entries: entries)
    }

    func properties(_ properties: AMQPProperties) -> amqp_basic_properties_t {
        var raw = amqp_basic_properties_t()
        raw._flags = CRABBITMQ_DELIVERY_MODE_FLAG
        raw.delivery_mode = properties.persistent ? 2 : 1
        if let contentType = properties.contentType {
            raw._flags |= CRABBITMQ_CONTENT_TYPE_FLAG
            raw.content_type = bytes(contentType)
        }
        if let messageID = properties.messageID {
            raw._flags |= CRABBITMQ_MESSAGE_ID_FLAG
            raw.message_id = bytes(messageID)
        }
        if let type = properties.type {
            raw._flags |= CRABBITMQ_TYPE_FLAG
            raw.type = bytes(type)
        }
        if let timestamp = properties.timestamp {
            raw._flags |= CRABBITMQ_TIMESTAMP_FLAG
            raw.timestamp = UInt64(max(timestamp, 0))
        }
        if let correlationID = properties.correlationID {
            raw._flags |= CRABBITMQ_CORRELATION_ID_FLAG
            raw.correlation_id = bytes(correlationID)
        }
        if !properties.headers.isEmpty {
            raw._flags |= CRABBITMQ_HEADERS_FLAG
            raw.headers = table(properties.headers.mapValues { .string($0) })
        }
        return raw
    }
}
