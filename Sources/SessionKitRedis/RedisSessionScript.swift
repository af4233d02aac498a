#if Redis
/// The store's one Lua script. Every operation touches only the keys it is given, and
/// those keys share one hash slot, so the same script serves a single node and a cluster.
///
/// `ARGV[1]` names the operation; `ARGV[2]` is the key prefix, `ARGV[3]` the grace period
/// (milliseconds) added to the deadline for the native expiry backstop, `ARGV[4]` now
/// (microseconds), `ARGV[5]` until when a session the operation ends is remembered as
/// ended (microseconds), or '' when it ends none. Checks come before writes: a script that
/// refuses changes nothing.
///
/// An ended session's hash is replaced by one field, `m:ended` (until when it is
/// remembered), expiring natively at that time: a load tells it from an unknown key, and
/// every operation treats it as absent.
///
/// Session operations take one session hash as `KEYS[1]`. Index operations take a user's
/// two sorted sets as `KEYS[1]` (member → deadline) and `KEYS[2]` (member → last seen); a
/// deadline score of `-1` marks a session being revoked (see ``RedisSessionStore``).
enum RedisSessionScript {
    /// The deadline score that marks an index entry revoked; the script uses the same value.
    static let revokedScore: Int64 = -1

    static let script = RedisScript(
        #"""
        local op, prefix, grace, now, endedUntil = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
        local REVOKED = \#(revokedScore)

        -- A session hash as a table of its fields, read with one call (each redis.call
        -- costs microseconds, so the script reads once, writes once and answers from the
        -- table); nil when the key is absent.
        local function read(key)
          local all = redis.call('HGETALL', key)
          if #all == 0 then return nil end
          local record = {}
          for k = 1, #all, 2 do record[all[k]] = all[k + 1] end
          return record
        end
        local function flatten(record)
          local flat = {}
          for field, value in pairs(record) do flat[#flat + 1] = field; flat[#flat + 1] = value end
          return flat
        end
        local function deadline(record)
          local idle, abs = tonumber(record['m:idle']), tonumber(record['m:abs'])
          if not idle or not abs then return nil end
          return math.min(idle, abs)
        end
        local function live(record)
          local d = record and deadline(record)
          return d ~= nil and d > now
        end
        -- Replaces a session by the mark that it ended, when the operation names a time.
        local function markEnded(key)
          redis.call('DEL', key)
          if endedUntil == '' or tonumber(endedUntil) <= now then return end
          redis.call('HSET', key, 'm:ended', endedUntil)
          redis.call('PEXPIREAT', key, math.floor(tonumber(endedUntil) / 1000) + 1)
        end
        -- Native expiry as a backstop only; expiry is judged against now.
        local function expire(key, record)
          redis.call('PEXPIREAT', key, math.floor(deadline(record) / 1000) + grace)
        end
        -- Changes: count and names removed, count and name/value pairs set, count and metadata pairs.
        local function parse(i)
          local c = {removed = {}, set = {}, meta = {}}
          local n = tonumber(ARGV[i]); i = i + 1
          for _ = 1, n do c.removed[#c.removed + 1] = ARGV[i]; i = i + 1 end
          n = tonumber(ARGV[i]); i = i + 1
          for _ = 1, n do c.set[#c.set + 1] = {ARGV[i], ARGV[i + 1]}; i = i + 2 end
          n = tonumber(ARGV[i]); i = i + 1
          for _ = 1, n do c.meta[#c.meta + 1] = {ARGV[i], ARGV[i + 1]}; i = i + 2 end
          return c
        end
        local function fits(record, c, max)
          local sizes = {}
          for field, value in pairs(record) do
            if string.sub(field, 1, 2) == 'v:' then sizes[field] = #value end
          end
          for _, name in ipairs(c.removed) do sizes[name] = nil end
          for _, pair in ipairs(c.set) do sizes[pair[1]] = #pair[2] end
          local total = 0
          for _, size in pairs(sizes) do total = total + size end
          return total <= max
        end
        -- The change as far as it can be checked: live, at the version, within the size limit.
        local function changeable(record, version, max, c)
          if not live(record) then return 'MISSING' end
          if version ~= '' and record['m:ver'] ~= version then return 'CONFLICT' end
          if not fits(record, c, max) then return 'TOOLARGE' end
          return nil
        end
        -- Applies the changes to the stored hash (one HDEL, one HSET) and to the table.
        local function apply(key, record, c)
          if #c.removed > 0 then
            redis.call('HDEL', key, unpack(c.removed))
            for _, name in ipairs(c.removed) do record[name] = nil end
          end
          record['m:ver'] = tostring(tonumber(record['m:ver'] or '0') + 1)
          local written = {'m:ver', record['m:ver']}
          for _, list in ipairs({c.set, c.meta}) do
            for _, pair in ipairs(list) do
              record[pair[1]] = pair[2]
              written[#written + 1] = pair[1]; written[#written + 1] = pair[2]
            end
          end
          redis.call('HSET', key, unpack(written))
        end
        -- A user's index entry follows its session's deadline and last-seen time upwards;
        -- an entry marked revoked keeps its mark.
        local function refresh(deadlines, seen, member, d, last)
          local score = redis.call('ZSCORE', deadlines, member)
          if not score or tonumber(score) == REVOKED then return end
          if tonumber(score) < tonumber(d) then redis.call('ZADD', deadlines, d, member) end
          local previous = redis.call('ZSCORE', seen, member)
          if not previous or tonumber(previous) < tonumber(last) then redis.call('ZADD', seen, last, member) end
        end

        if op == 'insert' then
          -- KEYS[1] the new session; ARGV[6..] field/value pairs.
          if redis.call('EXISTS', KEYS[1]) == 1 then return {'DUPLICATE'} end
          redis.call('HSET', KEYS[1], unpack(ARGV, 6))
          local record = {}
          for i = 6, #ARGV - 1, 2 do record[ARGV[i]] = ARGV[i + 1] end
          expire(KEYS[1], record)
          return {'OK'}
        elseif op == 'change' then
          -- KEYS[1] the session; ARGV[6] the expected version or '', ARGV[7] the size limit,
          -- ARGV[8] the user index prefix when the index may be refreshed here (one node) or
          -- '', ARGV[9..] the changes.
          local c = parse(9)
          local record = read(KEYS[1])
          local refused = changeable(record, ARGV[6], tonumber(ARGV[7]), c)
          if refused then return {refused} end
          apply(KEYS[1], record, c)
          expire(KEYS[1], record)
          local user = record['m:user']
          if user and ARGV[8] ~= '' then
            local member = string.sub(KEYS[1], #prefix + 3)
            local index = ARGV[8] .. user .. '}'
            refresh(index, index .. 'l', member, deadline(record), record['m:last'])
          end
          return {'OK', flatten(record)}
        elseif op == 'freeze' or op == 'move' then
          -- freeze: KEYS[1] the session to move; ARGV[6] the size limit, ARGV[7..] the
          -- changes. Applies the changes, returns the result and the user it had before,
          -- and leaves the mark that the session ended.
          -- move (one server only, where KEYS[2] may sit in another slot): the whole
          -- rotation of a session without a user in one step; answers INDEXED for a
          -- session with one, which needs its index steps in between.
          local c = parse(7)
          local record = read(KEYS[1])
          local refused = changeable(record, '', tonumber(ARGV[6]), c)
          if refused then return {refused} end
          local previousUser = record['m:user'] or ''
          if op == 'move' then
            if redis.call('EXISTS', KEYS[2]) == 1 then return {'DUPLICATE'} end
            if previousUser ~= '' then return {'INDEXED'} end
            for _, pair in ipairs(c.meta) do
              if pair[1] == 'm:user' then return {'INDEXED'} end
            end
          end
          apply(KEYS[1], record, c)
          local moved = flatten(record)
          if op == 'move' then
            redis.call('RENAME', KEYS[1], KEYS[2])
            expire(KEYS[2], record)
            markEnded(KEYS[1])
            return {'OK', moved, ''}
          end
          markEnded(KEYS[1])
          return {'OK', moved, previousUser}
        elseif op == 'bind' then
          -- KEYS[1] the session; ARGV[6] its device binding as expected ('' for none),
          -- ARGV[7] the new one. Sets it and raises the version when it is as expected.
          local record = read(KEYS[1])
          if not live(record) then return {'MISSING'} end
          if (record['m:bind'] or '') ~= ARGV[6] then return {'CONFLICT'} end
          record['m:bind'] = ARGV[7]
          record['m:ver'] = tostring(tonumber(record['m:ver'] or '0') + 1)
          redis.call('HSET', KEYS[1], 'm:bind', ARGV[7], 'm:ver', record['m:ver'])
          return {'OK', flatten(record)}
        elseif op == 'take' then
          -- KEYS[1] a session; ARGV[6] its expected user or ''. Deletes it and returns it.
          local record = read(KEYS[1])
          if not record or record['m:ended'] then return {'OK', {}} end
          if ARGV[6] ~= '' and record['m:user'] ~= ARGV[6] then return {'OK', {}} end
          markEnded(KEYS[1])
          return {'OK', flatten(record)}
        elseif op == 'claim' then
          -- KEYS[1..2] the user's index; ARGV[6] the new member, ARGV[7] the member it
          -- replaces or '', ARGV[8] a deadline for the entry until it is confirmed,
          -- ARGV[9] its last-seen time. ARGV[10] is 'check' when a session limit was
          -- decided (in Swift) on the index as read: then ARGV[11] counts the other live
          -- entries that decision saw, they follow, and after them the entries to evict.
          -- Answers CHANGED, writing nothing, when the other live entries are no longer
          -- those; otherwise marks the evicted entries revoked and returns each with the
          -- deadline it had.
          local new, old = ARGV[6], ARGV[7]
          if old ~= '' and tonumber(redis.call('ZSCORE', KEYS[1], old) or 0) == REVOKED then return {'REVOKED'} end
          local victims = {}
          if ARGV[10] == 'check' then
            local n = tonumber(ARGV[11])
            local seen = {}
            for i = 12, 11 + n do seen[ARGV[i]] = true end
            local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
            local count = 0
            for k = 1, #entries, 2 do
              local m = entries[k]
              if m ~= new and m ~= old and tonumber(entries[k + 1]) > now then
                if not seen[m] then return {'CHANGED'} end
                count = count + 1
              end
            end
            if count ~= n then return {'CHANGED'} end
            for i = 12 + n, #ARGV do
              victims[#victims + 1] = ARGV[i]
              victims[#victims + 1] = redis.call('ZSCORE', KEYS[1], ARGV[i])
              redis.call('ZADD', KEYS[1], REVOKED, ARGV[i])
            end
          end
          redis.call('ZADD', KEYS[1], ARGV[8], new)
          redis.call('ZADD', KEYS[2], ARGV[9], new)
          return {'OK', victims}
        elseif op == 'confirm' then
          -- KEYS[1..2] the user's index; ARGV[6] a member claimed earlier, ARGV[7] its
          -- deadline, ARGV[8] its last-seen time. Answers REVOKED when it was revoked
          -- (marked or removed) since the claim.
          local score = redis.call('ZSCORE', KEYS[1], ARGV[6])
          if not score or tonumber(score) == REVOKED then return {'REVOKED'} end
          redis.call('ZADD', KEYS[1], ARGV[7], ARGV[6])
          redis.call('ZADD', KEYS[2], ARGV[8], ARGV[6])
          return {'OK'}
        elseif op == 'restore' then
          -- KEYS[1..2] the user's index; ARGV[6] a member whose claim failed, ARGV[7..]
          -- member/deadline pairs the claim marked revoked, to unmark.
          redis.call('ZREM', KEYS[1], ARGV[6])
          redis.call('ZREM', KEYS[2], ARGV[6])
          for i = 7, #ARGV - 1, 2 do
            if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]) or 0) == REVOKED then
              redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
            end
          end
          return {'OK'}
        elseif op == 'refresh' then
          -- KEYS[1..2] the user's index; ARGV[6] the member, ARGV[7] its deadline, ARGV[8] last seen.
          refresh(KEYS[1], KEYS[2], ARGV[6], ARGV[7], ARGV[8])
          return {'OK'}
        elseif op == 'revoke' then
          -- KEYS[1] the user's deadlines; ARGV[6] the member kept or ''. Marks every other
          -- entry revoked and returns them.
          local marked = {}
          for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
            if m ~= ARGV[6] then
              marked[#marked + 1] = m
              redis.call('ZADD', KEYS[1], REVOKED, m)
            end
          end
          return {'OK', marked}
        elseif op == 'forget' then
          -- KEYS[1..2] the user's index; ARGV[6..] members to remove.
          if #ARGV >= 6 then
            redis.call('ZREM', KEYS[1], unpack(ARGV, 6))
            redis.call('ZREM', KEYS[2], unpack(ARGV, 6))
          end
          return {'OK'}
        end
        return redis.error_reply('unknown operation ' .. tostring(op))
        """#
    )
}
#endif
