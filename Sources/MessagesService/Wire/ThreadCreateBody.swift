/// The JSON body of a legacy `/threads` create.
struct ThreadCreateBody: Decodable {
    let content: String
    let type: String?
    let paths: [String]?
}
