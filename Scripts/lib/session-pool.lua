-- wrk script: each request carries one cookie of a pool of distinct sessions, chosen with a
-- Zipf distribution (s = 1: the k-th most popular session is drawn 1/k as often as the
-- first), so a few sessions are hot and most are cold, as on a real site.
--   wrk -s Scripts/lib/session-pool.lua URL -- POOL-FILE
-- POOL-FILE holds one `Cookie` value per line ("none" drives a route with no session the same way).
local threads = {}
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("seed", counter)
end

function init(args)
    cookies = {}
    for line in io.lines(args[1]) do cookies[#cookies + 1] = line end
    -- Cumulative weights of ranks 1..n.
    cumulative = {}
    local total = 0
    for k = 1, #cookies do
        total = total + 1 / k
        cumulative[k] = total
    end
    math.randomseed(os.time() * 100 + seed)
end

function request()
    local target = math.random() * cumulative[#cumulative]
    local low, high = 1, #cumulative
    while low < high do
        local middle = math.floor((low + high) / 2)
        if cumulative[middle] < target then low = middle + 1 else high = middle end
    end
    return wrk.format(nil, nil, { Cookie = cookies[low] })
end
