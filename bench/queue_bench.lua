--- One-way streams of 64-byte strings between separate Lua processes, messages per second:
--   lxshm        q:push in a producer process, q:pop in this one (a 64 KiB queue, about the
--                room of a pipe's buffer)
--   lxshm_batch  the same queue with q:push_many and q:pop_many, 64 messages per call
--   pipe         the producer writes a line per message to its stdout (stdio buffers 4 KiB per
--                write), this process reads lines through io.popen
--   pipe_flush   the same with a flush per message, so that each one is readable at once (as a
--                push is)
--   unix         a luasocket Unix stream socket, a send per message, lines read back
--   redis        RPUSH -> BLPOP through Debian's redis-server, started here on a free loopback
--                port with no persistence and stopped at the end (lua-redis client)
-- The consumer (this process) times from its first message to its last, so that starting the
-- producer is not counted. Then: the futex system calls each side makes per message while both
-- are busy (perf counting the syscalls:sys_enter_futex tracepoint, when perf can), and 4
-- producers x 3 consumers through one queue against 1 x 1 measured the same way.
--   LUA_PATH='lua/?.lua;bench/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/queue_bench.lua
local lib = require("lib")
local lxshm = require("lxshm")
local unix = require("socket.unix")
local socket = require("socket")
lib.use_lua53_modules()
local clock = lib.clock

local QUEUE_BYTES = 64 * 1024

--- An lxshm queue for the whole run; a producer process per batch, started with the helper's
-- `kind` ("lxshm": a push per message; "lxshm_batch": push_many of 64). `drain(q, n)` pops n
-- messages here.
local function queue_contender(kind, drain)
  local name = lib.unique("bench-" .. kind)
  local q = assert(lxshm.create_queue(name, QUEUE_BYTES))
  local c = { name = kind }
  function c.run(n)
    local child = lib.spawn("queue_peer", { "producer", kind, name, n + 1 })
    q:pop() -- the producer is running: time from here
    local t0 = clock.now()
    drain(q, n)
    local t = clock.now() - t0
    child:close()
    return t
  end
  function c.close()
    q:close()
    lxshm.remove(name)
  end
  return c
end

local function lxshm_contender()
  return queue_contender("lxshm", function(q, n)
    for _ = 1, n do
      q:pop()
    end
  end)
end

--- Batches: pop_many of up to 64 here.
local function lxshm_batch_contender()
  return queue_contender("lxshm_batch", function(q, n)
    local got = 0
    while got < n do
      local _, k = q:pop_many(math.min(64, n - got))
      got = got + k
    end
  end)
end

--- The producer's stdout, read line by line.
local function pipe_contender(kind)
  local c = { name = kind }
  function c.run(n)
    local child = lib.spawn("queue_peer", { "producer", kind, "-", n + 1 })
    child:read("*l")
    local t0 = clock.now()
    for _ = 1, n do
      child:read("*l")
    end
    local t = clock.now() - t0
    child:close()
    return t
  end
  return c
end

local function unix_contender()
  local path = lib.unique("/tmp/lxshm-bench-qsock")
  local server = assert(unix.stream())
  assert(server:bind(path))
  assert(server:listen(1))
  local c = { name = "unix" }
  function c.run(n)
    local child = lib.spawn("queue_peer", { "producer", "unix", path, n + 1 })
    local conn = assert(server:accept())
    conn:receive("*l")
    local t0 = clock.now()
    for _ = 1, n do
      conn:receive("*l")
    end
    local t = clock.now() - t0
    conn:close()
    child:close()
    return t
  end
  function c.close()
    server:close()
    os.remove(path)
  end
  return c
end

--- A private redis-server on a free loopback port, or nil and why not.
local function start_redis()
  local probe = assert(socket.bind("127.0.0.1", 0))
  local _, port = probe:getsockname()
  probe:close()
  local dir = lib.unique("/tmp/lxshm-bench-redis")
  assert(lib.execute("mkdir -p " .. lib.quote(dir)))
  local cmd = ("redis-server --bind 127.0.0.1 --port %d --save '' --appendonly no"
    .. " --daemonize yes --dir %s --pidfile %s/redis.pid --logfile %s/redis.log"):format(port,
    lib.quote(dir), lib.quote(dir), lib.quote(dir))
  if not lib.execute(cmd) then
    return nil, "redis-server did not start"
  end
  local redis = require("redis")
  for _ = 1, 200 do -- up to 2 s for it to listen
    local ok, client = pcall(redis.connect, "127.0.0.1", tonumber(port))
    if ok then
      return { port = port, dir = dir, client = client }
    end
    clock.sleep(0.01)
  end
  return nil, "redis-server never answered on port " .. port
end

local function stop_redis(r)
  pcall(r.client.shutdown, r.client) -- SHUTDOWN: it saves nothing (--save '') and exits
  local f = io.open(r.dir .. "/redis.pid", "r")
  local pid = f and f:read("*n")
  if f then
    f:close()
  end
  for _ = 1, 100 do -- wait for it to go (SHUTDOWN removes the pid file)
    if not io.open(r.dir .. "/redis.pid", "r") then
      break
    end
    clock.sleep(0.01)
  end
  if pid and io.open(r.dir .. "/redis.pid", "r") then
    os.execute(("kill %d"):format(pid))
  end
  os.execute("rm -rf " .. lib.quote(r.dir))
end

local function redis_contender(r)
  local key = lib.unique("bench-list")
  local c = { name = "redis" }
  function c.run(n)
    local child = lib.spawn("queue_peer", { "producer", "redis", r.port .. ":" .. key, n + 1 })
    r.client:blpop(key, 0)
    local t0 = clock.now()
    for _ = 1, n do
      r.client:blpop(key, 0)
    end
    local t = clock.now() - t0
    child:close()
    return t
  end
  return c
end

print(("# one-way 64-byte messages, 1 producer process -> 1 consumer process; %d repetitions,"
  .. " medians"):format(lib.REPS))
local redis_server, why = start_redis()
local contenders = { lxshm_contender(), lxshm_batch_contender(), pipe_contender("pipe"),
  pipe_contender("pipe_flush"), unix_contender() }
if redis_server then
  contenders[#contenders + 1] = redis_contender(redis_server)
else
  print("# no redis figures: " .. why)
end
local ok, per_op = pcall(lib.compare, contenders)
if redis_server then
  stop_redis(redis_server)
end
assert(ok, per_op)
for _, c in ipairs(contenders) do
  lib.figure("queue.oneway." .. c.name, lib.scale(lib.rate(per_op[c.name]), 1e-6), "M msgs/s")
end
for _, mine in ipairs({ "lxshm", "lxshm_batch" }) do
  for _, c in ipairs(contenders) do
    if not c.name:find("^lxshm") then -- rate ratio = inverse time ratio, pair by pair
      lib.figure(("queue.oneway.ratio.%s/%s"):format(mine, c.name),
        lib.ratios(per_op[c.name], per_op[mine]), "x msgs/s")
    end
  end
end
for _, c in ipairs(contenders) do
  if c.close then
    c.close()
  end
end

--- The cost of a call with no other process in the way: one process pushes n messages into a
-- queue large enough for all of them (timed), then pops them (timed apart). Against the
-- one-way figures above, the difference is what the second process costs: the cache lines each
-- side takes from the other.
local function solo_figures()
  local n = 200000
  local name = lib.unique("bench-solo")
  local q = assert(lxshm.create_queue(name, n * 80))
  local MSG = string.rep("m", 64)
  local function push_all()
    for _ = 1, n do
      q:push(MSG)
    end
  end
  local function pop_all()
    for _ = 1, n do
      q:pop()
    end
  end
  local pushes = { name = "push", n = n }
  function pushes.run()
    local t0 = clock.now()
    push_all()
    local t = clock.now() - t0
    pop_all()
    return t
  end
  local pops = { name = "pop", n = n }
  function pops.run()
    push_all()
    local t0 = clock.now()
    pop_all()
    return clock.now() - t0
  end
  local per = lib.compare({ pushes, pops })
  print("# one process alone: a push or a pop of a 64-byte string, no other process in the way")
  lib.figure("queue.solo.push", lib.scale(per.push, 1e9), "ns")
  lib.figure("queue.solo.pop", lib.scale(per.pop, 1e9), "ns")
  q:close()
  lxshm.remove(name)
end

solo_figures()

--- Runs `producers` producer processes and `consumers` consumer processes on one queue, all
-- started together through a gate segment; total messages per second from the gate opening
-- until the queue is drained. `total` messages in all (rounded down to a multiple of
-- producers).
local function many(producers, consumers, total)
  local qname, gname = lib.unique("bench-mq"), lib.unique("bench-gate")
  local q = assert(lxshm.create_queue(qname, QUEUE_BYTES))
  local gate = assert(lxshm.create(gname, 16))
  local each = math.floor(total / producers)
  local pro, con = {}, {}
  for i = 1, consumers do
    con[i] = lib.spawn("queue_peer", { "consumer", "lxshm", qname, "stop", gname })
  end
  for i = 1, producers do
    pro[i] = lib.spawn("queue_peer", { "producer", "lxshm", qname, each, gname })
  end
  for _, child in ipairs(con) do
    lib.expect(child, "ready")
  end
  for _, child in ipairs(pro) do
    lib.expect(child, "ready")
  end
  local t0 = clock.now()
  gate:write("go")
  local vcs, ivcs = 0, 0
  for _, child in ipairs(pro) do
    local v, i = lib.expect(child, "done"):match("^done (%d+) (%d+)$")
    vcs, ivcs = vcs + v, ivcs + i
  end
  while q:count() > 0 do
    clock.sleep(0.0002)
  end
  local t = clock.now() - t0
  local popped = 0
  for _ = 1, consumers do
    q:push("stop")
  end
  for _, child in ipairs(con) do
    local n, v, i = lib.expect(child, "its count"):match("^(%d+) (%d+) (%d+)$")
    popped, vcs, ivcs = popped + n, vcs + v, ivcs + i
    child:close()
  end
  for _, child in ipairs(pro) do
    child:close()
  end
  assert(popped == each * producers, "lost or duplicated messages")
  q:close()
  gate:close()
  lxshm.remove(qname)
  lxshm.remove(gname)
  return t, each * producers, vcs, ivcs
end

local function many_contender(producers, consumers)
  local c = { name = ("%dx%d"):format(producers, consumers), sleeps = {}, preempted = {} }
  function c.run(n)
    local t, done, vcs, ivcs = many(producers, consumers, math.max(n, producers))
    -- Context switches per message, all processes together: sleeps (futex waits, on a lock
    -- or on the queue) and preemptions (more runnable processes than CPUs).
    table.insert(c.sleeps, vcs / done)
    table.insert(c.preempted, ivcs / done)
    return t * n / done -- per requested message, as compare divides by n
  end
  return c
end

print(("# many producers and consumers through one %d KiB queue, all separate processes,"
  .. " started together; total messages per second until drained"):format(QUEUE_BYTES / 1024))
local mc = { many_contender(1, 1), many_contender(4, 3) }
local mper = lib.compare(mc)
for _, c in ipairs(mc) do
  lib.figure("queue.lxshm." .. c.name, lib.scale(lib.rate(mper[c.name]), 1e-6), "M msgs/s")
end
for _, c in ipairs(mc) do -- the last REPS runs are the timed ones (the first calibrated)
  local k = #c.sleeps - lib.REPS
  lib.figure("queue.lxshm." .. c.name .. ".sleeps", lib.slice(c.sleeps, k + 1, #c.sleeps),
    "per msg")
  lib.figure("queue.lxshm." .. c.name .. ".preemptions", lib.slice(c.preempted, k + 1,
    #c.preempted), "per msg")
end
lib.figure("queue.lxshm.ratio.4x3/1x1", lib.ratios(mper["1x1"], mper["4x3"]), "x msgs/s")

--- Futex system calls per message while both sides are busy: a producer and a consumer
-- process, each under `perf stat` counting its futex calls by operation.
local function futex_per_message(total)
  if not lib.execute("perf stat -x, -e syscalls:sys_enter_futex -o /dev/null true"
    .. " >/dev/null 2>&1") then
    print("# perf cannot count syscalls here: no futex figures")
    return
  end
  local qname, gname = lib.unique("bench-fq"), lib.unique("bench-fgate")
  local q = assert(lxshm.create_queue(qname, QUEUE_BYTES))
  local gate = assert(lxshm.create(gname, 16))
  local function under_perf(role, out)
    -- op 1 = FUTEX_WAKE (lxshm's wake-ups, and a contended mutex's unlock), op 9 =
    -- FUTEX_WAIT_BITSET (lxshm's sleeps), op 0 = FUTEX_WAIT (a contended mutex's lock).
    local cmd = ("perf stat -x, -o %s -e syscalls:sys_enter_futex --filter 'op == 1'"
      .. " -e syscalls:sys_enter_futex --filter 'op == 9' -e syscalls:sys_enter_futex"
      .. " %s bench/helpers/queue_peer.lua %s lxshm %s %d %s"):format(lib.quote(out),
      lib.quote(lib.LUA), role, lib.quote(qname), total, lib.quote(gname))
    return assert(io.popen(cmd, "r"))
  end
  local pout, cout = os.tmpname(), os.tmpname()
  local consumer = under_perf("consumer", cout)
  local producer = under_perf("producer", pout)
  lib.expect(consumer, "ready")
  lib.expect(producer, "ready")
  gate:write("go")
  lib.expect(producer, "done")
  local first, last, sleeps = lib.expect(consumer, "its times"):match("(%S+) (%S+) (%S+)")
  producer:close()
  consumer:close()
  local function counts(path)
    local f = assert(io.open(path, "r"))
    local xs = {}
    for line in f:lines() do
      local n = line:match("^(%d+),")
      if n then
        xs[#xs + 1] = tonumber(n)
      end
    end
    f:close()
    os.remove(path)
    return xs
  end
  local p, c = counts(pout), counts(cout)
  q:close()
  gate:close()
  lxshm.remove(qname)
  lxshm.remove(gname)
  if #p < 3 or #c < 3 then
    print("# perf gave no counts: no futex figures")
    return
  end
  print(("# futex system calls per message, 1 producer -> 1 consumer, %d messages at"
    .. " %.2f M msgs/s, each process under perf stat"):format(total,
    total / (tonumber(last) - tonumber(first)) / 1e6))
  local function line(name, x)
    print(("%s: %.4f calls/msg  # %d calls"):format(name, x / total, x))
  end
  line("queue.futex.producer.wake", p[1])
  line("queue.futex.producer.wait", p[2])
  line("queue.futex.producer.all", p[3])
  line("queue.futex.consumer.wake", c[1])
  line("queue.futex.consumer.wait", c[2])
  line("queue.futex.consumer.all", c[3])
  print(("queue.futex.consumer.sleeps: %.4f switches/msg  # %d voluntary context switches")
    :format(tonumber(sleeps) / total, tonumber(sleeps)))
end

futex_per_message(math.max(20000, math.floor(2e6 * lib.BATCH)))
