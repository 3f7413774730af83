/// One versioned schema change.
struct Migration: Sendable {
    let version: Int
    let name: String
    let sql: String
}

/// Every migration, in order. Applied migrations are never edited: change the schema by adding one.
enum Migrations {
    static let all: [Migration] = [
        Migration(
            version: 1, name: "messages",
            sql: """
                CREATE TABLE channels (
                    id uuid PRIMARY KEY,
                    last_seq bigint NOT NULL DEFAULT 0,
                    version bigint NOT NULL DEFAULT 0,
                    message_count bigint NOT NULL DEFAULT 0,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                );

                CREATE TABLE messages (
                    id uuid PRIMARY KEY,
                    channel_id uuid NOT NULL REFERENCES channels (id),
                    seq bigint NOT NULL,
                    version bigint NOT NULL,
                    author_id uuid NOT NULL,
                    parent_id uuid NULL,
                    type text NULL CHECK (type IN ('text', 'audio', 'file')),
                    content text NOT NULL,
                    attachments jsonb NOT NULL DEFAULT '[]',
                    mentions uuid[] NOT NULL DEFAULT '{}',
                    client_message_id text NULL,
                    request_hash text NULL,
                    reply_count bigint NOT NULL DEFAULT 0,
                    last_reply_at timestamptz NULL,
                    reaction_counts jsonb NOT NULL DEFAULT '{}',
                    created_at timestamptz NOT NULL,
                    edited_at timestamptz NULL,
                    deleted_at timestamptz NULL,
                    deleted_by uuid NULL,
                    CONSTRAINT messages_channel_seq UNIQUE (channel_id, seq),
                    CONSTRAINT messages_idempotency UNIQUE (channel_id, author_id, client_message_id)
                );
                CREATE INDEX messages_channel_version ON messages (channel_id, version);
                CREATE INDEX messages_parent_seq ON messages (parent_id, seq) WHERE parent_id IS NOT NULL;

                CREATE TABLE message_edits (
                    channel_id uuid NOT NULL,
                    message_id uuid NOT NULL REFERENCES messages (id),
                    version bigint NOT NULL,
                    content text NOT NULL,
                    attachments jsonb NOT NULL,
                    edited_at timestamptz NOT NULL,
                    edited_by uuid NOT NULL,
                    PRIMARY KEY (message_id, version)
                );

                CREATE TABLE reactions (
                    channel_id uuid NOT NULL,
                    message_id uuid NOT NULL REFERENCES messages (id),
                    emoji text NOT NULL,
                    user_id uuid NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (message_id, emoji, user_id)
                );
                """
        ),
        Migration(
            version: 2, name: "outbox",
            sql: """
                -- Events written in the transaction of the change they describe, published by the
                -- relay and deleted once the broker confirmed them. id orders them: the writers of
                -- one channel are serialized by its row lock, so per channel id follows seq/version.
                CREATE TABLE outbox (
                    id bigserial PRIMARY KEY,
                    event_id uuid NOT NULL UNIQUE,
                    channel_id uuid NOT NULL,
                    routing_key text NOT NULL,
                    payload jsonb NOT NULL,
                    -- The INF326 message JSON, for the LEGACY_QUEUE consumers (message.created only).
                    legacy_payload jsonb NULL,
                    correlation_id text NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    attempts integer NOT NULL DEFAULT 0,
                    last_error text NULL
                );
                """
        ),
        Migration(
            version: 3, name: "error journal",
            sql: """
                -- Warnings and errors of every pod, kept ERROR_RETENTION_DAYS (see ErrorJournalWriter).
                CREATE TABLE error_events (
                    id bigserial PRIMARY KEY,
                    time timestamptz NOT NULL,
                    level text NOT NULL CHECK (level IN ('warning', 'error', 'critical')),
                    message text NOT NULL,
                    source text NOT NULL,
                    request_id text NULL,
                    user_id uuid NULL,
                    channel_id uuid NULL,
                    metadata jsonb NOT NULL DEFAULT '{}'
                );
                CREATE INDEX error_events_time ON error_events (time);
                """
        ),
        Migration(
            version: 4, name: "root messages by time",
            sql: """
                -- INF326 cursors that name a message this service never stored fall back to their
                -- timestamp: the newest root message created before it is one probe of this index.
                CREATE INDEX messages_channel_root_created ON messages (channel_id, created_at, seq)
                    WHERE parent_id IS NULL;
                """
        ),
        Migration(
            version: 5, name: "channel members",
            sql: """
                -- Who may use a channel (CHANNEL_ACCESS=members), as the channels service sets it
                -- through the membership API. The primary key serves both the access check and
                -- the paged member list.
                CREATE TABLE channel_members (
                    channel_id uuid NOT NULL,
                    user_id uuid NOT NULL,
                    role text NOT NULL CHECK (role IN ('member', 'moderator')),
                    updated_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (channel_id, user_id)
                );
                """
        ),
    ]
}
