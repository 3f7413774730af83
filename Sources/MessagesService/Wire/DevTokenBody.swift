import Foundation

/// The JSON body of `POST /dev/token`: `{"user_id"?: uuid, "roles"?: ["moderator"]}`.
struct DevTokenRequestBody: Decodable {
    let userID: String?
    let roles: [String]?

    private enum CodingKeys: String, CodingKey {
        case userID = "user_id"
        case roles
    }
}

/// A minted development token and what it says.
struct DevTokenBody: Encodable {
    let token: String
    let user_id: String
    let roles: [String]
    let expires_at: String

    init(token: String, userID: String, roles: [String], expiresAt: Date) {
        self.token = token
        user_id = userID
        self.roles = roles
        expires_at = expiresAt.formatted(.iso8601)
    }
}
