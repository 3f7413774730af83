import Foundation

/// What an attachment `path` may be: a key in the file store, or an `https://` URL on a host the
/// operator allows. Clients render paths as links and images, so anything a browser would run
/// or resolve elsewhere (`javascript:`, `data:`, `//host`, `..`) is refused at the edge.
enum AttachmentPath {
    /// True when `path` is a relative storage key or an https URL on one of `urlHosts`.
    static func isAllowed(_ path: String, urlHosts: [String]) -> Bool {
        // Browsers strip leading and trailing spaces and control characters before they read a
        // scheme, so such a path is refused rather than guessed at.
        let scalars = path.unicodeScalars
        guard let first = scalars.first, let last = scalars.last, !first.properties.isWhitespace,
            !last.properties.isWhitespace, !scalars.contains(where: isControl)
        else { return false }
        if let scheme = scheme(of: path) {
            return scheme == "https" && isAllowedURL(path, hosts: urlHosts)
        }
        return isStorageKey(path)
    }

    /// `a/b.png`, `/uploads/a.png`: no scheme, no `//` authority, no `.`/`..` segment in any
    /// spelling (percent-encoded, backslash-separated).
    ///
    /// Everything here reads Unicode scalars, not `Character`s: a combining mark after `/` or `:`
    /// makes one grapheme of both, which would hide the separator from a `Character` comparison,
    /// while browsers and file systems still see it.
    private static func isStorageKey(_ path: String) -> Bool {
        let decoded = percentDecoded(path)
        for text in [path, decoded] {
            let scalars = Array(text.unicodeScalars)
            if scalars.starts(with: ["/", "/"]) || scalars.first == "\\" || scalars.starts(with: ["/", "\\"]) {
                return false
            }
        }
        let scalars = Array(decoded.unicodeScalars)
        if scalars.contains(where: isControl) { return false }
        let segments = scalars.split(omittingEmptySubsequences: false) { $0 == "/" || $0 == "\\" }
        return !segments.contains { $0.elementsEqual([".", "."]) || $0.elementsEqual(["."]) }
    }

    /// Every valid `%XX` escape decoded, invalid ones left as they are: a browser decodes the valid
    /// ones even when others are broken, so `%2e%2e/%zz` still holds a `..` segment.
    private static func percentDecoded(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = bytes[index + 1].hexDigitValue, let low = bytes[index + 2].hexDigitValue
            {
                decoded.append(high << 4 | low)
                index += 3
            } else {
                decoded.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: decoded, as: UTF8.self)
    }

    private static func isAllowedURL(_ path: String, hosts: [String]) -> Bool {
        guard let components = URLComponents(string: path), components.scheme?.lowercased() == "https",
            components.user == nil, components.password == nil,
            let host = components.host?.lowercased(), !host.isEmpty,
            host.unicodeScalars.allSatisfy(\.isASCII)
        else { return false }
        let authority = components.port.map { "\(host):\($0)" } ?? host
        return hosts.contains(host) || hosts.contains(authority)
    }

    /// The scheme of an absolute URL (`javascript:`, `HTTPS:`), lowercased; `?` for text before a
    /// colon that is no scheme nor part of a path; nil when there is no scheme.
    private static func scheme(of path: String) -> String? {
        let scalars = Array(path.unicodeScalars)
        guard let colon = scalars.firstIndex(of: ":") else { return nil }
        let candidate = scalars[..<colon]
        // A colon after a slash is part of a key (`a/b:c`), not a scheme.
        guard let first = candidate.first, first.isASCII, first.properties.isAlphabetic,
            candidate.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || "0123456789+.-".unicodeScalars.contains($0)) })
        else {
            return candidate.contains("/") ? nil : "?"
        }
        return String(String.UnicodeScalarView(candidate)).lowercased()
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
            || [0x200E, 0x200F, 0x2028, 0x2029].contains(scalar.value) || (0x202A...0x202E).contains(scalar.value)
            || (0x2066...0x2069).contains(scalar.value)
    }
}

/// RFC 9110 media types: `type/subtype` of token characters, then `; name=value` parameters.
enum MediaType {
    static func isValid(_ text: String) -> Bool {
        let parts = text.split(separator: ";", omittingEmptySubsequences: false)
        guard let essence = parts.first else { return false }
        let halves = essence.trimmingCharacters(in: .whitespaces).split(separator: "/", omittingEmptySubsequences: false)
        guard halves.count == 2, halves.allSatisfy(isToken) else { return false }
        return parts.dropFirst().allSatisfy { parameter in
            let pair = parameter.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            guard pair.count == 2, isToken(pair[0]) else { return false }
            return isToken(pair[1]) || isQuotedString(pair[1])
        }
    }

    private static let tokenCharacters = Set(
        "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".unicodeScalars)

    private static func isToken(_ text: Substring) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy(tokenCharacters.contains)
    }

    private static func isQuotedString(_ text: Substring) -> Bool {
        guard text.count >= 2, text.first == "\"", text.last == "\"" else { return false }
        return text.dropFirst().dropLast().unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F && $0 != "\"" }
    }
}
