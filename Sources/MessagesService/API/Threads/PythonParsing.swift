import Foundation

/// The parsers the original INF326 service (Python, FastAPI, pydantic v2) applied to its inputs,
/// rebuilt so that every value it accepted is accepted here, with the same meaning, and every value
/// it refused is refused with the same error.
enum PythonParsing {
    /// `uuid.UUID(text)`: `urn:` and `uuid:` removed anywhere, braces stripped at both ends, every
    /// dash removed; then 32 characters read by `int(..., 16)`. The error is Python's message.
    static func uuid(_ text: String) -> Result<UUID, PythonValueError> {
        // Code point by code point, as Python's str methods work (a combining mark after `-` must
        // not hide the dash).
        var scalars = removing("uuid:", from: removing("urn:", from: Array(text.unicodeScalars)))
        while scalars.first == "{" || scalars.first == "}" { scalars.removeFirst() }
        while scalars.last == "{" || scalars.last == "}" { scalars.removeLast() }
        scalars.removeAll { $0 == "-" }
        let hex = String(String.UnicodeScalarView(scalars))
        guard scalars.count == 32 else {
            return .failure(PythonValueError(message: "badly formed hexadecimal UUID string"))
        }
        guard let digits = hexadecimalDigits(hex) else {
            return .failure(PythonValueError(message: "invalid literal for int() with base 16: \(repr(hex))"))
        }
        // At most 32 digits: the value fits 128 bits; fewer (after a sign, `0x` or `_`) pad on the left.
        let padded = [UInt8](repeating: 0, count: 32 - digits.count) + digits
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<16 { bytes[index] = padded[2 * index] << 4 | padded[2 * index + 1] }
        return .success(
            UUID(
                uuid: (
                    bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9],
                    bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
                )
            )
        )
    }

    /// `str.replace(needle, "")`: every occurrence, left to right, without overlaps.
    private static func removing(_ needle: String, from scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        let pattern = Array(needle.unicodeScalars)
        var result: [Unicode.Scalar] = []
        var index = 0
        while index < scalars.count {
            if scalars[index...].starts(with: pattern) {
                index += pattern.count
            } else {
                result.append(scalars[index])
                index += 1
            }
        }
        return result
    }

    /// The hex digit values `int(text, 16)` reads, or nil where it raises: Unicode white space and
    /// decimal digits count as their ASCII forms; then optional spaces, `+`/`-`, `0x`, digits with
    /// single underscores between them, optional spaces.
    private static func hexadecimalDigits(_ text: String) -> [UInt8]? {
        var ascii: [UInt8] = []
        for scalar in text.unicodeScalars {
            if scalar.properties.isWhitespace {
                ascii.append(UInt8(ascii: " "))
            } else if scalar.properties.numericType == .decimal, let value = scalar.properties.numericValue {
                ascii.append(UInt8(ascii: "0") + UInt8(value))
            } else if scalar.isASCII {
                ascii.append(UInt8(scalar.value))
            } else {
                return nil
            }
        }
        var rest = ascii[...]
        while rest.first == UInt8(ascii: " ") { rest.removeFirst() }
        while rest.last == UInt8(ascii: " ") { rest.removeLast() }
        if rest.first == UInt8(ascii: "+") || rest.first == UInt8(ascii: "-") { rest.removeFirst() }
        var afterPrefix = false
        if rest.count >= 2, rest.first == UInt8(ascii: "0"), rest.dropFirst().first.map({ $0 | 0x20 }) == UInt8(ascii: "x") {
            rest.removeFirst(2)
            afterPrefix = true
        }
        var digits: [UInt8] = []
        var previousWasUnderscore = false
        for byte in rest {
            if byte == UInt8(ascii: "_") {
                // One underscore between digits, or right after `0x`.
                guard !previousWasUnderscore, !digits.isEmpty || afterPrefix else { return nil }
                previousWasUnderscore = true
                continue
            }
            guard let value = byte.hexDigitValue else { return nil }
            digits.append(value)
            previousWasUnderscore = false
        }
        guard !digits.isEmpty, !previousWasUnderscore else { return nil }
        return digits
    }

    /// Python's `repr()` of a string, as its error messages quote it.
    static func repr(_ text: String) -> String {
        let quote: Unicode.Scalar = text.contains("'") && !text.contains("\"") ? "\"" : "'"
        var result = String(quote)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case quote: result += "\\" + String(quote)
            default:
                if isPrintable(scalar) {
                    result.unicodeScalars.append(scalar)
                } else if scalar.value < 0x100 {
                    result += String(format: "\\x%02x", scalar.value)
                } else if scalar.value < 0x10000 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result += String(format: "\\U%08x", scalar.value)
                }
            }
        }
        return result + String(quote)
    }

    /// `str.isprintable()`: not a control, format, surrogate, private-use, unassigned or separator
    /// character, the ASCII space excepted.
    private static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == " " { return true }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
            .spaceSeparator:
            return false
        default:
            return true
        }
    }

    /// pydantic v2's `UUID` from a string (the Rust `uuid` crate): 32 hex digits, the hyphenated
    /// form, the hyphenated form in braces, or `urn:uuid:` and the hyphenated form; any case.
    static func pydanticUUID(_ text: String) -> UUID? {
        let utf8 = Array(text.utf8)
        let hyphenated: ArraySlice<UInt8>
        switch utf8.count {
        case 32:
            guard utf8.allSatisfy({ $0.hexDigitValue != nil }) else { return nil }
            let t = String(decoding: utf8, as: UTF8.self)
            let dashed = [
                t.prefix(8), t.dropFirst(8).prefix(4), t.dropFirst(12).prefix(4), t.dropFirst(16).prefix(4), t.dropFirst(20),
            ]
            return UUID(uuidString: dashed.joined(separator: "-"))
        case 36: hyphenated = utf8[...]
        case 38 where utf8.first == UInt8(ascii: "{") && utf8.last == UInt8(ascii: "}"): hyphenated = utf8.dropFirst().dropLast()
        case 45 where utf8.starts(with: "urn:uuid:".utf8): hyphenated = utf8.dropFirst(9)
        default: return nil
        }
        return UUID(uuidString: String(decoding: hyphenated, as: UTF8.self))
    }

    /// What pydantic v2 made of a query string it validates as `int`.
    enum LaxInteger: Equatable {
        /// A number, held at the bounds of `Int` when it is bigger (its range check fails alike).
        case value(Int)
        /// Not an integer: `int_parsing`.
        case invalid
        /// More than 4300 characters: `int_parsing_size`.
        case tooLong
    }

    /// pydantic v2's lax `int` from a string: white space trimmed, an optional sign, ASCII digits,
    /// single underscores between digits, and a fraction of zeros only (`2.0`, `5.`).
    static func laxInteger(_ text: String) -> LaxInteger {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count <= 4300 else { return .tooLong }
        if let value = integer(trimmed) { return .value(value) }
        if let dot = trimmed.firstIndex(of: "."), trimmed[trimmed.index(after: dot)...].allSatisfy({ $0 == "0" }),
            let value = integer(trimmed[..<dot])
        {
            return .value(value)
        }
        return .invalid
    }

    /// An optional sign and digits (single underscores between them allowed), clamped to `Int`.
    private static func integer(_ text: some StringProtocol) -> Int? {
        var rest = Substring(text)
        var negative = false
        if let sign = rest.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            rest = rest.dropFirst()
        }
        guard let first = rest.first, let last = rest.last, first != "_", last != "_", !rest.contains("__") else {
            return nil
        }
        let digits = rest.filter { $0 != "_" }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            return nil
        }
        guard let magnitude = Int(digits) else { return negative ? .min : .max }
        return negative ? -magnitude : magnitude
    }
}

/// A Python `ValueError`'s message.
struct PythonValueError: Error, Equatable {
    let message: String
}
