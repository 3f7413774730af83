import Postgres

/// `MESSAGES_PARTITIONS=N`: the channel-keyed tables hash-partitioned by channel in Postgres
/// itself, N partitions each, so that vacuum, index size and a table's hot pages are per
/// partition, and so that the schema is the one a distributed Postgres (Citus) shards the same
/// way (docs/scaling.md).
///
/// Every statement the store runs names its channel in equality (`StatementTests` checks it), so
/// each touches one partition. What changes against the plain schema: primary keys that lacked
/// the channel get it in front (a message id is unique per channel, which server-made UUIDv7 ids
/// are anyway), and foreign keys to them name the channel too. `outbox`, read in id order
/// across channels by one relay, stays one table.
enum ChannelPartitioning {
    /// The tables, in the order their rows are copied (a table after the ones it references),
    /// with their partition key.
    static let tables: [(name: String, key: String)] = [
        ("channels", "id"), ("messages", "channel_id"), ("message_edits", "channel_id"), ("reactions", "channel_id"),
        ("read_markers", "channel_id"), ("channel_members", "channel_id"), ("channel_authors", "channel_id"),
        ("channel_days", "channel_id"),
    ]

    /// What `MESSAGES_PARTITIONS` accepts.
    static let counts = 2...1024

    /// How many partitions `messages` has; nil while it is a plain table (or not there yet).
    static func partitionCount(on session: PostgresSession) async throws -> Int? {
        let rows = try await session.query(
            """
            SELECT c.relkind::text AS kind, (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = c.oid) AS partitions
            FROM pg_class c WHERE c.oid = to_regclass('messages')
            """
        ).rows
        guard let row = rows.first, try row.decode("kind", as: String.self) == "p" else { return nil }
        return try row.decode("partitions", as: Int.self)
    }

    /// The tables of `tables` that are plain tables: all of them before the first conversion,
    /// those a later migration added after it.
    static func plainTables(on session: PostgresSession) async throws -> [String] {
        let rows = try await session.query(
            "SELECT c.relname::text AS name FROM pg_class c WHERE c.oid = ANY ($1::regclass[]) AND c.relkind = 'r'",
            ["{" + tables.map(\.name).joined(separator: ",") + "}"]
        ).rows
        return try rows.map { try $0.decode("name") }
    }

