import Foundation
import Postgres

/// `MembershipStore` on Postgres (`channel_members`). Each change notifies
/// `membershipNotificationChannel` with `<channel id> <user id>` in the statement that
/// makes it, so every pod hears of it once it commits.
public struct PostgresMembershipStore: MembershipStore {
    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public func role(of userID: UUID, in channelID: UUID) async throws -> ChannelRole? {
        guard let row = try await client.query(Self.selectRole, [channelID, userID]).first else { return nil }
        return try Self.role(row)
    }

    public func setRole(_ role: ChannelRole, of userID: UUID, in channelID: UUID) async throws -> Bool {
        // No row: the member already had this role, and nothing changed.
        guard let row = try await client.query(Self.upsertMember, [channelID, userID, role.rawValue]).first else {
            return false
        }
        return try row.decode("created")
    }

    public func remove(_ userID: UUID, from channelID: UUID) async throws {
        try await client.query(Self.deleteMember, [channelID, userID])
    }

    public func members(of channelID: UUID, after: UUID?, limit: Int) async throws -> [ChannelMember] {
        let rows = try await client.query(Self.selectMembers, [channelID, after, limit])
        return try rows.rows.map { row in ChannelMember(userID: try row.decode("user_id"), role: try Self.role(row)) }
    }

    /// A role the table's CHECK allows but this code does not know is a fault (a 500), never a
    /// non-member.
    private static func role(_ row: PostgresRow) throws -> ChannelRole {
        guard let role = ChannelRole(rawValue: try row.decode("role")) else { throw StoreInvariantViolation() }
        return role
    }

    static var statements: [String] { [selectRole, upsertMember, deleteMember, selectMembers] }

    static let selectRole = "SELECT role FROM channel_members WHERE channel_id = $1 AND user_id = $2"

    // created: an inserted row has the default updated_at, now() (the statement's start), while
    // an update sets a later time (clock_timestamp(), at least a microsecond past now() whatever
    // the clock does). Not xmax = 0: a partitioned table (MESSAGES_PARTITIONS) cannot return
    // system columns.
    static let upsertMember = """
        WITH changed AS (
            INSERT INTO channel_members AS m (channel_id, user_id, role) VALUES ($1, $2, $3)
            ON CONFLICT (channel_id, user_id) DO UPDATE SET role = EXCLUDED.role, updated_at = greatest(clock_timestamp(), now() + interval '1 microsecond')
                WHERE m.role <> EXCLUDED.role
            RETURNING m.channel_id, m.user_id, m.updated_at = now() AS created
        )
        SELECT created, pg_notify('\(membershipNotificationChannel)', channel_id::text || ' ' || user_id::text)
        FROM changed
        """

    static let deleteMember = """
        WITH removed AS (
            DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2 RETURNING channel_id, user_id
        )
        SELECT pg_notify('\(membershipNotificationChannel)', channel_id::text || ' ' || user_id::text)
        FROM removed
        """

    static let selectMembers = """
        SELECT user_id, role FROM channel_members
        WHERE channel_id = $1 AND ($2::uuid IS NULL OR user_id > $2)
        ORDER BY user_id LIMIT $3
        """
}
