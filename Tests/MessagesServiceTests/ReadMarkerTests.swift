import Foundation
import HTTPTypes
import Testing

@testable import MessagesService

/// `PUT` and `GET /v1/channels/{id}/read`, against the real Postgres and the in-memory store alike.
@Suite(.tags(.servers)) struct ReadMarkerTests {
    let alice = UUID()
    let bob = UUID()

    func path(_ channel: UUID, _ rest: String) -> String {
        "/v1/channels/\(channel.lowercased)/\(rest)"
    }

    func state(_ reply: Reply) -> [Int] {
        [reply.json["last_read_seq"] as? Int ?? -1, reply.json["unread"] as? Int ?? -1]
    }

    /// Unread counts root messages of others after the marker: not replies, not tombstones, not the
    /// caller's own; the marker only moves forward, and marking again changes nothing.
    @Test(arguments: StoreBackend.allCases)
    func theMarkerOnlyMovesForwardAndUnreadCountsOthersRootMessagesAfterIt(backend: StoreBackend) async throws {
        let (alice, bob) = (self.alice, self.bob)
        try await backend.run { api in
            let channel = UUID()
            #expect(state(try await api.send(.get, path(channel, "read"), user: bob)) == [0, 0])
            var ids: [String] = []
            for index in 0..<6 {
                let created = try await api.send(
                    .post, path(channel, "messages"), user: alice, json: #"{"content":"m\#(index)"}"#)
                ids.append(try #require(created.json["id"] as? String))
            }
            // seq 7: a reply; seq 8: bob's own; message seq 2 deleted.
            _ = try await api.send(
                .post, path(channel, "messages"), user: alice, json: #"{"content":"r","parent_id":"\#(ids[0])"}"#)
            _ = try await api.send(.post, path(channel, "messages"), user: bob, json: #"{"content":"mine"}"#)
            #expect(try await api.send(.delete, path(channel, "messages/\(ids[1])"), user: alice).status == .noContent)

            #expect(state(try await api.send(.get, path(channel, "read"), user: bob)) == [0, 5])
            #expect(state(try await api.send(.put, path(channel, "read"), user: bob, json: #"{"seq":3}"#)) == [3, 3])
            // Backwards and repeated marks change nothing.
            #expect(state(try await api.send(.put, path(channel, "read"), user: bob, json: #"{"seq":1}"#)) == [3, 3])
            #expect(state(try await api.send(.put, path(channel, "read"), user: bob, json: #"{"seq":3}"#)) == [3, 3])
            #expect(state(try await api.send(.get, path(channel, "read"), user: bob)) == [3, 3])
            // Alice's own messages are not unread for her; bob's one is.
            #expect(state(try await api.send(.get, path(channel, "read"), user: alice)) == [0, 1])
            #expect(state(try await api.send(.put, path(channel, "read"), user: bob, json: #"{"seq":8}"#)) == [8, 0])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aMarkerPastTheLastMessageOrNotASeqIs400AndChangesNothing(backend: StoreBackend) async throws {
        let alice = self.alice
        try await backend.run { api in
            let channel = UUID()
            _ = try await api.send(.post, path(channel, "messages"), user: alice, json: #"{"content":"one"}"#)
            for body in [
                #"{"seq":2}"#, #"{"seq":-1}"#, #"{"seq":"1"}"#, #"{"seq":1.5}"#, #"{"seq":9223372036854775808}"#, #"{}"#, "[]",
            ] {
                let reply = try await api.send(.put, path(channel, "read"), user: alice, json: body)
                #expect(reply.status == .badRequest, "\(body)")
                #expect(reply.errorMessage?.contains("seq") == true || body == "[]", "\(body): \(reply.errorMessage ?? "")")
            }
            #expect(state(try await api.send(.get, path(channel, "read"), user: alice)) == [0, 0])
            #expect(state(try await api.send(.put, path(channel, "read"), user: alice, json: #"{"seq":1}"#)) == [1, 0])
        }
    }

    /// Twenty marks at once, in any order, leave the highest.
    @Test func concurrentMarksLeaveTheHighest() async throws {
        let (alice, bob) = (self.alice, self.bob)
        try await withService { api, _ in
            let channel = UUID()
            for index in 0..<20 {
                _ = try await api.send(.post, path(channel, "messages"), user: alice, json: #"{"content":"m\#(index)"}"#)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for seq in (1...20).shuffled() {
                    group.addTask {
                        let reply = try await api.send(.put, path(channel, "read"), user: bob, json: #"{"seq":\#(seq)}"#)
                        #expect(reply.status == .ok)
                    }
                }
                try await group.waitForAll()
            }
            #expect(state(try await api.send(.get, path(channel, "read"), user: bob)) == [20, 0])
        }
    }
}
