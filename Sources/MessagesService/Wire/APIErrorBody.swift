/// The JSON of an `APIError`.
struct APIErrorBody: Encodable {
    struct Detail: Encodable {
        let code: String
        let message: String
        let request_id: String?
    }
    let error: Detail
}
