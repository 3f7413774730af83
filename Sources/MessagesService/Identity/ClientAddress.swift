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

    func address(of request: Request, context: AppRequestContext) -> String {
        let peer = context.remoteAddress?.ipAddress ?? "unknown"
        guard trustedProxyHops > 0 else { return peer }
        let forwarded = request.headers[values: .xForwardedFor]
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard forwarded.count >= trustedProxyHops else { return peer }
        let candidate = forwarded[forwarded.count - trustedProxyHops]
        return Self.looksLikeIPAddress(candidate) ? candidate.lowercased() : peer
    }

    /// An IPv4 or IPv6 literal: what a proxy writes; anything else is not used as a key.
    private static func looksLikeIPAddress(_ text: String) -> Bool {
        (2...45).contains(text.utf8.count)
            && text.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit || $0 == "." || $0 == ":" }
    }
}
