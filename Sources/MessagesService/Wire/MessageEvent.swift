/// A change to a message as consumers receive it on `messages.events` (docs/design.md, "The event
/// contract"): the body `{id, type, occurred_at, channel_id, seq, version, actor_id, message}`
/// (reaction events add `emoji`), with the routing key and AMQP `type` equal to `type`.
///
/// The body is written by the store's write functions (migration 6, `record_event`; migration 8,
/// `react_message`), inside the transaction of the change, where seq, version and the change's
/// time are known; its `message` is the v1 message JSON (`MessageBody`) and the event tests hold
/// the two equal.
enum MessageEvent {
    enum Kind: String, Sendable, CaseIterable {
        case created = "message.created"
        case updated = "message.updated"
        case deleted = "message.deleted"
        case reactionAdded = "reaction.added"
        case reactionRemoved = "reaction.removed"
    }
}
