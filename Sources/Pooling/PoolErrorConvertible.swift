/// The error type of a client built on a pool: the pool's refusals (`PoolError`) reach the
/// client's callers as one of these, so they catch one error type whatever failed.
public protocol PoolErrorConvertible: Error {
    /// The client's error for a pool that lent no connection.
    init(_ refusal: PoolError)
}

extension PoolError: PoolErrorConvertible {
    public init(_ refusal: PoolError) {
        self = refusal
    }
}