    /// Turns the plain tables into partitioned ones with `count` partitions each, keeping every
    /// row, column default, check, key and index, in the caller's transaction. The store's
    /// functions take `messages` rows, so they are dropped with the old table's row type and
    /// made again from their own definitions. Generic over the tables' indexes and keys, so it
    /// carries whatever later migrations add to them.
    static func conversion(count: Int) -> String {
        precondition(counts.contains(count), "partition count out of range")
        let names = tables.map { "'\($0.name)'" }.joined(separator: ", ")
        let keys = tables.map { "'\($0.key)'" }.joined(separator: ", ")
        return """
            DO $partition$
            DECLARE
                tables text[] := ARRAY[\(names)];
                keys text[] := ARRAY[\(keys)];
                partitions integer := \(count);
                -- Tables whose primary key got the partition key in front: keys that reference them must name it too.
                widened text[] := '{}';
                signatures text[];
                functions text[];
                t text;
                k text;
                old text;
                definition text;
                item record;
            BEGIN
                -- Only the plain ones: after a conversion, a later migration's new table.
                SELECT coalesce(array_agg(u.name ORDER BY u.position), '{}'), coalesce(array_agg(u.key ORDER BY u.position), '{}')
                INTO tables, keys
                FROM unnest(tables, keys) WITH ORDINALITY AS u(name, key, position)
                JOIN pg_class c ON c.oid = to_regclass(u.name)
                WHERE c.relkind = 'r';
                IF cardinality(tables) = 0 THEN
                    RETURN;
                END IF;
                SELECT coalesce(array_agg(p.oid::regprocedure::text ORDER BY p.oid), '{}'),
                    coalesce(array_agg(pg_get_functiondef(p.oid) ORDER BY p.oid), '{}')
                INTO signatures, functions
                FROM pg_proc p
                WHERE EXISTS (
                    SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_type'::regclass
                        AND d.refobjid IN (SELECT c.reltype FROM pg_class c WHERE c.oid = ANY (tables::regclass[])));
                FOREACH definition IN ARRAY signatures LOOP
                    EXECUTE 'DROP FUNCTION ' || definition;
                END LOOP;

                FOR i IN 1 .. array_length(tables, 1) LOOP
                    t := tables[i];
                    k := keys[i];
                    old := t || '_unpartitioned';
                    EXECUTE format('ALTER TABLE %I RENAME TO %I', t, old);
                    FOR item IN
                        SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                        WHERE x.indrelid = old::regclass
                    LOOP
                        -- Postgres would cut a longer name, and the copy would not find its own name.
                        IF length(item.relname || '_unpartitioned') > 63 THEN
                            RAISE EXCEPTION 'index name % is too long to be kept aside', item.relname;
                        END IF;
                        EXECUTE format('ALTER INDEX %I RENAME TO %I', item.relname, item.relname || '_unpartitioned');
                    END LOOP;
                    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY HASH (%I)',
                        t, old, k);
                    FOR p IN 0 .. partitions - 1 LOOP
                        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                            t || '_p' || p, t, partitions, p);
                    END LOOP;
                    -- Primary and unique keys; a partitioned table's must contain the partition key.
                    FOR item IN
                        SELECT regexp_replace(con.conname, '_unpartitioned$', '') AS name, con.contype,
                            pg_get_constraintdef(con.oid) AS definition,
                            EXISTS (SELECT 1 FROM pg_attribute a
                                WHERE a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey) AND a.attname = k) AS keyed
                        FROM pg_constraint con WHERE con.conrelid = old::regclass AND con.contype IN ('p', 'u')
                    LOOP
                        definition := item.definition;
                        IF NOT item.keyed THEN
                            definition := regexp_replace(definition, '^(PRIMARY KEY|UNIQUE( NULLS NOT DISTINCT)?) \\(',
                                '\\1 (' || quote_ident(k) || ', ');
                            IF item.contype = 'p' THEN widened := widened || t; END IF;
                        END IF;
                        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', t, item.name, definition);
                    END LOOP;
                    -- The other indexes, as they were.
                    FOR item IN
                        SELECT regexp_replace(c.relname, '_unpartitioned$', '') AS name, pg_get_indexdef(x.indexrelid) AS definition
                        FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                        WHERE x.indrelid = old::regclass
                            AND NOT EXISTS (SELECT 1 FROM pg_constraint con
                                WHERE con.conrelid = x.indrelid AND con.conindid = x.indexrelid AND con.contype IN ('p', 'u'))
                    LOOP
                        EXECUTE regexp_replace(item.definition, '^CREATE (UNIQUE )?INDEX \\S+ ON \\S+ ',
                            'CREATE \\1INDEX ' || quote_ident(item.name) || ' ON ' || quote_ident(t) || ' ');
                    END LOOP;
                END LOOP;

                FOREACH t IN ARRAY tables LOOP
                    EXECUTE format('INSERT INTO %I SELECT * FROM %I', t, t || '_unpartitioned');
                END LOOP;
                -- Foreign keys once every table has its rows; one to a widened key names the channel on both sides.
                FOR i IN 1 .. array_length(tables, 1) LOOP
                    t := tables[i];
                    k := keys[i];
                    FOR item IN
                        SELECT con.conname AS name, pg_get_constraintdef(con.oid) AS definition,
                            regexp_replace(con.confrelid::regclass::text, '_unpartitioned$', '') AS target
                        FROM pg_constraint con WHERE con.conrelid = (t || '_unpartitioned')::regclass AND con.contype = 'f'
                    LOOP
                        definition := regexp_replace(item.definition, '_unpartitioned\\(', '(');
                        IF item.target = ANY (widened) THEN
                            definition := regexp_replace(definition, '^FOREIGN KEY \\(([^)]*)\\) REFERENCES ([^(]+)\\(([^)]*)\\)',
                                'FOREIGN KEY (' || quote_ident(k) || ', \\1) REFERENCES \\2(channel_id, \\3)');
                        END IF;
                        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', t, item.name, definition);
                    END LOOP;
                END LOOP;

                EXECUTE (SELECT 'DROP TABLE ' || string_agg(quote_ident(n || '_unpartitioned'), ', ') FROM unnest(tables) AS n);
                FOREACH definition IN ARRAY functions LOOP
                    EXECUTE definition;
                END LOOP;
                FOREACH t IN ARRAY tables LOOP
                    EXECUTE format('ANALYZE %I', t);
                END LOOP;
            END
            $partition$;
            """
    }
}
