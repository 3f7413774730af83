/// Why a request's credentials were refused: each API answers it as its 401.
struct AuthenticationFailure: Error, Equatable {
    /// What was wrong, for a person; names no secret.
    let message: String
    /// The `WWW-Authenticate` challenge to send, if the scheme has one.
    let challenge: String?
}
