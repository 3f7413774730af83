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

/// Where a column sits in a result, found once by name (`PostgresRow.column(_:)`) and then used
/// for every row: a page of 51 rows and 18 columns otherwise searches the names 900 times.
public struct PostgresColumn: Sendable {
    let position: Int
    let name: String
}

/// One row of `PostgresRows`.
public struct PostgresRow: Sendable {
    let rows: PostgresRows
    let index: Int

    /// The column named `name`, valid for every row of the same result.
    public func column(_ name: String) throws -> PostgresColumn {
        PostgresColumn(position: try rows.position(of: name), name: name)
    }

    /// The raw text of a column, nil for NULL.
    public func text(_ column: String) throws -> String? {
        text(try self.column(column))
    }

    /// Reads a non-null column as `T`.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        try decode(try self.column(column), as: type)
    }

    /// Reads a nullable column as `T?`.
    public func decodeIfPresent<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T? {
        try decodeIfPresent(try self.column(column), as: type)
    }

    /// The raw text of a column found before, nil for NULL.
    public func text(_ column: PostgresColumn) -> String? {
        rows.values[index][column.position]
    }

    /// Reads a non-null column found before as `T`.
    public func decode<T: PostgresDecodable>(_ column: PostgresColumn, as type: T.Type = T.self) throws -> T {
        guard let text = text(column) else {
            throw PostgresError(code: .decodingFailed, serverMessage: "column \(column.name) is NULL")
        }
        guard let value = T(postgresText: text) else {
            throw PostgresError(code: .decodingFailed, serverMessage: "column \(column.name) is not a \(T.self)")
        }
        return value
    }

    /// Reads a nullable column found before as `T?`.
    public func decodeIfPresent<T: PostgresDecodable>(_ column: PostgresColumn, as type: T.Type = T.self) throws -> T? {
        guard text(column) != nil else { return nil }
        return try decode(column, as: type)
    }
}
