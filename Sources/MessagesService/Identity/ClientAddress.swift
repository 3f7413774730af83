import Hummingbird
import NIOCore

/// Where a request comes from, for the rate limit of requests without a verified identity.
///
/// With `trustedProxyHops` 0 the peer is the client. Behind proxies that each append the address
/// they received from to `X-Forwarded-For` (Kong does), the client is the entry the outermost
/// trusted proxy wrote: `hops` from the right. Entries left of it are the client's own words and
/// are never used.
struct ClientAddressResolver: Sendable {
    let trustedProxyHops: Int

    /// The client's address as a rate-limit key: an IPv4 address, or the /64 network of an IPv6
    /// one (a single host is handed a whole /64 and could otherwise make up addresses).
    func address(of request: Request, peer: SocketAddress?) -> String {
        Self.network(of: clientAddress(of: request, peer: peer))
    }

    private func clientAddress(of request: Request, peer: SocketAddress?) -> String {
        let peer = peer?.ipAddress ?? "unknown"
        guard trustedProxyHops > 0 else { return peer }
        let forwarded = request.headers[values: .xForwardedFor]
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard forwarded.count >= trustedProxyHops else { return peer }
        let candidate = forwarded[forwarded.count - trustedProxyHops]
        return Self.looksLikeIPAddress(candidate) ? candidate.lowercased() : peer
    }

    /// `2001:db8:1:2::/64` for any IPv6 address of that network; anything else as it is.
    static func network(of address: String) -> String {
        guard address.contains(":"), !address.contains("."), let groups = expandedIPv6(address) else { return address }
        return groups.prefix(4).map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
    }

    /// The eight 16-bit groups of an IPv6 literal (`::` expanded), or nil.
    private static func expandedIPv6(_ address: String) -> [UInt16]? {
        let halves = address.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ text: String) -> [UInt16]? {
            if text.isEmpty { return [] }
            var values: [UInt16] = []
            for group in text.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.count), let value = UInt16(group, radix: 16) else { return nil }
                values.append(value)
            }
            return values
        }
        guard let head = groups(halves[0]) else { return nil }
        let tail = halves.count == 2 ? groups(halves[1]) : []
        guard let tail, halves.count == 2 ? head.count + tail.count < 8 : head.count == 8 else { return nil }
        return head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
    }

    /// An IPv4 or IPv6 literal: what a proxy writes; anything else is not used as a key.
    private static func looksLikeIPAddress(_ text: String) -> Bool {
        (2...45).contains(text.utf8.count)
            && text.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit || $0 == "." || $0 == ":" }
    }
}
