/// One versioned schema change.
struct Migration: Sendable {
    let version: Int
    let name: String
    let sql: String
}

/// Every migration, in order. Applied migrations are never edited: change the schema by adding one.
/// A new one must also apply to the partitioned schema (`ChannelPartitioning`): keys of a channel
/// table contain its channel there. `make test` migrates both.
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
        Migration(
            version: 6, name: "writes in one statement",
            sql: """
                -- Every write is one call of one of these functions: one round trip, one
                -- implicit transaction. They build the event JSON themselves, since seq, version
                -- and the times are only known inside the transaction. The JSON must stay what
                -- the API answers for the same message (MessageBody, ThreadMessageBody); the event
                -- tests compare them. To change a shape, add a migration that replaces a function.

                -- Timestamp.rfc3339: UTC, milliseconds (truncated), Z.
                CREATE FUNCTION api_time(t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
                    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                $$;

                -- Python's str() of a naive UTC datetime (Timestamp.pythonForm with a space), which
                -- drops a zero fraction.
                CREATE FUNCTION inf326_event_time(t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
                    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                        || CASE WHEN to_char(t AT TIME ZONE 'UTC', 'US') = '000000' THEN ''
                                ELSE to_char(t AT TIME ZONE 'UTC', '.US') END
                $$;

                -- MessageBody: the v1 message JSON.
                CREATE FUNCTION message_json(m messages) RETURNS jsonb LANGUAGE sql STABLE AS $$
                    SELECT jsonb_build_object(
                        'id', m.id, 'channel_id', m.channel_id, 'seq', m.seq, 'version', m.version,
                        'author_id', m.author_id, 'type', coalesce(m.type, 'text'), 'content', m.content,
                        'attachments', m.attachments, 'mentions', to_jsonb(m.mentions), 'parent_id', m.parent_id,
                        'reply_count', m.reply_count, 'reactions', m.reaction_counts,
                        'created_at', api_time(m.created_at), 'edited_at', api_time(m.edited_at),
                        'deleted_at', api_time(m.deleted_at))
                $$;

                -- ThreadMessageBody as the INF326 service published it (str() times, deleted_at).
                CREATE FUNCTION inf326_event_json(m messages) RETURNS jsonb LANGUAGE sql STABLE AS $$
                    SELECT jsonb_build_object(
                        'id', m.id, 'thread_id', m.channel_id, 'user_id', m.author_id, 'type', m.type,
                        'content', m.content,
                        -- A path expression, not a subquery: a subquery here made every event cost
                        -- about 0.3 ms more (measured, called from the write functions).
                        'paths', jsonb_path_query_array(m.attachments, '$[*].path'),
                        'created_at', inf326_event_time(m.created_at),
                        'updated_at', inf326_event_time(coalesce(m.edited_at, m.created_at)),
                        'deleted_at', inf326_event_time(m.deleted_at))
                $$;

                -- Writes the event of a change into the outbox (docs/design.md, "The event
                -- contract"); the INF326 JSON goes beside it for new messages only. plpgsql, not
                -- sql: its INSERT's plan is kept for the session; as a sql function it was planned
                -- again at every call (measured: a create cost three times as much).
                CREATE FUNCTION record_event(kind text, m messages, actor uuid, event_id uuid, correlation_id text)
                RETURNS void LANGUAGE plpgsql AS $$
                BEGIN
                    -- created_at: when the event was written (now() would be the transaction's start).
                    INSERT INTO outbox (event_id, channel_id, routing_key, payload, legacy_payload, correlation_id,
                        created_at)
                    VALUES (
                        record_event.event_id, m.channel_id, kind,
                        jsonb_build_object(
                            'id', record_event.event_id, 'type', kind,
                            'occurred_at', api_time(CASE kind
                                WHEN 'message.updated' THEN coalesce(m.edited_at, m.created_at)
                                WHEN 'message.deleted' THEN coalesce(m.deleted_at, m.created_at)
                                ELSE m.created_at END),
                            'channel_id', m.channel_id, 'seq', m.seq, 'version', m.version, 'actor_id', actor,
                            'message', message_json(m)),
                        CASE WHEN kind = 'message.created' THEN inf326_event_json(m) END,
                        record_event.correlation_id, clock_timestamp());
                END
                $$;

                -- A create. With a key, an earlier create by the same author answers 'replayed'.
                -- The channel row is bumped first: its lock serializes the channel's writers, so
                -- seq and version are gap-free, and a create racing this one with the same key
                -- either committed before the look-up or makes the insert a unique violation
                -- (the caller repeats the call, which then finds it). A missing root of a reply
                -- raises no_data_found, which rolls the bump back. Rows: 'created' (the message),
                -- then 'parent' (the root whose reply count moved) for a reply.
                CREATE FUNCTION create_message(
                    p_id uuid, p_channel uuid, p_author uuid, p_parent uuid, p_type text, p_content text,
                    p_attachments jsonb, p_mentions uuid[], p_key text, p_request_hash text,
                    p_event_id uuid, p_correlation_id text)
                RETURNS TABLE (outcome text, channel_last_seq bigint, channel_version bigint, message messages)
                LANGUAGE plpgsql AS $$
                DECLARE
                    earlier messages;
                    channel record;
                    parent messages;
                    created messages;
                BEGIN
                    IF p_key IS NOT NULL THEN
                        SELECT * INTO earlier FROM messages m
                        WHERE m.channel_id = p_channel AND m.author_id = p_author AND m.client_message_id = p_key;
                        IF FOUND THEN
                            RETURN QUERY SELECT 'replayed', NULL::bigint, NULL::bigint, earlier;
                            RETURN;
                        END IF;
                    END IF;
                    INSERT INTO channels AS c (id, last_seq, version, message_count) VALUES (p_channel, 1, 1, 1)
                    ON CONFLICT (id) DO UPDATE SET last_seq = c.last_seq + 1, version = c.version + 1,
                        message_count = c.message_count + 1, updated_at = now()
                    RETURNING c.last_seq, c.version INTO channel;
                    IF p_parent IS NOT NULL THEN
                        -- The root's reply count is part of its JSON: it changes with this version.
                        UPDATE messages m SET reply_count = m.reply_count + 1, last_reply_at = clock_timestamp(),
                            version = channel.version
                        WHERE m.channel_id = p_channel AND m.id = p_parent AND m.parent_id IS NULL
                            AND m.deleted_at IS NULL
                        RETURNING * INTO parent;
                        IF NOT FOUND THEN
                            RAISE EXCEPTION 'no root message to reply to' USING ERRCODE = 'no_data_found';
                        END IF;
                    END IF;
                    -- clock_timestamp(), not now(): read under the channel lock, created_at grows with seq.
                    INSERT INTO messages (id, channel_id, seq, version, author_id, parent_id, type, content,
                        attachments, mentions, client_message_id, request_hash, created_at)
                    VALUES (p_id, p_channel, channel.last_seq, channel.version, p_author, p_parent, p_type, p_content,
                        p_attachments, p_mentions, p_key, p_request_hash, clock_timestamp())
                    RETURNING * INTO created;
                    PERFORM record_event('message.created', created, p_author, p_event_id, p_correlation_id);
                    RETURN QUERY SELECT 'created', channel.last_seq, channel.version, created;
                    IF p_parent IS NOT NULL THEN
                        RETURN QUERY SELECT 'parent', channel.last_seq, channel.version, parent;
                    END IF;
                END
                $$;

                -- Locks a channel's row, then one of its messages (the lock order of every write),
                -- without changing either: edits and deletes check the message before they take a
                -- version. A row of nulls when the message is not there.
                CREATE FUNCTION lock_message(p_channel uuid, p_id uuid) RETURNS messages LANGUAGE plpgsql AS $$
                DECLARE
                    target messages;
                BEGIN
                    PERFORM 1 FROM channels c WHERE c.id = p_channel FOR UPDATE;
                    SELECT * INTO target FROM messages m WHERE m.channel_id = p_channel AND m.id = p_id FOR UPDATE;
                    RETURN target;
                END
                $$;

                -- An edit by p_user; null content, attachments or mentions stay as they are. The
                -- channel's version is bumped only when the edit is made. One row: 'edited', or the refusal
                -- ('not_found', 'not_author', 'deleted', 'version_mismatch' with the current
                -- message, 'empty'), the rules of MessageEdit.applied.
                CREATE FUNCTION edit_message(
                    p_channel uuid, p_id uuid, p_user uuid, p_content text, p_attachments jsonb, p_mentions uuid[],
                    p_expected_version bigint, p_event_id uuid, p_correlation_id text)
                RETURNS TABLE (outcome text, channel_last_seq bigint, channel_version bigint, message messages)
                LANGUAGE plpgsql AS $$
                DECLARE
                    channel record;
                    target messages;
                    edited messages;
                BEGIN
                    target := lock_message(p_channel, p_id);
                    IF target.id IS NULL THEN
                        RETURN QUERY SELECT 'not_found', NULL::bigint, NULL::bigint, NULL::messages;
                    ELSIF target.author_id IS DISTINCT FROM p_user THEN
                        RETURN QUERY SELECT 'not_author', NULL::bigint, NULL::bigint, target;
                    ELSIF target.deleted_at IS NOT NULL THEN
                        RETURN QUERY SELECT 'deleted', NULL::bigint, NULL::bigint, target;
                    ELSIF p_expected_version IS NOT NULL AND p_expected_version <> target.version THEN
                        RETURN QUERY SELECT 'version_mismatch', NULL::bigint, NULL::bigint, target;
                    ELSIF coalesce(p_content, target.content) = ''
                        AND jsonb_array_length(coalesce(p_attachments, target.attachments)) = 0 THEN
                        RETURN QUERY SELECT 'empty', NULL::bigint, NULL::bigint, target;
                    ELSE
                        UPDATE channels c SET version = c.version + 1, updated_at = now() WHERE c.id = p_channel
                        RETURNING c.last_seq, c.version INTO channel;
                        INSERT INTO message_edits (channel_id, message_id, version, content, attachments, edited_at,
                            edited_by)
                        VALUES (p_channel, p_id, target.version, target.content, target.attachments,
                            clock_timestamp(), p_user);
                        UPDATE messages m SET version = channel.version, content = coalesce(p_content, m.content),
                            attachments = coalesce(p_attachments, m.attachments),
                            mentions = coalesce(p_mentions, m.mentions), edited_at = clock_timestamp()
                        WHERE m.channel_id = p_channel AND m.id = p_id
                        RETURNING * INTO edited;
                        PERFORM record_event('message.updated', edited, p_user, p_event_id, p_correlation_id);
                        RETURN QUERY SELECT 'edited', channel.last_seq, channel.version, edited;
                    END IF;
                END
                $$;

                -- A delete by p_user (any message when p_as_moderator). The text goes for everyone,
                -- from the edit history too. One row: 'deleted', 'unchanged' (it already was: the
                -- tombstone, no new version), 'not_found' or 'not_author'.
                CREATE FUNCTION delete_message(
                    p_channel uuid, p_id uuid, p_user uuid, p_as_moderator boolean, p_event_id uuid,
                    p_correlation_id text)
                RETURNS TABLE (outcome text, channel_last_seq bigint, channel_version bigint, message messages)
                LANGUAGE plpgsql AS $$
                DECLARE
                    channel record;
                    target messages;
                    deleted messages;
                BEGIN
                    target := lock_message(p_channel, p_id);
                    IF target.id IS NULL THEN
                        RETURN QUERY SELECT 'not_found', NULL::bigint, NULL::bigint, NULL::messages;
                    ELSIF target.author_id IS DISTINCT FROM p_user AND NOT coalesce(p_as_moderator, false) THEN
                        RETURN QUERY SELECT 'not_author', NULL::bigint, NULL::bigint, target;
                    ELSIF target.deleted_at IS NOT NULL THEN
                        RETURN QUERY SELECT 'unchanged', NULL::bigint, NULL::bigint, target;
                    ELSE
                        UPDATE channels c SET version = c.version + 1, updated_at = now() WHERE c.id = p_channel
                        RETURNING c.last_seq, c.version INTO channel;
                        DELETE FROM message_edits e WHERE e.channel_id = p_channel AND e.message_id = p_id;
                        UPDATE messages m SET version = channel.version, content = '', attachments = '[]',
                            mentions = '{}', deleted_at = clock_timestamp(), deleted_by = p_user
                        WHERE m.channel_id = p_channel AND m.id = p_id
                        RETURNING * INTO deleted;
                        PERFORM record_event('message.deleted', deleted, p_user, p_event_id, p_correlation_id);
                        RETURN QUERY SELECT 'deleted', channel.last_seq, channel.version, deleted;
                    END IF;
                END
                $$;
                """
        ),
        Migration(
            version: 7, name: "read markers",
            sql: """
                -- Where each user has read up to in a channel: a row once the user marked one.
                CREATE TABLE read_markers (
                    channel_id uuid NOT NULL,
                    user_id uuid NOT NULL,
                    last_read_seq bigint NOT NULL,
                    updated_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (channel_id, user_id)
                );
                """
        ),
        Migration(
            version: 8, name: "reactions",
            sql: """
                -- When a reaction was last added to or removed from the message: the changes feed
                -- tells such a change from a creation by it (MessageChangeKind).
                ALTER TABLE messages ADD COLUMN reacted_at timestamptz NULL;

                -- p_user adds (p_add) or removes their reaction p_emoji on a live message, in the
                -- lock order of every write (lock_message). The reactions row decides: a reaction
                -- already there, or not there, is 'unchanged' (no version, no event), so twenty
                -- concurrent adds of one reaction count it once. A change bumps the channel's
                -- version, moves the message's count and writes reaction.added or .removed, whose
                -- body is the other events' with the emoji. One row: 'changed', 'unchanged',
                -- 'too_many' (a new kind past p_max_kinds), 'deleted' or 'not_found'.
                CREATE FUNCTION react_message(
                    p_channel uuid, p_id uuid, p_user uuid, p_emoji text, p_add boolean, p_max_kinds integer,
                    p_event_id uuid, p_correlation_id text)
                RETURNS TABLE (outcome text, channel_last_seq bigint, channel_version bigint, message messages)
                LANGUAGE plpgsql AS $$
                DECLARE
                    channel record;
                    target messages;
                    changed messages;
                    kind text := CASE WHEN p_add THEN 'reaction.added' ELSE 'reaction.removed' END;
                    remaining bigint;
                BEGIN
                    target := lock_message(p_channel, p_id);
                    IF target.id IS NULL THEN
                        RETURN QUERY SELECT 'not_found', NULL::bigint, NULL::bigint, NULL::messages;
                        RETURN;
                    ELSIF target.deleted_at IS NOT NULL THEN
                        RETURN QUERY SELECT 'deleted', NULL::bigint, NULL::bigint, target;
                        RETURN;
                    END IF;
                    IF p_add THEN
                        IF NOT target.reaction_counts ? p_emoji
                            AND (SELECT count(*) FROM jsonb_object_keys(target.reaction_counts)) >= p_max_kinds THEN
                            RETURN QUERY SELECT 'too_many', NULL::bigint, NULL::bigint, target;
                            RETURN;
                        END IF;
                        INSERT INTO reactions (channel_id, message_id, emoji, user_id, created_at)
                        VALUES (p_channel, p_id, p_emoji, p_user, clock_timestamp())
                        ON CONFLICT DO NOTHING;
                    ELSE
                        DELETE FROM reactions r
                        WHERE r.channel_id = p_channel AND r.message_id = p_id AND r.emoji = p_emoji
                            AND r.user_id = p_user;
                    END IF;
                    IF NOT FOUND THEN
                        RETURN QUERY SELECT 'unchanged', NULL::bigint, NULL::bigint, target;
                        RETURN;
                    END IF;
                    UPDATE channels c SET version = c.version + 1, updated_at = now() WHERE c.id = p_channel
                    RETURNING c.last_seq, c.version INTO channel;
                    remaining := coalesce((target.reaction_counts ->> p_emoji)::bigint, 0)
                        + CASE WHEN p_add THEN 1 ELSE -1 END;
                    UPDATE messages m SET version = channel.version, reacted_at = clock_timestamp(),
                        reaction_counts = CASE WHEN remaining > 0
                            THEN jsonb_set(m.reaction_counts, ARRAY[p_emoji], to_jsonb(remaining))
                            ELSE m.reaction_counts - p_emoji END
                    WHERE m.channel_id = p_channel AND m.id = p_id
                    RETURNING * INTO changed;
                    INSERT INTO outbox (event_id, channel_id, routing_key, payload, correlation_id, created_at)
                    VALUES (
                        p_event_id, p_channel, kind,
                        jsonb_build_object(
                            'id', p_event_id, 'type', kind, 'occurred_at', api_time(changed.reacted_at),
                            'channel_id', p_channel, 'seq', changed.seq, 'version', changed.version,
                            'actor_id', p_user, 'emoji', p_emoji, 'message', message_json(changed)),
                        p_correlation_id, clock_timestamp());
                    RETURN QUERY SELECT 'changed', channel.last_seq, channel.version, changed;
                END
                $$;
                """
        ),
        Migration(
            version: 9, name: "dead events",
            sql: """
                -- How many times the broker refused (nacked) an event, and when the relay may
                -- publish it again: a refused event waits a backoff of its own (0.5 s doubling to
                -- 60 s), so its refusals spread over minutes and it does not go to the other queues
                -- again every round. A failed connection or a confirm timeout counts in attempts
                -- only: an outage is not the event's fault, and must not make waiting events dead.
                ALTER TABLE outbox ADD COLUMN refusals integer NOT NULL DEFAULT 0,
                    ADD COLUMN retry_at timestamptz NULL;

                -- Events the broker refused OUTBOX_MAX_ATTEMPTS times, moved out of the outbox so
                -- that the others flow; `messages-service events replay` puts them back, in
                -- outbox_id order (docs/events.md, "Dead events").
                CREATE TABLE dead_events (
                    id bigserial PRIMARY KEY,
                    outbox_id bigint NOT NULL,
                    event_id uuid NOT NULL UNIQUE,
                    channel_id uuid NOT NULL,
                    routing_key text NOT NULL,
                    payload jsonb NOT NULL,
                    legacy_payload jsonb NULL,
                    correlation_id text NULL,
                    created_at timestamptz NOT NULL,
                    attempts integer NOT NULL,
                    refusals integer NOT NULL,
                    last_error text NULL,
                    died_at timestamptz NOT NULL DEFAULT now()
                );

                -- Events the broker confirmed and events that died, per UTC day: written by the
                -- active relay only (one writer), read by GET /v1/stats.
                CREATE TABLE event_days (
                    day date PRIMARY KEY,
                    published bigint NOT NULL DEFAULT 0,
                    dead bigint NOT NULL DEFAULT 0
                );
                """
        ),
        Migration(
            version: 10, name: "statistics",
            sql: """
                -- The counters GET /v1/channels/{id}/stats and GET /v1/stats read, kept by the
                -- writes themselves (under the channel's row lock the write holds anyway), so a
                -- statistics call reads a handful of rows and never scans messages. message_count
                -- (migration 1) counts every message posted, replies and deleted ones included.
                ALTER TABLE channels ADD COLUMN reply_count bigint NOT NULL DEFAULT 0,
                    ADD COLUMN deleted_count bigint NOT NULL DEFAULT 0;

                -- Who ever posted in a channel: its distinct authors are an index range.
                CREATE TABLE channel_authors (
                    channel_id uuid NOT NULL,
                    user_id uuid NOT NULL,
                    PRIMARY KEY (channel_id, user_id)
                );

                -- Messages posted per channel and UTC day; the day index serves the totals per day.
                CREATE TABLE channel_days (
                    channel_id uuid NOT NULL,
                    day date NOT NULL,
                    messages bigint NOT NULL,
                    PRIMARY KEY (channel_id, day)
                );
                CREATE INDEX channel_days_day ON channel_days (day);

                -- Messages posted per UTC day over all channels, for days at least two days past
                -- (no write is still counting them): rolled up from channel_days by the first
                -- GET /v1/stats that needs the day, so later calls read one row per day.
                CREATE TABLE message_days (
                    day date PRIMARY KEY,
                    messages bigint NOT NULL
                );

                -- The counts of the messages already there, from one pass over messages. The
                -- ALTER above holds channels until the commit, so no write runs meanwhile (and
                -- every request waits: docs/statistics.md says how long).
                CREATE TEMPORARY TABLE counted ON COMMIT DROP AS
                SELECT channel_id, author_id, (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS messages,
                    count(*) FILTER (WHERE parent_id IS NOT NULL) AS replies,
                    count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted
                FROM messages GROUP BY 1, 2, 3;
                INSERT INTO channel_authors (channel_id, user_id) SELECT DISTINCT channel_id, author_id FROM counted;
                INSERT INTO channel_days (channel_id, day, messages)
                SELECT channel_id, day, sum(messages) FROM counted GROUP BY 1, 2;
                UPDATE channels c SET reply_count = totals.replies, deleted_count = totals.deleted
                FROM (SELECT channel_id, sum(replies) AS replies, sum(deleted) AS deleted FROM counted GROUP BY 1) AS totals
                WHERE totals.channel_id = c.id;

                -- Migration 6's create and delete, counting: a reply in reply_count, the author in
                -- channel_authors, the day in channel_days; a delete in deleted_count.
                CREATE OR REPLACE FUNCTION create_message(
                    p_id uuid, p_channel uuid, p_author uuid, p_parent uuid, p_type text, p_content text,
                    p_attachments jsonb, p_mentions uuid[], p_key text, p_request_hash text,
                    p_event_id uuid, p_correlation_id text)
                RETURNS TABLE (outcome text, channel_last_seq bigint, channel_version bigint, message messages)
                LANGUAGE plpgsql AS $$
                DECLARE
                    earlier messages;
                    channel record;
                    parent messages;
                    created messages;
                BEGIN
                    IF p_key IS NOT NULL THEN
                        SELECT * INTO earlier FROM messages m
                        WHERE m.channel_id = p_channel AND m.author_id = p_author AND m.client_message_id = p_key;
                        IF FOUND THEN
                            RETURN QUERY SELECT 'replayed', NULL::bigint, NULL::bigint, earlier;
                            RETURN;
                        END IF;
                    END IF;
                    INSERT INTO channels AS c (id, last_seq, version, message_count, reply_count)
                    VALUES (p_channel, 1, 1, 1, CASE WHEN p_parent IS NULL THEN 0 ELSE 1 END)
                    ON CONFLICT (id) DO UPDATE SET last_seq = c.last_seq + 1, version = c.version + 1,
                        message_count = c.message_count + 1,
                        reply_count = c.reply_count + CASE WHEN p_parent IS NULL THEN 0 ELSE 1 END, updated_at = now()
                    RETURNING c.last_seq, c.version INTO channel;
                    IF p_parent IS NOT NULL THEN
                        -- The root's reply count is part of its JSON: it changes with this version.
                        UPDATE messages m SET reply_count = m.reply_count + 1, last_reply_at = clock_timestamp(),
                            version = channel.version
                        WHERE m.channel_id = p_channel AND m.id = p_parent AND m.parent_id IS NULL
                            AND m.deleted_at IS NULL
                        RETURNING * INTO parent;
                        IF NOT FOUND THEN
                            RAISE EXCEPTION 'no root message to reply to' USING ERRCODE = 'no_data_found';
                        END IF;
                    END IF;
                    -- clock_timestamp(), not now(): read under the channel lock, created_at grows with seq.
                    INSERT INTO messages (id, channel_id, seq, version, author_id, parent_id, type, content,
                        attachments, mentions, client_message_id, request_hash, created_at)
                    VALUES (p_id, p_channel, channel.last_seq, channel.version, p_author, p_parent, p_type, p_content,
                        p_attachments, p_mentions, p_key, p_request_hash, clock_timestamp())
                    RETURNING * INTO created;
                    INSERT INTO channel_authors (channel_id, user_id) VALUES (p_channel, p_author) ON CONFLICT DO NOTHING;
                    INSERT INTO channel_days AS d (channel_id, day, messages)
                    VALUES (p_channel, (created.created_at AT TIME ZONE 'UTC')::date, 1)
                    ON CONFLICT (channel_id, day) DO UPDATE SET messages = d.messages + 1;
                    PERFORM record_event('message.created', created, p_author, p_event_id, p_correlation_id);
                    RETURN QUERY SELECT 'created', channel.last_seq, channel.version, created;
                    IF p_parent IS NOT NULL THEN
                        RETURN QUERY SELECT 'parent', channel.last_seq, channel.version, parent;
                    END IF;
                END
                $$;

                CREATE OR REPLACE FUNCTION delete_message(
                    p_channel uuid, p_id uuid, p_user uuid, p_as_moderator boolean, p_event_id uuid,
                    p_correlation_id text)
                RETURNS TABLE (outcome text, channel_last_seq bigint, channel_version bigint, message messages)
                LANGUAGE plpgsql AS $$
                DECLARE
                    channel record;
                    target messages;
                    deleted messages;
                BEGIN
                    target := lock_message(p_channel, p_id);
                    IF target.id IS NULL THEN
                        RETURN QUERY SELECT 'not_found', NULL::bigint, NULL::bigint, NULL::messages;
                    ELSIF target.author_id IS DISTINCT FROM p_user AND NOT coalesce(p_as_moderator, false) THEN
                        RETURN QUERY SELECT 'not_author', NULL::bigint, NULL::bigint, target;
                    ELSIF target.deleted_at IS NOT NULL THEN
                        RETURN QUERY SELECT 'unchanged', NULL::bigint, NULL::bigint, target;
                    ELSE
                        UPDATE channels c SET version = c.version + 1, deleted_count = c.deleted_count + 1,
                            updated_at = now()
                        WHERE c.id = p_channel
                        RETURNING c.last_seq, c.version INTO channel;
                        DELETE FROM message_edits e WHERE e.channel_id = p_channel AND e.message_id = p_id;
                        UPDATE messages m SET version = channel.version, content = '', attachments = '[]',
                            mentions = '{}', deleted_at = clock_timestamp(), deleted_by = p_user
                        WHERE m.channel_id = p_channel AND m.id = p_id
                        RETURNING * INTO deleted;
                        PERFORM record_event('message.deleted', deleted, p_user, p_event_id, p_correlation_id);
                        RETURN QUERY SELECT 'deleted', channel.last_seq, channel.version, deleted;
                    END IF;
                END
                $$;
                """
        ),
        Migration(
            version: 11, name: "trace context",
            sql: """
                -- The W3C trace context of the request that wrote an event, published with it as
                -- AMQP headers, so a consumer continues the request's trace (docs/tracing.md).
                ALTER TABLE outbox ADD COLUMN traceparent text NULL, ADD COLUMN tracestate text NULL;
                ALTER TABLE dead_events ADD COLUMN traceparent text NULL, ADD COLUMN tracestate text NULL;

                -- The writes with the trace context as two more parameters. New functions beside
                -- the old ones, which the pods of the previous release go on calling during a
                -- rolling update (their events carry no trace context); a later migration drops
                -- the old ones.
                CREATE FUNCTION record_event(
                    kind text, m messages, actor uuid, event_id uuid, correlation_id text, traceparent text, tracestate text)
                RETURNS void LANGUAGE plpgsql AS $$
                BEGIN
                    -- created_at: when the event was written (now() would be the transaction's start).
                    INSERT INTO outbox (event_id, channel_id, routing_key, payload, legacy_payload, correlation_id,
                        created_at, traceparent, tracestate)
                    VALUES (
                        record_event.event_id, m.channel_id, kind,
                        jsonb_build_object(
                            'id', record_event.event_id, 'type', kind,
                            'occurred_at', api_time(CASE kind
                                WHEN 'message.updated' THEN coalesce(m.edited_at, m.created_at)
                                WHEN 'message.deleted' THEN coalesce(m.deleted_at, m.created_at)
                                ELSE m.created_at END),
                            'channel_id', m.channel_id, 'seq', m.seq, 'version', m.version, 'actor_id', actor,
                            'message', message_json(m)),
                        CASE WHEN kind = 'message.created' THEN inf326_event_json(m) END,
                        record_event.correlation_id, clock_timestamp(), record_event.traceparent, record_event.tracestate);
                END
                $$;

                CREATE FUNCTION create_message(
                    p_id uuid, p_channel uuid, p_author uuid, p_parent uuid, p_type text, p_content text,
                    p_attachments jsonb, p_mentions uuid[], p_key text, p_request_hash text,
                    p_event_id uuid, p_correlation_id text, p_traceparent text, p_tracestate text)
                RETURNS TABLE (outcome text, channel_last_seq bigint, channel_version bigint, message messages)
                LANGUAGE plpgsql AS $$
                DECLARE
                    earlier messages;
                    channel record;
                    parent messages;
                    created messages;
                BEGIN
                    IF p_key IS NOT NULL THEN
                        SELECT * INTO earlier FROM messages m
                        WHERE m.channel_id = p_channel AND m.author_id = p_author AND m.client_message_id = p_key;
                        IF FOUND THEN
                            RETURN QUERY SELECT 'replayed', NULL::bigint, NULL::bigint, earlier;
                            RETURN;
                        END IF;
                    END IF;
                    INSERT INTO channels AS c (id, last_seq, version, message_count, reply_count)
                    VALUES (p_channel, 1, 1, 1, CASE WHEN p_parent IS NULL THEN 0 ELSE 1 END)
                    ON CONFLICT (id) DO UPDATE SET last_seq = c.last_seq + 1, version = c.version + 1,
                        message_count = c.message_count + 1,
                        reply_count = c.reply_count + CASE WHEN p_parent IS NULL THEN 0 ELSE 1 END, updated_at = now()
                    RETURNING c.last_seq, c.version INTO channel;
                    IF p_parent IS NOT NULL THEN
                        -- The root's reply count is part of its JSON: it changes with this version.
                        UPDATE messages m SET reply_count = m.reply_count + 1, last_reply_at = clock_timestamp(),
                            version = channel.version
                        WHERE m.channel_id = p_channel AND m.id = p_parent AND m.parent_id IS NULL
                            AND m.deleted_at IS NULL
                        RETURNING * INTO parent;
                        IF NOT FOUND THEN
                            RAISE EXCEPTION 'no root message to reply to' USING ERRCODE = 'no_data_found';
                        END IF;
                    END IF;
                    -- clock_timestamp(), not now(): read under the channel lock, created_at grows with seq.
                    INSERT INTO messages (id, channel_id, seq, version, author_id, parent_id, type, content,
                        attachments, mentions, client_message_id, request_hash, created_at)
                    VALUES (p_id, p_channel, channel.last_seq, channel.version, p_author, p_parent, p_type, p_content,
                        p_attachments, p_mentions, p_key, p_request_hash, clock_timestamp())
                    RETURNING * INTO created;
                    INSERT INTO channel_authors (channel_id, user_id) VALUES (p_channel, p_author) ON CONFLICT DO NOTHING;
                    INSERT INTO channel_days AS d (channel_id, day, messages)
                    VALUES (p_channel, (created.created_at AT TIME ZONE 'UTC')::date, 1)
                    ON CONFLICT (channel_id, day) DO UPDATE SET messages = d.messages + 1;
                    PERFORM record_event('message.created', created, p_author, p_event_id, p_correlation_id, p_traceparent, p_tracestate);
                    RETURN QUERY SELECT 'created', channel.last_seq, channel.version, created;
                    IF p_parent IS NOT NULL THEN
                        RETURN QUERY SELECT 'parent', channel.last_seq, channel.version, parent;
                    END IF;
                END
                $$;

                CREATE FUNCTION edit_message(
                    p_channel uuid, p_id uuid, p_user uuid, p_content text, p_attachments jsonb, p_mentions uuid[],
                    p_expected_version bigint, p_event_id uuid, p_correlation_id text, p_traceparent text, p_tracestate text)
                RETURNS TABLE (outcome text, channel_last_seq bigint, channel_version bigint, message messages)
                LANGUAGE plpgsql AS $$
                DECLARE
                    channel record;
                    target messages;
                    edited messages;
                BEGIN
                    target := lock_message(p_channel, p_id);
                    IF target.id IS NULL THEN
                        RETURN QUERY SELECT 'not_found', NULL::bigint, NULL::bigint, NULL::messages;
                    ELSIF target.author_id IS DISTINCT FROM p_user THEN
                        RETURN QUERY SELECT 'not_author', NULL::bigint, NULL::bigint, target;
                    ELSIF target.deleted_at IS NOT NULL THEN
                        RETURN QUERY SELECT 'deleted', NULL::bigint, NULL::bigint, target;
                    ELSIF p_expected_version IS NOT NULL AND p_expected_version <> target.version THEN
                        RETURN QUERY SELECT 'version_mismatch', NULL::bigint, NULL::bigint, target;
                    ELSIF coalesce(p_content, target.content) = ''
                        AND jsonb_array_length(coalesce(p_attachments, target.attachments)) = 0 THEN
                        RETURN QUERY SELECT 'empty', NULL::bigint, NULL::bigint, target;
                    ELSE
                        UPDATE channels c SET version = c.version + 1, updated_at = now() WHERE c.id = p_channel
                        RETURNING c.last_seq, c.version INTO channel;
                        INSERT INTO message_edits (channel_id, message_id, version, content, attachments, edited_at,
                            edited_by)
                        VALUES (p_channel, p_id, target.version, target.content, target.attachments,
                            clock_timestamp(), p_user);
                        UPDATE messages m SET version = channel.version, content = coalesce(p_content, m.content),
                            attachments = coalesce(p_attachments, m.attachments),
                            mentions = coalesce(p_mentions, m.mentions), edited_at = clock_timestamp()
                        WHERE m.channel_id = p_channel AND m.id = p_id
                        RETURNING * INTO edited;
                        PERFORM record_event('message.updated', edited, p_user, p_event_id, p_correlation_id, p_traceparent, p_tracestate);
                        RETURN QUERY SELECT 'edited', channel.last_seq, channel.version, edited;
                    END IF;
                END
                $$;

                CREATE FUNCTION delete_message(
                    p_channel uuid, p_id uuid, p_user uuid, p_as_moderator boolean, p_event_id uuid,
                    p_correlation_id text, p_traceparent text, p_tracestate text)
                RETURNS TABLE (outcome text, channel_last_seq bigint, channel_version bigint, message messages)
                LANGUAGE plpgsql AS $$
                DECLARE
                    channel record;
                    target messages;
                    deleted messages;
                BEGIN
                    target := lock_message(p_channel, p_id);
                    IF target.id IS NULL THEN
                        RETURN QUERY SELECT 'not_found', NULL::bigint, NULL::bigint, NULL::messages;
                    ELSIF target.author_id IS DISTINCT FROM p_user AND NOT coalesce(p_as_moderator, false) THEN
                        RETURN QUERY SELECT 'not_author', NULL::bigint, NULL::bigint, target;
                    ELSIF target.deleted_at IS NOT NULL THEN
                        RETURN QUERY SELECT 'unchanged', NULL::bigint, NULL::bigint, target;
                    ELSE
                        UPDATE channels c SET version = c.version + 1, deleted_count = c.deleted_count + 1,
                            updated_at = now()
                        WHERE c.id = p_channel
                        RETURNING c.last_seq, c.version INTO channel;
                        DELETE FROM message_edits e WHERE e.channel_id = p_channel AND e.message_id = p_id;
                        UPDATE messages m SET version = channel.version, content = '', attachments = '[]',
                            mentions = '{}', deleted_at = clock_timestamp(), deleted_by = p_user
                        WHERE m.channel_id = p_channel AND m.id = p_id
                        RETURNING * INTO deleted;
                        PERFORM record_event('message.deleted', deleted, p_user, p_event_id, p_correlation_id, p_traceparent, p_tracestate);
                        RETURN QUERY SELECT 'deleted', channel.last_seq, channel.version, deleted;
                    END IF;
                END
                $$;

                CREATE FUNCTION react_message(
                    p_channel uuid, p_id uuid, p_user uuid, p_emoji text, p_add boolean, p_max_kinds integer,
                    p_event_id uuid, p_correlation_id text, p_traceparent text, p_tracestate text)
                RETURNS TABLE (outcome text, channel_last_seq bigint, channel_version bigint, message messages)
                LANGUAGE plpgsql AS $$
                DECLARE
                    channel record;
                    target messages;
                    changed messages;
                    kind text := CASE WHEN p_add THEN 'reaction.added' ELSE 'reaction.removed' END;
                    remaining bigint;
                BEGIN
                    target := lock_message(p_channel, p_id);
                    IF target.id IS NULL THEN
                        RETURN QUERY SELECT 'not_found', NULL::bigint, NULL::bigint, NULL::messages;
                        RETURN;
                    ELSIF target.deleted_at IS NOT NULL THEN
                        RETURN QUERY SELECT 'deleted', NULL::bigint, NULL::bigint, target;
                        RETURN;
                    END IF;
                    IF p_add THEN
                        IF NOT target.reaction_counts ? p_emoji
                            AND (SELECT count(*) FROM jsonb_object_keys(target.reaction_counts)) >= p_max_kinds THEN
                            RETURN QUERY SELECT 'too_many', NULL::bigint, NULL::bigint, target;
                            RETURN;
                        END IF;
                        INSERT INTO reactions (channel_id, message_id, emoji, user_id, created_at)
                        VALUES (p_channel, p_id, p_emoji, p_user, clock_timestamp())
                        ON CONFLICT DO NOTHING;
                    ELSE
                        DELETE FROM reactions r
                        WHERE r.channel_id = p_channel AND r.message_id = p_id AND r.emoji = p_emoji
                            AND r.user_id = p_user;
                    END IF;
                    IF NOT FOUND THEN
                        RETURN QUERY SELECT 'unchanged', NULL::bigint, NULL::bigint, target;
                        RETURN;
                    END IF;
                    UPDATE channels c SET version = c.version + 1, updated_at = now() WHERE c.id = p_channel
                    RETURNING c.last_seq, c.version INTO channel;
                    remaining := coalesce((target.reaction_counts ->> p_emoji)::bigint, 0)
                        + CASE WHEN p_add THEN 1 ELSE -1 END;
                    UPDATE messages m SET version = channel.version, reacted_at = clock_timestamp(),
                        reaction_counts = CASE WHEN remaining > 0
                            THEN jsonb_set(m.reaction_counts, ARRAY[p_emoji], to_jsonb(remaining))
                            ELSE m.reaction_counts - p_emoji END
                    WHERE m.channel_id = p_channel AND m.id = p_id
                    RETURNING * INTO changed;
                    INSERT INTO outbox (event_id, channel_id, routing_key, payload, correlation_id, created_at, traceparent,
                        tracestate)
                    VALUES (
                        p_event_id, p_channel, kind,
                        jsonb_build_object(
                            'id', p_event_id, 'type', kind, 'occurred_at', api_time(changed.reacted_at),
                            'channel_id', p_channel, 'seq', changed.seq, 'version', changed.version,
                            'actor_id', p_user, 'emoji', p_emoji, 'message', message_json(changed)),
                        p_correlation_id, clock_timestamp(), p_traceparent, p_tracestate);
                    RETURN QUERY SELECT 'changed', channel.last_seq, channel.version, changed;
                END
                $$;
                """
        ),
    ]
}
