/// The JSON body of a legacy `/threads` update.
struct ThreadUpdateBody: Decodable {
    let content: String?
    let paths: [String]?
}
