#if PostgreSQL
import Foundation
import NIOCore
import PostgresNIO
import SessionKit

/// The store's SQL: static, so every statement is prepared once per connection.
/// Times are `timestamptz`; `expires_at` is derived from the two deadlines and indexed.
enum PostgresStatements {
    /// The schema ``PostgresSessionStore/migrate()`` creates; recorded in `sessionkit_meta`.
    static let schemaVersion: Int64 = 3

    static let lockID: Int64 = 0x5345_5353_4B49_5431  // "SESSKIT1": serialises migrations

    static let schema = [
        """
        CREATE TABLE IF NOT EXISTS sessionkit_meta (name text PRIMARY KEY, value bigint NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS sessionkit_sessions (
            key bytea PRIMARY KEY,
            data jsonb NOT NULL,
            created_at timestamptz NOT NULL,
            last_seen_at timestamptz NOT NULL,
            idle_deadline timestamptz NOT NULL,
            absolute_deadline timestamptz NOT NULL,
            expires_at timestamptz GENERATED ALWAYS AS (LEAST(idle_deadline, absolute_deadline)) STORED,
            user_id text,
            authenticated_at timestamptz,
            persistent boolean NOT NULL,
            client_ip text,
            user_agent text,
            version bigint NOT NULL,
            device_binding text
        )
        """,
        // Version 3: a session's device binding (DBSC), apart from its values.
        "ALTER TABLE sessionkit_sessions ADD COLUMN IF NOT EXISTS device_binding text",
        "CREATE INDEX IF NOT EXISTS sessionkit_sessions_expires_at ON sessionkit_sessions (expires_at)",
        // Keys ended by a rotation or deletion, remembered until `until` (see SessionStore).
        "CREATE TABLE IF NOT EXISTS sessionkit_ended (key bytea PRIMARY KEY, until timestamptz NOT NULL)",
        "CREATE INDEX IF NOT EXISTS sessionkit_sessions_user_id ON sessionkit_sessions (user_id) WHERE user_id IS NOT NULL",
    ]

    static let columns = columns(data: "data::text")

    /// A session's columns, with `data` read as the expression given.
    static func columns(data: String) -> String {
        """
        key, \(data), created_at, last_seen_at, idle_deadline, absolute_deadline, user_id, authenticated_at, \
        persistent, client_ip, user_agent, version, device_binding
        """
    }

    /// A session's row; `data` is null only where a statement leaves it out (``Change``).
    typealias SessionRow = (ByteBuffer, String?, Date, Date, Date, Date, String?, Date?, Bool, String?, String?, Int64, String?)

    /// The session a row holds.
    static func session(_ row: SessionRow) throws -> StoredSession { try session(row, values: nil) }

    /// The session a row holds; `values` are its values when the row leaves `data` out.
    static func session(_ row: SessionRow, values known: [String: SessionValue]?) throws -> StoredSession {
        guard let values = try row.1.map({ try SessionValuesJSON.decodeObject($0.utf8) }) ?? known else {
            throw SessionStoreError(code: .corrupt, message: "unreadable session row: data is null")
        }
        guard let key = SessionStorageKey(bytes: row.0.readableBytesView) else {
            throw SessionStoreError(code: .corrupt, message: "unreadable session row: key is not a storage key")
        }
        var deviceBinding: SessionDeviceBinding?
        if let text = row.12 {
            guard let binding = SessionDeviceBinding(storedForm: text) else {
                throw SessionStoreError(code: .corrupt, message: "unreadable session row: device_binding is not a binding")
            }
            deviceBinding = binding
        }
        return StoredSession(
            key: key,
            values: values,
            createdAt: row.2,
            lastSeenAt: row.3,
            idleDeadline: row.4,
            absoluteDeadline: row.5,
            userID: row.6,
            authenticatedAt: row.7,
            isPersistent: row.8,
            client: SessionClient(ipAddress: row.9, userAgent: row.10),
            deviceBinding: deviceBinding,
            version: UInt64(row.11)
        )
    }

    static func bytes(_ key: SessionStorageKey) -> ByteBuffer { ByteBuffer(bytes: key.bytes) }

