#if Redis
/// The store's Lua scripts, one per operation. Each touches only the keys it is given, and
/// those keys share one hash slot (except ``move``, which runs on one server only), so the
/// same scripts serve a single node and a cluster. Each checks before it writes: a script
/// that refuses changes nothing. The invariants they keep are listed in the SessionKitRedis
/// documentation ("The Redis store's invariants").
///
/// Times are microseconds since 1970, as the store writes them. A session hash holds values
/// as `v:NAME` and metadata as `m:…`; an ended session's hash is the one field `m:ended`
/// (until when it is remembered), which every script treats as absent.
///
/// A user's index is one sorted set: member the session key's hex, score the session's
/// deadline as last recorded there (it may lag behind the session's, see
/// ``RedisSessionStore``), or ``revokedScore`` for a session being revoked.
enum RedisSessionScript {
    /// The deadline score that marks an index entry revoked; the scripts use the same value.
    static let revokedScore: Int64 = -1

    // MARK: Session scripts

    /// Applies a change to a live session.
    ///
    /// `KEYS[1]` the session; `ARGV[1]` now, `ARGV[2]` the expiry grace (milliseconds),
    /// `ARGV[3]` the expected version or `''`, `ARGV[4]` the version the caller read or
    /// `''`, then the change (see ``changeFunction``). Answers `MISSING`, `CONFLICT`,
    /// `TOOLARGE`, or `OK` and the session as written; or `KNOWN` alone when the session
    /// was live at `ARGV[4]` (and at `ARGV[3]`, if given), the change is written, and the
    /// caller works the session out from what it read.
    ///
    /// That first case is the request path's, and it reads three fields, not the hash: the
    /// caller has checked the size against the values it read, which are the values
    /// stored at that version (every write raises it). It comes before the shared
    /// functions, so that a call that takes it defines none (about 2 us of Redis CPU per
    /// call), and spells out their expiry rules instead: live while the earlier deadline
    /// is after now, and `PEXPIREAT` at that deadline plus the grace, as `live` and
    /// `expire` have them (only when the change moves a deadline: otherwise the expiry set
    /// with them stands).
    static let change = RedisScript(
        #"""
        local known = ARGV[4]
        if known ~= '' and (ARGV[3] == '' or ARGV[3] == known) then
          local stored = redis.call('HMGET', KEYS[1], 'm:idle', 'm:abs', 'm:ver')
          local idle, abs = tonumber(stored[1]), tonumber(stored[2])
          if stored[3] == known and idle and abs and math.min(idle, abs) > tonumber(ARGV[1]) then
            local removedCount = tonumber(ARGV[6])
            if removedCount > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 7, 6 + removedCount)) end
            local written, moved = {'m:ver', tostring(tonumber(known) + 1)}, false
            for i = 7 + removedCount, #ARGV - 1, 2 do
              if ARGV[i] == 'm:idle' then idle = tonumber(ARGV[i + 1]); moved = true end
              if ARGV[i] == 'm:abs' then abs = tonumber(ARGV[i + 1]); moved = true end
              written[#written + 1] = ARGV[i]; written[#written + 1] = ARGV[i + 1]
            end
            redis.call('HSET', KEYS[1], unpack(written))
            if moved then redis.call('PEXPIREAT', KEYS[1], math.floor(math.min(idle, abs) / 1000) + tonumber(ARGV[2])) end
            return {'KNOWN'}
          end
        end

        """# + changeFunction + expireFunction + #"""
            local change, refused = prepare(KEYS[1], tonumber(ARGV[1]), ARGV[3], 5)
            if refused then return {refused} end
            write(KEYS[1], change)
            expire(KEYS[1], change.fields, tonumber(ARGV[2]))
            return {'OK', change.flat}
            """#)

    /// Applies a change to a live session and ends it, leaving the mark that it ended: the
    /// first step of a rotation whose new key may sit in another slot.
    ///
    /// `KEYS[1]` the session; `ARGV[1]` now, `ARGV[2]` until when it is remembered as ended
    /// (or `''`), then the change. Answers `MISSING`, `TOOLARGE`, or `OK`, the session as
    /// changed and the user it had before (or `''`).
    static let freeze = RedisScript(
        changeFunction + markEndedFunction + #"""
            local now = tonumber(ARGV[1])
            local change, refused = prepare(KEYS[1], now, '', 3)
            if refused then return {refused} end
            markEnded(KEYS[1], ARGV[2], now)
            return {'OK', change.flat, change.previousUser}
            """#)

    /// The whole rotation of a session without a user, in one step: on one server only,
    /// where the new key may sit in another slot.
    ///
    /// `KEYS[1]` the session, `KEYS[2]` its new key; `ARGV[1]` now, `ARGV[2]` the expiry
    /// grace, `ARGV[3]` until when the old key is remembered as ended (or `''`), then the
    /// change. Answers `DUPLICATE` when the new key is taken, `INDEXED` and the user for a
    /// session that has one (its rotation needs the index's steps in between), `MISSING`,
    /// `TOOLARGE`, or `OK` and the session as moved.
    static let move = RedisScript(
        changeFunction + markEndedFunction + expireFunction + #"""
            local now = tonumber(ARGV[1])
            local change, refused = prepare(KEYS[1], now, '', 4)
            if refused then return {refused} end
            if redis.call('EXISTS', KEYS[2]) == 1 then return {'DUPLICATE'} end
            if change.fields['m:user'] then return {'INDEXED', change.fields['m:user']} end
            write(KEYS[1], change)
            redis.call('RENAME', KEYS[1], KEYS[2])
            expire(KEYS[2], change.fields, tonumber(ARGV[2]))
            markEnded(KEYS[1], ARGV[3], now)
            return {'OK', change.flat}
            """#)

    /// Stores a new session unless anything is stored under its key.
    ///
    /// `KEYS[1]` the session; `ARGV[1]` when Redis may expire it (milliseconds), then its
    /// field/value pairs. Answers `DUPLICATE` or `OK`.
    static let insert = RedisScript(
        #"""
        if redis.call('EXISTS', KEYS[1]) == 1 then return {'DUPLICATE'} end
        redis.call('HSET', KEYS[1], unpack(ARGV, 2))
        redis.call('PEXPIREAT', KEYS[1], ARGV[1])
        return {'OK'}
        """#)

    /// Sets a live session's device binding when it is as expected, raising its version.
    ///
    /// `KEYS[1]` the session; `ARGV[1]` now, `ARGV[2]` the binding expected (`''` for none),
    /// `ARGV[3]` the new one. Answers `MISSING`, `CONFLICT`, or `OK` and the session as written.
    static let bind = RedisScript(
        liveFunction + #"""
            local record = read(KEYS[1])
            if not live(record, tonumber(ARGV[1])) then return {'MISSING'} end
            if (record['m:bind'] or '') ~= ARGV[2] then return {'CONFLICT'} end
            local version = tostring((tonumber(record['m:ver']) or 0) + 1)
            redis.call('HSET', KEYS[1], 'm:bind', ARGV[3], 'm:ver', version)
            local flat = {}
            record['m:bind'] = ARGV[3]
            record['m:ver'] = version
            for field, value in pairs(record) do flat[#flat + 1] = field; flat[#flat + 1] = value end
            return {'OK', flat}
            """#)

    /// Deletes a session and returns it; with an expected user, only when it is theirs.
    ///
    /// `KEYS[1]` the session; `ARGV[1]` now, `ARGV[2]` until when it is remembered as ended
    /// (or `''`), `ARGV[3]` the expected user or `''`. Answers `OK` and the session's fields
    /// (empty when nothing was deleted).
    static let take = RedisScript(
        markEndedFunction + #"""
            local all = redis.call('HGETALL', KEYS[1])
            local user
            for k = 1, #all, 2 do
              if all[k] == 'm:ended' then return {'OK', {}} end
              if all[k] == 'm:user' then user = all[k + 1] end
            end
            if #all == 0 or (ARGV[3] ~= '' and user ~= ARGV[3]) then return {'OK', {}} end
            markEnded(KEYS[1], ARGV[2], tonumber(ARGV[1]))
            return {'OK', all}
            """#)

    // MARK: Index scripts

    /// Claims an entry in a user's index before its session is written, enforcing a limit
    /// decided on the index as read.
    ///
    /// `KEYS[1]` the index; `ARGV[1]` the new member, `ARGV[2]` the member it replaces or
    /// `''`, `ARGV[3]` the new entry's deadline until it is confirmed. `ARGV[4]` is `check`
    /// when a limit was decided (in Swift) on the index as read: then `ARGV[5]` counts the
    /// other entries not marked revoked that the decision saw, they follow, and after them
    /// the entries to evict. Answers `REVOKED` when the replaced entry is being revoked,
    /// `CHANGED` (writing nothing) when the other entries are no longer those seen, or `OK`
    /// and each evicted entry, now marked revoked, with the deadline it had.
    static let claim = RedisScript(
        #"""
        local new, old = ARGV[1], ARGV[2]
        local REVOKED = \#(revokedScore)
        if old ~= '' and tonumber(redis.call('ZSCORE', KEYS[1], old) or 0) == REVOKED then return {'REVOKED'} end
        local victims = {}
        if ARGV[4] == 'check' then
          local n = tonumber(ARGV[5])
          local seen = {}
          for i = 6, 5 + n do seen[ARGV[i]] = true end
          local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
          local count = 0
          for k = 1, #entries, 2 do
            local m = entries[k]
            if m ~= new and m ~= old and tonumber(entries[k + 1]) ~= REVOKED then
              if not seen[m] then return {'CHANGED'} end
              count = count + 1
            end
          end
          if count ~= n then return {'CHANGED'} end
          for i = 6 + n, #ARGV do
            victims[#victims + 1] = ARGV[i]
            victims[#victims + 1] = redis.call('ZSCORE', KEYS[1], ARGV[i])
            redis.call('ZADD', KEYS[1], REVOKED, ARGV[i])
          end
        end
        redis.call('ZADD', KEYS[1], ARGV[3], new)
        return {'OK', victims}
        """#)

    /// Records an entry's deadline, unless the entry was revoked (marked or removed); first
    /// removes the entry of the session it replaces, if any.
    ///
    /// `KEYS[1]` the index; `ARGV[1]` the member, `ARGV[2]` its deadline, `ARGV[3]` the
    /// member to remove or `''`. Answers `REVOKED` or `OK`.
    static let record = RedisScript(
        #"""
        if ARGV[3] ~= '' then redis.call('ZREM', KEYS[1], ARGV[3]) end
        local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if not score or tonumber(score) == \#(revokedScore) then return {'REVOKED'} end
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
        return {'OK'}
        """#)

    /// Undoes a claim whose sign-in failed: removes its entry and unmarks its victims.
    ///
    /// `KEYS[1]` the index; `ARGV[1]` the claimed member, then member/deadline pairs the
    /// claim marked revoked. Answers `OK`.
    static let restore = RedisScript(
        #"""
        redis.call('ZREM', KEYS[1], ARGV[1])
        for i = 2, #ARGV - 1, 2 do
          if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]) or 0) == \#(revokedScore) then
            redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
          end
        end
        return {'OK'}
        """#)

    /// Marks every entry of a user's index but one revoked, and returns them.
    ///
    /// `KEYS[1]` the index; `ARGV[1]` the member kept or `''`. Answers `OK` and the members.
    static let revoke = RedisScript(
        #"""
        local marked = {}
        for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
          if m ~= ARGV[1] then
            marked[#marked + 1] = m
            redis.call('ZADD', KEYS[1], \#(revokedScore), m)
          end
        end
        return {'OK', marked}
        """#)

    // MARK: Shared Lua

    /// `read(key)`: a session hash as a table of its fields, `nil` when absent; and
    /// `live(record, now)`: whether it is a session (not an ended mark) whose deadline is after now.
    private static let liveFunction = #"""
        local function read(key)
          local all = redis.call('HGETALL', key)
          if #all == 0 then return nil end
          local record = {}
          for k = 1, #all, 2 do record[all[k]] = all[k + 1] end
          return record
        end
        local function live(record, now)
          if not record then return false end
          local idle, abs = tonumber(record['m:idle']), tonumber(record['m:abs'])
          return idle ~= nil and abs ~= nil and math.min(idle, abs) > now
        end

        """#

    /// `prepare(key, now, expectedVersion, first)`: checks a change to a live session and
    /// works out the session after it, writing nothing. The change's arguments start at
    /// `ARGV[first]`: the size limit (bytes of values), how many value fields are removed,
    /// their names, then field/value pairs to set (values `v:NAME`, metadata `m:NAME`).
    ///
    /// Returns `nil` and `MISSING`, `CONFLICT` or `TOOLARGE` when the change is refused;
    /// otherwise the change as a table: `fields` and `flat` (the session after it, as a
    /// table and as field/value pairs), `previousUser` (its user before it, or `''`), and
    /// what `write(key, change)` stores (one `HDEL`, one `HSET` with the version raised).
    private static let changeFunction =
        liveFunction + #"""
            local function prepare(key, now, expected, first)
              local fields = read(key)
              if not live(fields, now) then return nil, 'MISSING' end
              if expected ~= '' and fields['m:ver'] ~= expected then return nil, 'CONFLICT' end
              local previousUser = fields['m:user'] or ''
              local max, removedCount = tonumber(ARGV[first]), tonumber(ARGV[first + 1])
              local removed = {}
              for i = first + 2, first + 1 + removedCount do
                removed[#removed + 1] = ARGV[i]
                fields[ARGV[i]] = nil
              end
              local version = tostring((tonumber(fields['m:ver']) or 0) + 1)
              fields['m:ver'] = version
              local written = {'m:ver', version}
              for i = first + 2 + removedCount, #ARGV - 1, 2 do
                fields[ARGV[i]] = ARGV[i + 1]
                written[#written + 1] = ARGV[i]; written[#written + 1] = ARGV[i + 1]
              end
              local size, flat = 0, {}
              for field, value in pairs(fields) do
                if string.sub(field, 1, 2) == 'v:' then size = size + #value end
                flat[#flat + 1] = field; flat[#flat + 1] = value
              end
              if size > max then return nil, 'TOOLARGE' end
              return {fields = fields, flat = flat, previousUser = previousUser, removed = removed, written = written}
            end
            local function write(key, change)
              if #change.removed > 0 then redis.call('HDEL', key, unpack(change.removed)) end
              redis.call('HSET', key, unpack(change.written))
            end

            """#

    /// `expire(key, fields, grace)`: Redis's own expiry, a backstop only (expiry is judged
    /// against now), `grace` milliseconds after the session's deadline.
    private static let expireFunction = #"""
        local function expire(key, fields, grace)
          local deadline = math.min(tonumber(fields['m:idle']), tonumber(fields['m:abs']))
          redis.call('PEXPIREAT', key, math.floor(deadline / 1000) + grace)
        end

        """#

    /// `markEnded(key, until, now)`: replaces a session by the mark that it ended, remembered
    /// until `until` (nothing is left when it is `''` or past).
    private static let markEndedFunction = #"""
        local function markEnded(key, endedUntil, now)
          redis.call('DEL', key)
          if endedUntil == '' or tonumber(endedUntil) <= now then return end
          redis.call('HSET', key, 'm:ended', endedUntil)
          redis.call('PEXPIREAT', key, math.floor(tonumber(endedUntil) / 1000) + 1)
        end

        """#
}

extension RedisSessionStore {
    /// The script a plain change of a session runs (`EVALSHA`), for benchmarks that send a
    /// store's commands through the client alone: `KEYS[1]` the session's hash; `ARGV` now
    /// and the expiry grace, the expected version and the version read (or `''`), the size
    /// limit, the removed value fields (counted), then the field/value pairs set.
    @_spi(Benchmarks) public static var changeScript: RedisScript { RedisSessionScript.change }
}
#endif
