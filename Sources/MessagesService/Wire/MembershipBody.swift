/// The JSON body of a membership change: `{"role": "member" | "moderator"}`.
struct MembershipBody: Decodable {
    let role: String
}