    /// A key's live session, or a row of nulls but the key when it was ended recently, in
    /// one round trip: `LIMIT 1` stops the `UNION ALL` after a live session is found, so a
    /// hit never probes the ended keys, and a miss (a made-up token) costs no second trip.
    struct LookUp: PostgresPreparedStatement {
        /// Named here: the default name is worked out by reflection on every query.
        static let name = "sessionkit_look_up"
        static let sql = """
            (SELECT \(columns) FROM sessionkit_sessions WHERE key = $1 AND expires_at > $2)
            UNION ALL
            (SELECT key, NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::text,
                NULL::timestamptz, NULL::boolean, NULL::text, NULL::text, NULL::bigint, NULL::text
             FROM sessionkit_ended WHERE key = $1 AND until > $2)
            LIMIT 1
            """
        /// The columns, all null but the key in an ended key's row.
        typealias Columns = (ByteBuffer, String?, Date?, Date?, Date?, Date?, String?, Date?, Bool?, String?, String?, Int64?, String?)
        /// A live session, or `nil` for an ended key. Decoded as each row arrives: the
        /// statement's rows then pass through the async calls as a reference, not as columns.
        typealias Row = StoredSession?
        var key: ByteBuffer
        var now: Date

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(key)
            bindings.append(now)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try Self.session(row.decode(Columns.self)) }

        /// What the statement's `rows` say of the key: a live session, an ended key, or nothing.
        static func result(_ rows: [Row]) -> SessionLoadResult {
            guard let row = rows.first else { return .absent }
            return row.map { .live($0) } ?? .ended
        }

