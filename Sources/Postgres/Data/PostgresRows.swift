/// The rows a statement returned, copied out of libpq in text format.
public struct PostgresRows: Sendable {
    /// Column names, in order.
    public let columns: [String]
    /// Row values in column order; nil is SQL NULL.
    let values: [[String?]]
    /// Rows the statement changed (`INSERT`/`UPDATE`/`DELETE`), from the command tag.
    public let affectedRows: Int

    init(columns: [String], values: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.values = values
        self.affectedRows = affectedRows
    }

    /// How many rows came back.
    public var count: Int { values.count }
    /// True when no row came back.
    public var isEmpty: Bool { values.isEmpty }
    /// The first row, if any.
    public var first: PostgresRow? { values.isEmpty ? nil : PostgresRow(rows: self, index: 0) }
    /// Every row, in order.
    public var rows: [PostgresRow] { values.indices.map { PostgresRow(rows: self, index: $0) } }

    /// The first column named `column`. A statement returns a handful of columns, so comparing
    /// names (short ones compare as two machine words) is cheaper than hashing the name for a
    /// dictionary: perf showed the look-up at about 5% of an older page's CPU.
    func position(of column: String) throws -> Int {
        guard let position = columns.firstIndex(of: column) else {
            throw PostgresError(code: .decodingFailed, serverMessage: "no column named \(column)")
        }
        return position
    }
}

/// One row of `PostgresRows`.
public struct PostgresRow: Sendable {
    let rows: PostgresRows
    let index: Int

    /// The raw text of a column, nil for NULL.
    public func text(_ column: String) throws -> String? {
        rows.values[index][try rows.position(of: column)]
    }

    /// Reads a non-null column as `T`.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let text = try text(column) else {
            throw PostgresError(code: .decodingFailed, serverMessage: "column \(column) is NULL")
        }
        guard let value = T(postgresText: text) else {
            throw PostgresError(code: .decodingFailed, serverMessage: "column \(column) is not a \(T.self)")
        }
        return value
    }

    /// Reads a nullable column as `T?`.
    public func decodeIfPresent<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T? {
        guard try text(column) != nil else { return nil }
        return try decode(column, as: type)
    }
}
