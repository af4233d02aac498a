/// The store's one Lua script. Every write is one `EVALSHA` of it, so each is atomic on the
/// server, judges expiry by the `now` it is given, and never recreates a missing session.
///
/// `ARGV[1]` names the operation; `ARGV[2]` is the key prefix, `ARGV[3]` the grace period
/// (milliseconds) added to the deadline for the native expiry backstop, `ARGV[4]` now
/// (microseconds). Checks come before writes: a script that refuses changes nothing.
/// Single-node only: it touches user-index and session keys it computes.
enum RedisSessionScript {
    static let script = RedisScript(
        #"""
        local op, prefix, grace, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

        local function deadline(key)
          local idle = redis.call('HGET', key, 'm:idle')
          if not idle then return nil end
          local abs = redis.call('HGET', key, 'm:abs')
          if tonumber(abs) < tonumber(idle) then return abs end
          return idle
        end
        local function live(key)
          local d = deadline(key)
          return d ~= nil and tonumber(d) > now
        end
        local function member(key) return string.sub(key, #prefix + 3) end
        local function index(user) return prefix .. 'u:' .. user end
        -- Native expiry as a backstop, and the user's index scored by expiry.
        local function settle(key, previousUser)
          local d = deadline(key)
          redis.call('PEXPIREAT', key, math.floor(tonumber(d) / 1000) + grace)
          local user = redis.call('HGET', key, 'm:user')
          if user then redis.call('ZADD', index(user), d, member(key)) end
          if previousUser and previousUser ~= user then redis.call('ZREM', index(previousUser), member(key)) end
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
        local function fits(key, c, max)
          local sizes = {}
          local all = redis.call('HGETALL', key)
          for k = 1, #all, 2 do
            if string.sub(all[k], 1, 2) == 'v:' then sizes[all[k]] = #all[k + 1] end
          end
          for _, name in ipairs(c.removed) do sizes[name] = nil end
          for _, pair in ipairs(c.set) do sizes[pair[1]] = #pair[2] end
          local total = 0
          for _, size in pairs(sizes) do total = total + size end
          return total <= max
        end
        local function apply(key, c)
          if #c.removed > 0 then redis.call('HDEL', key, unpack(c.removed)) end
          for _, pair in ipairs(c.set) do redis.call('HSET', key, pair[1], pair[2]) end
          for _, pair in ipairs(c.meta) do redis.call('HSET', key, pair[1], pair[2]) end
          redis.call('HINCRBY', key, 'm:ver', 1)
        end
        local function move(old, new, c)
          local previousUser = redis.call('HGET', old, 'm:user')
          if new ~= old then
            redis.call('RENAME', old, new)
            if previousUser then redis.call('ZREM', index(previousUser), member(old)) end
          end
          apply(new, c)
          settle(new, previousUser)
        end

        if op == 'insert' then
          -- KEYS[1] the new session; ARGV[5..] field/value pairs.
          if redis.call('EXISTS', KEYS[1]) == 1 then return {'DUPLICATE'} end
          redis.call('HSET', KEYS[1], unpack(ARGV, 5))
          settle(KEYS[1], nil)
          return {'OK'}
        elseif op == 'change' then
          -- KEYS[1] the session, KEYS[2] where it goes (the same to stay); ARGV[5] the
          -- expected version or '', ARGV[6] the size limit, ARGV[7..] the changes.
          local old, new = KEYS[1], KEYS[2]
          if not live(old) then return {'MISSING'} end
          if ARGV[5] ~= '' and redis.call('HGET', old, 'm:ver') ~= ARGV[5] then return {'CONFLICT'} end
          if new ~= old and redis.call('EXISTS', new) == 1 then return {'DUPLICATE'} end
          local c = parse(7)
          if not fits(old, c, tonumber(ARGV[6])) then return {'TOOLARGE'} end
          move(old, new, c)
          return {'OK', redis.call('HGETALL', new)}
        elseif op == 'signin' then
          -- KEYS[1] the session signed in on ('' to insert), KEYS[2] the new key; ARGV[5]
          -- the user, ARGV[6] the limit or '', ARGV[7] the policy, ARGV[8] the size limit,
          -- ARGV[9..] the changes (rotate) or field/value pairs (insert).
          local old, new, user = KEYS[1], KEYS[2], ARGV[5]
          local c
          if old ~= '' then
            if not live(old) then return {'MISSING'} end
            if redis.call('EXISTS', new) == 1 then return {'DUPLICATE'} end
            c = parse(9)
            if not fits(old, c, tonumber(ARGV[8])) then return {'TOOLARGE'} end
          elseif redis.call('EXISTS', new) == 1 then
            return {'DUPLICATE'}
          end
          local evicted = {}
          if ARGV[6] ~= '' then
            local limit, others = tonumber(ARGV[6]), {}
            for _, m in ipairs(redis.call('ZRANGE', index(user), 0, -1)) do
              local k = prefix .. 's:' .. m
              if k ~= old then
                if live(k) and redis.call('HGET', k, 'm:user') == user then
                  others[#others + 1] = {k, tonumber(redis.call('HGET', k, 'm:last'))}
                else
                  redis.call('ZREM', index(user), m)
                end
              end
            end
            if #others >= limit then
              if ARGV[7] ~= 'evict-oldest' then return {'LIMIT'} end
              table.sort(others, function(a, b) return a[2] < b[2] end)
              for n = 1, #others - limit + 1 do
                local k = others[n][1]
                evicted[#evicted + 1] = member(k)
                evicted[#evicted + 1] = redis.call('HGETALL', k)
                redis.call('DEL', k)
                redis.call('ZREM', index(user), member(k))
              end
            end
          end
          if old ~= '' then
            move(old, new, c)
          else
            redis.call('HSET', new, unpack(ARGV, 9))
            settle(new, nil)
          end
          return {'OK', redis.call('HGETALL', new), evicted}
        elseif op == 'delete' then
          local user = redis.call('HGET', KEYS[1], 'm:user')
          redis.call('DEL', KEYS[1])
          if user then redis.call('ZREM', index(user), member(KEYS[1])) end
          return {'OK'}
        elseif op == 'deleteUser' then
          -- KEYS[1] the user's index; ARGV[5] the user, ARGV[6] the member kept or ''.
          local deleted = {}
          for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
            if m ~= ARGV[6] then
              local k = prefix .. 's:' .. m
              if redis.call('HGET', k, 'm:user') == ARGV[5] then
                redis.call('DEL', k)
                deleted[#deleted + 1] = m
              end
              redis.call('ZREM', KEYS[1], m)
            end
          end
          return {'OK', deleted}
        elseif op == 'trim' then
          -- KEYS[1] a user's index: drop the entries whose sessions have expired.
          local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
          if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4]) end
          return {'OK', gone}
        end
        return redis.error_reply('unknown operation ' .. tostring(op))
        """#
    )
}