        /// The session a row holds, or `nil` for an ended key's row.
        private static func session(_ row: Columns) throws -> StoredSession? {
            guard let data = row.1 else { return nil }
            guard let createdAt = row.2, let lastSeenAt = row.3, let idleDeadline = row.4, let absoluteDeadline = row.5,
                let persistent = row.8, let version = row.11
            else { throw SessionStoreError(code: .corrupt, message: "unreadable session row: a required column is null") }
            return try PostgresStatements.session(
                (
                    row.0, data, createdAt, lastSeenAt, idleDeadline, absoluteDeadline, row.6, row.7, persistent, row.9, row.10, version,
                    row.12
                )
            )
        }
    }

    struct Insert: PostgresPreparedStatement {
        static let name = "sessionkit_insert"
        static let sql = """
            INSERT INTO sessionkit_sessions (key, data, created_at, last_seen_at, idle_deadline, absolute_deadline,
                user_id, authenticated_at, persistent, client_ip, user_agent, version, device_binding)
            VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            """
        typealias Row = Void
        var session: StoredSession
        var data: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 13)
            bindings.append(bytes(session.key))
            bindings.append(data)
            bindings.append(session.createdAt)
            bindings.append(session.lastSeenAt)
            bindings.append(session.idleDeadline)
            bindings.append(session.absoluteDeadline)
            bindings.append(session.userID)
            bindings.append(session.authenticatedAt)
            bindings.append(session.isPersistent)
            bindings.append(session.client.ipAddress)
            bindings.append(session.client.userAgent)
            bindings.append(Int64(session.version))
            bindings.append(session.deviceBinding?.storedForm)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }

    /// Sets a session's device binding when it is `$4` (NULL: not bound).
    struct BindDevice: PostgresPreparedStatement {
        static let name = "sessionkit_bind_device"
        static let sql = """
            UPDATE sessionkit_sessions SET device_binding = $2, version = version + 1
            WHERE key = $1 AND expires_at > $3 AND device_binding IS NOT DISTINCT FROM $4::text
            RETURNING \(columns)
            """
        typealias Row = SessionRow
        var key: ByteBuffer
        var binding: String
        var now: Date
        var expected: String?

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            bindings.append(key)
            bindings.append(binding)
            bindings.append(now)
            bindings.append(expected)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// A change of one session, as ``Apply`` and ``Rotate`` send it: per-key changes with `-`
    /// and `||` on top-level keys, metadata replaced where given, an optional version
    /// condition, and the size limit on the result. `data` is left out of the row (null) when
    /// the session was at version `$16`, whose values the caller holds. ``Rotate`` adds `$17`.
    struct Change: Sendable {
        /// The `UPDATE` both statements make, returning the changed session's columns.
        /// `$2` is the new key of a rotation (null: the key stays).
        static let update = """
            UPDATE sessionkit_sessions SET
                key = coalesce($2::bytea, key),
                data = (data - $3::text[]) || $4::jsonb,
                last_seen_at = coalesce($5::timestamptz, last_seen_at),
                idle_deadline = coalesce($6::timestamptz, idle_deadline),
                absolute_deadline = coalesce($7::timestamptz, absolute_deadline),
                persistent = coalesce($8::boolean, persistent),
                user_id = coalesce($9::text, user_id),
                authenticated_at = coalesce($10::timestamptz, authenticated_at),
                client_ip = CASE WHEN $9::text IS NULL THEN client_ip ELSE $11::text END,
                user_agent = CASE WHEN $9::text IS NULL THEN user_agent ELSE $12::text END,
                version = version + 1
            WHERE key = $1 AND expires_at > $13 AND ($14::bigint IS NULL OR version = $14::bigint)
                AND octet_length(((data - $3::text[]) || $4::jsonb)::text) <= $15
            RETURNING \(columns(data: "CASE WHEN version = $16::bigint + 1 THEN NULL ELSE data::text END"))
            """

        var key: SessionStorageKey
        var newKey: SessionStorageKey?
        var removed: [String]
        var set: String
        var changes: SessionChanges
        var now: Date
        var expectedVersion: UInt64?
        var maxSessionBytes: Int
        /// Until when a rotation remembers the old key as ended (`$17`); only ``Rotate`` sends it.
        var rememberEndedUntil: Date?
        /// The session as the caller read it, if it did: when the stored session was still
        /// at its version, the row leaves the values out, and they are `read`'s with `changes` applied.
        var read: StoredSession?

        /// Whether this is a rotation, which ``Rotate`` sends; ``Apply`` sends the rest.
        var movesKey: Bool { newKey != nil || rememberEndedUntil != nil }

        /// The bindings of ``update``, and `$17` when `remembering` (``Rotate``'s).
        func makeBindings(remembering: Bool) -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 17)
            bindings.append(bytes(key))
            bindings.append(newKey.map(bytes))
            bindings.append(removed)
            bindings.append(set)
            bindings.append(changes.lastSeenAt)
            bindings.append(changes.idleDeadline)
            bindings.append(changes.absoluteDeadline)
            bindings.append(changes.isPersistent)
            bindings.append(changes.authentication?.userID)
            bindings.append(changes.authentication?.authenticatedAt)
            bindings.append(changes.authentication?.client.ipAddress)
            bindings.append(changes.authentication?.client.userAgent)
            bindings.append(now)
            bindings.append(expectedVersion.map { Int64($0) })
            bindings.append(Int64(maxSessionBytes))
            bindings.append(read.map { Int64($0.version) })
            // A parameter the statement does not name has no type PostgreSQL could work out.
            if remembering { bindings.append(rememberEndedUntil) }
            return bindings
        }

        /// The changed session, decoded as the row arrives.
        func decodeRow(_ row: PostgresRow) throws -> StoredSession {
            let columns = try row.decode(SessionRow.self)
            var known = columns.1 == nil ? read : nil
            known?.apply(changes)
            return try PostgresStatements.session(columns, values: known?.values)
        }
    }

    /// A statement that sends a ``Change``; `remembers`: whether it takes `$17`.
    protocol ChangeStatement: PostgresPreparedStatement where Row == StoredSession {
        static var remembers: Bool { get }
        var change: Change { get }
    }

    /// A change that keeps the key: the request path's write. Its own statement, without
    /// ``Rotate``'s common table expressions: PostgreSQL runs a data-modifying `WITH` for
    /// every call. In three runs of `Scripts/bench-sql` it cost a plain change 8%, 16% and
    /// (within the noise) -2% more of the database's time.
    struct Apply: ChangeStatement {
        static let name = "sessionkit_apply"
        static let sql = Change.update
        static let remembers = false
        var change: Change
    }

    /// A change that moves the session to a new key and remembers the old one as ended until
    /// `$17`, in the same statement.
    struct Rotate: ChangeStatement {
        static let name = "sessionkit_rotate"
        static let sql = """
            WITH changed AS (\(Change.update)),
            remembered AS (
                INSERT INTO sessionkit_ended (key, until) SELECT $1, $17::timestamptz FROM changed WHERE $17::timestamptz IS NOT NULL
                ON CONFLICT (key) DO UPDATE SET until = excluded.until)
            SELECT * FROM changed
            """
        static let remembers = true
        var change: Change
    }

    /// Why a change touched no row.
    struct Version: PostgresPreparedStatement {
        static let name = "sessionkit_version"
        static let sql = "SELECT version FROM sessionkit_sessions WHERE key = $1 AND expires_at > $2"
        typealias Row = Int64
        var key: ByteBuffer
        var now: Date

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(key)
            bindings.append(now)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Int64.self) }
    }

    /// Deletes a session and, when there was one, remembers its key as ended until `$2`.
    struct Delete: PostgresPreparedStatement {
        static let name = "sessionkit_delete"
        static let sql = """
            WITH deleted AS (DELETE FROM sessionkit_sessions WHERE key = $1 RETURNING key)
            INSERT INTO sessionkit_ended (key, until) SELECT key, $2 FROM deleted
            ON CONFLICT (key) DO UPDATE SET until = excluded.until
            """
        typealias Row = Void
        var key: ByteBuffer
        var rememberEndedUntil: Date

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(key)
            bindings.append(rememberEndedUntil)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }

    struct UserSessions: PostgresPreparedStatement {
        static let name = "sessionkit_user_sessions"
        static let sql = "SELECT \(columns) FROM sessionkit_sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY last_seen_at DESC"
        typealias Row = SessionRow
        var userID: String
        var now: Date

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(userID)
            bindings.append(now)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    struct DeleteUserSessions: PostgresPreparedStatement {
        static let name = "sessionkit_delete_user_sessions"
        static let sql = "DELETE FROM sessionkit_sessions WHERE user_id = $1 AND ($2::bytea IS NULL OR key <> $2::bytea) RETURNING key"
        typealias Row = ByteBuffer
        var userID: String
        var kept: ByteBuffer?

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(userID)
            bindings.append(kept)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(ByteBuffer.self) }
    }

    /// One bounded batch; `SKIP LOCKED` lets purgers on several replicas share the work
    /// without waiting on each other or deleting a row twice.
    struct PurgeBatch: PostgresPreparedStatement {
        static let name = "sessionkit_purge_batch"
        static let sql = """
            DELETE FROM sessionkit_sessions WHERE key IN
                (SELECT key FROM sessionkit_sessions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
            RETURNING key, user_id
            """
        typealias Row = (ByteBuffer, String?)
        var now: Date
        var limit: Int64

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(now)
            bindings.append(limit)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// Forgets ended keys whose time has passed.
    struct ForgetEnded: PostgresPreparedStatement {
        static let name = "sessionkit_forget_ended"
        static let sql = "DELETE FROM sessionkit_ended WHERE until <= $1"
        typealias Row = Void
        var now: Date

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(now)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }

    struct ByHandle: PostgresPreparedStatement {
        static let name = "sessionkit_by_handle"
        static let sql = "SELECT \(columns) FROM sessionkit_sessions WHERE key BETWEEN $1 AND $2 AND expires_at > $3 LIMIT 1"
        typealias Row = SessionRow
        var low: ByteBuffer
        var high: ByteBuffer
        var now: Date

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 3)
            bindings.append(low)
            bindings.append(high)
            bindings.append(now)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }
}

extension PostgresStatements.ChangeStatement {
    func makeBindings() throws -> PostgresBindings { change.makeBindings(remembering: Self.remembers) }
    func decodeRow(_ row: PostgresRow) throws -> StoredSession { try change.decodeRow(row) }
}
#endif
