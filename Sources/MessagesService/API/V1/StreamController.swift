import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// `GET /v1/channels/{channel_id}/stream`: the channel's changes as server-sent events, live.
///
/// The caller needs the same rights as for reading the channel; the token may come as
/// `?access_token=` for browsers' `EventSource`. A stream resumes after `Last-Event-ID` (or
/// `?since=`), a channel version: first what changed since (the changes feed), then each change as
/// it happens, with nothing missed or repeated at the seam (`ChannelStreams`). Without either it
/// starts at the channel's current version.
struct StreamController: Sendable {
    let streams: ChannelStreams
    let authenticator: Authenticator
    let rateLimiter: RateLimiter?
    let access: ChannelAccess?

    func addRoutes(to v1: RouterGroup<AppRequestContext>) {
        let caller = CallerMiddleware(authenticator: authenticator, rateLimiter: rateLimiter, acceptsQueryToken: true)
        v1.channelGroup("stream", caller: caller, access: access).get(use: stream)
    }

    @Sendable func stream(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.verifiedCaller()
        let channelID = try V1Dialect.channelID("channel_id", context)
        let since = try Self.resumePosition(request)
        let connection = context.channel
        let streams = self.streams
        let subscription: ChannelStreams.Subscription
        do {
            subscription = try streams.open(channelID: channelID, userID: user.userID) { connection.close(promise: nil) }
        } catch is ChannelStreams.TooManyStreamsForUser {
            throw APIError(
                status: .tooManyRequests, code: "resource_exhausted",
                message:
                    "this caller holds \(streams.configuration.maxStreamsPerUser) streams on this instance already; close one",
                headers: [.retryAfter: "2"]
            )
        } catch is ChannelStreams.TooManyStreams {
            throw APIError.unavailable(
                "this instance holds its maximum of \(streams.configuration.maxStreams) streams; retry (another instance may have room)",
                retryAfterSeconds: 2
            )
        }
        // However the response ends (even before its body is written), the stream is let go.
        connection.closeFuture.whenComplete { _ in streams.leave(subscription) }
        let first: MessageChanges
        do {
            // Without a position, only the channel's version is read (no change is after Int64.max).
            first = try await streams.readChanges(channelID, since ?? Int64.max, streams.configuration.batch)
            if let since, since > first.channelVersion {
                throw APIError.reloadRequired(
                    "Last-Event-ID \(since) is ahead of this channel's version \(first.channelVersion): "
                        + "reload the newest page and stream from its channel version"
                )
            }
        } catch {
            streams.leave(subscription)
            throw error
        }
        let start = since ?? first.channelVersion
        // Access is checked again before each batch (the pod's membership cache answers, exact
        // within its stated staleness), so a member removed while streaming stops receiving.
        let mayRead: (@Sendable () async throws -> Bool)? =
            if let access, access.mode == .members {
                { try await access.role(of: user.userID, in: channelID) != nil }
            } else {
                nil
            }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-store"
        // Proxies built on nginx (Kong) pass the events on as they come instead of buffering them.
        headers[.accelBuffering] = "no"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                defer { streams.leave(subscription) }
                try await withGracefulShutdownHandler {
                    try await streams.send(subscription, first: first, after: start, to: &writer, mayRead: mayRead)
                } onGracefulShutdown: {
                    streams.end(subscription)
                }
                try await writer.finish(nil)
            }
        )
    }

    /// `Last-Event-ID` (what an `EventSource` sends when it reconnects), else `?since=`; nil for
    /// neither.
    static func resumePosition(_ request: Request) throws -> Int64? {
        if let header = request.headers[.lastEventID] {
            return try V1Dialect.channelVersion(header.trimmingCharacters(in: .whitespaces), field: "Last-Event-ID")
        }
        return try request.uri.queryParameters.get("since").map { try V1Dialect.channelVersion($0, field: "since") }
    }
}

extension HTTPField.Name {
    static let lastEventID = Self("Last-Event-ID")!
    static let accelBuffering = Self("X-Accel-Buffering")!
}
