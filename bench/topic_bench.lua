--- Topics: one publisher, four subscriber processes, 64-byte messages, against the same fan-out
-- over pipes and over Redis PUBLISH/SUBSCRIBE, and against the C limits, all in one run.
--   fan-out      messages delivered per second, summed over the 4 subscribers, from the first
--                publish until the last subscriber has the last message:
--     lxshm        t:publish per message here; subscribers sub:next_many(256) (one copy of the
--                  ring per call), on a topic that holds every message of a run (none lost)
--     lxshm_next   the same, subscribers calling sub:next per message
--     pipe         a pipe per subscriber; this process writes each message to each pipe with a
--                  flush per message (so each is readable at once, as a publish is); readers
--                  read lines
--     redis        PUBLISH per message through a private redis-server on a loopback port, 4
--                  SUBSCRIBE connections (lua-redis, Debian's, for Lua 5.3: pure Lua)
--   publisher    this process's own rate (t:publish per message) alone and while the 4
--                subscribers read; the same with the subscribers at nice 19, so that the
--                scheduler gives the publisher the processor it would have alone; then the
--                same with the publisher pinned to CPU 0 and one or four subscribers pinned to
--                CPU 1, so that they share no processor with it
--   costs        in this process: a publish, a message taken by next_many(256), and Lua itself
--                making the same 256 strings and their table (lxshm.decode, no shared memory);
--                from these, the most the publisher can keep with 4 subscribers sharing this
--                machine's processors fairly: CPUs x publish / (publish + 4 x take); and the
--                processor time per message that each process used in the fan-out
--   latency      publish -> next returning in a subscriber asleep in next (2 ms between
--                messages), against write -> read on a pipe; median and 99th percentile
--   C            a C SPSC ring between two processes (futex sleep only when idle), and the
--                fan-out above through lxshm's C API (lxshm_topic_publish, 4 subscriber
--                processes in lxshm_subscription_next), with that publisher's rate alone:
--                the distance to the hardware
--   LUA_PATH='lua/?.lua;bench/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/topic_bench.lua
local lib = require("lib")
local lxshm = require("lxshm")
local socket = require("socket")
lib.use_lua53_modules()
local clock = lib.clock

local SUBS = 4
local MSG = string.rep("x", 64)
local SCALE = lib.BATCH / 0.1 -- LXSHM_BENCH_TIME scales every message count
local N_LXSHM = math.floor(200000 * SCALE)
local N_PIPE = math.floor(20000 * SCALE)
local N_REDIS = math.floor(4000 * SCALE)
local RECORD = 80 -- ring bytes a 64-byte string takes: 8 of header, 66 encoded, padded

--- Reads each subscriber's "done TIME GOT LOST [CPU]"; returns the latest TIME, the total lost
-- and the total processor time (0 where not said).
local function finish(subs, n)
  local last, lost, cpu = 0, 0, 0
  for _, s in ipairs(subs) do
    local line = lib.expect(s, "done")
    local t, got, l, c = line:match("^done (%S+) (%d+) (%d+) ?(%S*)$")
    assert(t, "subscriber said: " .. line)
    assert(tonumber(got) + tonumber(l) == n, "subscriber got " .. got .. " of " .. n)
    last, lost = math.max(last, tonumber(t)), lost + tonumber(l)
    cpu = cpu + (tonumber(c) or 0)
    s:close()
  end
  return last, lost, cpu
end

--- The topic every lxshm run publishes to: room for a whole run, so nobody loses anything.
local topic_name = lib.unique("bench-topic")
local topic = assert(lxshm.create_topic(topic_name, (N_LXSHM + 64) * RECORD))
local publisher_times = { alone = {}, with4 = {}, nice4 = {} } -- seconds per publish
-- In the fan-out with 4: the publisher's processor time / its loop's wall time, and the
-- processor time per message of the publisher and of each subscriber.
local fanout_cpu = { share = {}, publish = {}, subscriber = {} }
local lost_total = 0
local NICE = "nice -n 19" -- subscribers that yield the processor to the publisher

--- `prefix`: the command the subscribers run under (NICE), or nil.
local function lxshm_contender(mode, prefix)
  local c = { name = prefix and "lxshm_nice" or mode == "next" and "lxshm_next" or "lxshm",
    n = N_LXSHM }
  function c.run(n)
    local subs = {}
    for i = 1, SUBS do
      subs[i] = lib.spawn("topic_peer", { "lxshm", topic_name, n, mode }, "r", prefix)
    end
    for i = 1, SUBS do
      lib.expect(subs[i], "ready")
    end
    local t0, cpu0 = clock.now(), os.clock()
    for _ = 1, n do
      topic:publish(MSG)
    end
    local published, cpu = clock.now() - t0, os.clock() - cpu0
    local last, lost, sub_cpu = finish(subs, n)
    if mode == "many" and not prefix then
      table.insert(publisher_times.with4, published / n)
      table.insert(fanout_cpu.share, cpu / published)
      table.insert(fanout_cpu.publish, cpu / n)
      table.insert(fanout_cpu.subscriber, sub_cpu / SUBS / n)
    elseif mode == "many" then
      table.insert(publisher_times.nice4, published / n)
    end
    lost_total = lost_total + lost
    return last - t0
  end
  return c
end

--- The publisher with nobody reading, in the same rotation.
local function alone_contender()
  local c = { name = "alone", n = N_LXSHM }
  function c.run(n)
    local t0 = clock.now()
    for _ = 1, n do
      topic:publish(MSG)
    end
    local t = clock.now() - t0
    table.insert(publisher_times.alone, t / n)
    return t
  end
  return c
end

local function pipe_contender()
  local c = { name = "pipe", n = N_PIPE }
  local line = MSG:sub(2) .. "\n" -- 64 bytes with the newline
  function c.run(n)
    local pipes, outs = {}, {}
    for i = 1, SUBS do
      outs[i] = os.tmpname()
      pipes[i] = assert(io.popen(lib.quote(lib.LUA) .. " bench/helpers/topic_peer.lua pipe - "
        .. n .. " > " .. lib.quote(outs[i]), "w"))
    end
    local t0 = clock.now()
    for _ = 1, n do
      for i = 1, SUBS do
        local p = pipes[i]
        p:write(line)
        p:flush()
      end
    end
    local done = {}
    for i = 1, SUBS do
      pipes[i]:close() -- waits for the reader to end
      done[i] = assert(io.open(outs[i], "r"))
    end
    local last = finish(done, n)
    for i = 1, SUBS do
      os.remove(outs[i])
    end
    return last - t0
  end
  return c
end

--- A private redis-server on a free loopback port, or nil and why not.
local function start_redis()
  local probe = assert(socket.bind("127.0.0.1", 0))
  local _, port = probe:getsockname()
  probe:close()
  local dir = lib.unique("/tmp/lxshm-bench-tredis")
  assert(os.execute("mkdir -p " .. lib.quote(dir)))
  local cmd = ("redis-server --bind 127.0.0.1 --port %d --save '' --appendonly no"
    .. " --daemonize yes --dir %s --pidfile %s/redis.pid --logfile %s/redis.log"):format(port,
    lib.quote(dir), lib.quote(dir), lib.quote(dir))
  if not os.execute(cmd) then
    return nil, "redis-server did not start"
  end
  local ok, redis = pcall(require, "redis")
  if not ok then
    return nil, "lua-redis is not installed"
  end
  for _ = 1, 200 do -- up to 2 s for it to listen
    local connected, client = pcall(redis.connect, "127.0.0.1", tonumber(port))
    if connected then
      return { port = port, dir = dir, client = client }
    end
    clock.sleep(0.01)
  end
  return nil, "redis-server never answered on port " .. port
end

local function stop_redis(r)
  pcall(r.client.shutdown, r.client) -- SHUTDOWN: nothing to save, it exits
  for _ = 1, 100 do
    if not io.open(r.dir .. "/redis.pid", "r") then
      break
    end
    clock.sleep(0.01)
  end
  os.execute("rm -rf " .. lib.quote(r.dir))
end

local function redis_contender(r)
  local c = { name = "redis", n = N_REDIS }
  function c.run(n)
    local channel = lib.unique("bench-channel")
    local subs = {}
    for i = 1, SUBS do
      subs[i] = lib.spawn("topic_peer", { "redis", r.port .. ":" .. channel, n })
    end
    for i = 1, SUBS do
      lib.expect(subs[i], "ready")
    end
    local t0 = clock.now()
    for _ = 1, n do
      r.client:publish(channel, MSG)
    end
    local last = finish(subs, n)
    return last - t0
  end
  return c
end

--- ---------------------------------------------------------------------------------------
print(("# fan-out: 1 publisher -> %d subscriber processes, 64-byte messages; %d repetitions,"
  .. " medians; ratios pair by pair"):format(SUBS, lib.REPS))
local redis_server, why = start_redis()
local contenders = { lxshm_contender("many"), lxshm_contender("next"), alone_contender(),
  pipe_contender() }
local can_nice = os.execute(NICE .. " true 2>/dev/null")
if can_nice then
  contenders[#contenders + 1] = lxshm_contender("many", NICE)
else
  print("# no figures with subscribers at nice 19: " .. NICE .. " failed")
end
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
local function delivered(xs) -- seconds per published message -> M deliveries per second
  return lib.map(xs, function(x) return SUBS / x / 1e6 end)
end
for _, name in ipairs({ "lxshm", "lxshm_next", "pipe", "redis" }) do
  if per_op[name] then
    lib.figure("topic.fanout." .. name, delivered(per_op[name]), "M msgs/s")
  end
end
for _, mine in ipairs({ "lxshm", "lxshm_next" }) do
  for _, other in ipairs({ "pipe", "redis" }) do
    if per_op[other] then
      lib.figure(("topic.fanout.ratio.%s/%s"):format(mine, other),
        lib.ratios(per_op[other], per_op[mine]), "x msgs/s")
    end
  end
end
print(("# lxshm subscribers lost %d messages in all (the topic holds a whole run)")
  :format(lost_total))
lib.figure("topic.publisher.alone", lib.scale(lib.rate(publisher_times.alone), 1e-6), "M msgs/s")
lib.figure("topic.publisher.with4", lib.scale(lib.rate(publisher_times.with4), 1e-6), "M msgs/s")
lib.figure("topic.publisher.ratio.with4/alone",
  lib.ratios(publisher_times.alone, publisher_times.with4), "x msgs/s")
if can_nice then
  print("# the same, the 4 subscribers at nice 19: the scheduler favours the publisher")
  lib.figure("topic.publisher.nice4", lib.scale(lib.rate(publisher_times.nice4), 1e-6),
    "M msgs/s")
  lib.figure("topic.publisher.ratio.nice4/alone",
    lib.ratios(publisher_times.alone, publisher_times.nice4), "x msgs/s")
end

--- What the 4 subscribers leave the publisher on this machine. With every process given its
-- fair share of the CPUs and subscribers that keep pace, the publisher keeps at most
-- CPUS x c_pub / (c_pub + 4 c_sub) of its rate alone, where c_pub is a publish and c_sub a
-- message taken by a subscriber. Measured in this process, in turns of 2,048 messages so that
-- each repetition compares costs taken at the same moment: a publish, a message taken by
-- next_many(256) from those just published (in the cache, as for a subscriber keeping pace),
-- and Lua itself making the same 256 strings and their table from a local buffer
-- (lxshm.decode, no shared memory), which no subscriber can beat; and in the fan-out above,
-- the processor time each process used per message.
local function cost_figures()
  local turn = N_LXSHM >= 4096 and 2048 or 256 -- messages the topic surely holds
  local turns = math.max(1, math.floor(N_LXSHM / 2 / turn))
  local list = {}
  for i = 1, 256 do
    list[i] = MSG
  end
  local packed = lxshm.encode(list)
  local cost = { publish = {}, next_many = {}, lua_strings = {} }
  for rep = 1, lib.REPS do
    local pub, take, make = 0, 0, 0
    for _ = 1, turns do
      local t0 = clock.now()
      for _ = 1, turn do
        topic:publish(MSG)
      end
      local t1 = clock.now()
      local sub = assert(topic:subscribe(topic:last() - turn + 1))
      for _ = 1, turn / 256 do
        assert(select(2, sub:next_many(256)) == 256)
      end
      sub:close()
      local t2 = clock.now()
      for _ = 1, turn / 256 do
        assert(#lxshm.decode(packed) == 256)
      end
      local t3 = clock.now()
      pub, take, make = pub + t1 - t0, take + t2 - t1, make + t3 - t2
    end
    cost.publish[rep] = pub / (turns * turn)
    cost.next_many[rep] = take / (turns * turn)
    cost.lua_strings[rep] = make / (turns * turn)
  end
  local f = io.popen("nproc 2>/dev/null")
  local cpus = f and tonumber(f:read("l")) or 1
  if f then
    f:close()
  end
  local function ceiling(c_sub)
    local r = {}
    for rep, c_pub in ipairs(cost.publish) do
      r[rep] = math.min(1, cpus * c_pub / (c_pub + SUBS * c_sub[rep]))
    end
    return r
  end
  local ns = function(xs) return lib.scale(xs, 1e9) end
  print(("# what a message costs, in this process; the most the publisher can keep with %d"
    .. " subscribers on %d CPUs shared fairly"):format(SUBS, cpus))
  for _, k in ipairs({ "publish", "next_many", "lua_strings" }) do
    lib.figure("topic.cost." .. k, ns(cost[k]), "ns")
  end
  lib.figure("topic.publisher.ceiling.with4/alone", ceiling(cost.next_many), "x msgs/s")
  lib.figure("topic.publisher.ceiling.lua_strings", ceiling(cost.lua_strings), "x msgs/s")
  print("# processor time in the fan-out with 4: per message, and the publisher's share of a CPU")
  lib.figure("topic.fanout.cpu.publish", ns(fanout_cpu.publish), "ns")
  lib.figure("topic.fanout.cpu.subscriber", ns(fanout_cpu.subscriber), "ns")
  lib.figure("topic.fanout.cpu.publisher_share", fanout_cpu.share, "CPU")
end
cost_figures()

--- The publisher in a process of its own on CPU 0, the subscribers on CPU 1: what the
-- subscribers cost the publisher when they take no processor time from it. Four subscribers
-- sharing CPU 1 fall behind and read in large batches; one alone there keeps pace, right
-- behind the publisher, so that every message's cache lines move from CPU 0 to CPU 1 as they
-- are written: the cost of that traffic, which more processors would not remove.
local function pinned_figures()
  if not os.execute("taskset -c 1 true 2>/dev/null") then
    print("# no pinned figures: taskset cannot use CPU 1")
    return
  end
  local times = { alone = {}, with1 = {}, with4 = {} }
  local function run(with)
    local subs = {}
    for i = 1, with do
      subs[i] = lib.spawn("topic_peer", { "lxshm", topic_name, N_LXSHM, "many" }, "r",
        "taskset -c 1")
    end
    for i = 1, with do
      lib.expect(subs[i], "ready")
    end
    local pub = lib.spawn("topic_peer", { "publish", topic_name, N_LXSHM }, "r", "taskset -c 0")
    local t = tonumber(lib.expect(pub, "published"):match("^published (%S+)$"))
    pub:close()
    if with > 0 then
      finish(subs, N_LXSHM)
    end
    table.insert(times[with == 0 and "alone" or "with" .. with], t / N_LXSHM)
  end
  for _ = 1, lib.REPS do
    run(0)
    run(1)
    run(SUBS)
  end
  print("# the same publisher in a process pinned to CPU 0, the subscribers pinned to CPU 1")
  for _, k in ipairs({ "alone", "with1", "with4" }) do
    lib.figure("topic.publisher.pinned." .. k, lib.scale(lib.rate(times[k]), 1e-6), "M msgs/s")
  end
  for _, k in ipairs({ "with1", "with4" }) do
    lib.figure(("topic.publisher.pinned.ratio.%s/alone"):format(k),
      lib.ratios(times.alone, times[k]), "x msgs/s")
  end
end

pinned_figures()
topic:close()
lxshm.remove(topic_name)

--- ---------------------------------------------------------------------------------------
--- Latency: a subscriber asleep in next (or in read on a pipe) gets a message holding the
-- time it was sent; 2 ms pass between messages, so that it is asleep in the kernel each time.
local function latency_figures()
  local K = 300
  local all = { lxshm = {}, pipe = {} }
  local function lxshm_round()
    local name = lib.unique("bench-tlat")
    local t = assert(lxshm.create_topic(name, 65536))
    local sub = lib.spawn("topic_peer", { "latency_lxshm", name, K })
    lib.expect(sub, "ready")
    for _ = 1, K do
      clock.sleep(0.002)
      t:publish(clock.now())
    end
    for line in sub:lines() do
      table.insert(all.lxshm, tonumber(line))
    end
    sub:close()
    t:close()
    lxshm.remove(name)
  end
  local function pipe_round()
    local out = os.tmpname()
    local p = assert(io.popen(lib.quote(lib.LUA) .. " bench/helpers/topic_peer.lua latency_pipe - "
      .. K .. " > " .. lib.quote(out), "w"))
    for _ = 1, K do
      clock.sleep(0.002)
      p:write(("%.9f\n"):format(clock.now()))
      p:flush()
    end
    p:close()
    for line in io.lines(out) do
      table.insert(all.pipe, tonumber(line))
    end
    os.remove(out)
  end
  for _ = 1, 3 do
    lxshm_round()
    pipe_round()
  end
  local function percentile(xs, p)
    local s = table.move(xs, 1, #xs, 1, {})
    table.sort(s)
    return s[math.max(1, math.ceil(#s * p))]
  end
  print(("# latency: publish -> a sleeping subscriber's next, against a pipe's write -> read;"
    .. " %d messages each, 2 ms apart"):format(3 * K))
  for _, name in ipairs({ "lxshm", "pipe" }) do
    print(("topic.latency.%s.median: %s µs"):format(name, lib.fmt(percentile(all[name], 0.5)
      * 1e6)))
    print(("topic.latency.%s.p99: %s µs"):format(name, lib.fmt(percentile(all[name], 0.99) * 1e6)))
  end
  print(("topic.latency.ratio.lxshm/pipe.median: %s x the time"):format(lib.fmt(
    percentile(all.lxshm, 0.5) / percentile(all.pipe, 0.5))))
end

latency_figures()

--- ---------------------------------------------------------------------------------------
--- The C limits: a C SPSC ring, and the fan-out through lxshm's C API.
local function c_figures()
  local exe = "build/bench/topic_c"
  local cc = os.getenv("CC") or "cc"
  -- the core as C hosts link it (make builds build/liblxshm.a before the benchmarks run)
  if not os.execute(("mkdir -p build/bench && %s -O2 -std=c11 -Isrc -o %s "
    .. "bench/helpers/topic_c.c build/liblxshm.a -lpthread"):format(cc, exe)) then
    print("# no C figures: " .. exe .. " did not build")
    return
  end
  --- The C fan-out with `subs` subscriber processes: delivered and published M msgs/s (the
  -- first is nil with none).
  local function fanout(subs)
    local f = io.popen(exe .. " fanout " .. lib.unique("bench-tc") .. " "
      .. math.floor(500000 * SCALE) .. " 64 " .. subs)
    local d, p = f:read("a"):match("fanout (%S+) (%S+)")
    f:close()
    return tonumber(d), tonumber(p) / 1e6
  end
  local spsc, fan, pub, alone = {}, {}, {}, {}
  for _ = 1, lib.REPS do
    local f = io.popen(exe .. " spsc " .. math.floor(2000000 * SCALE) .. " 64")
    table.insert(spsc, tonumber(f:read("a"):match("spsc (%S+)")) / 1e6)
    f:close()
    local d, p = fanout(SUBS)
    table.insert(fan, d / 1e6)
    table.insert(pub, p)
    table.insert(alone, select(2, fanout(0))) -- the same publisher with nobody reading
  end
  print("# C: a C SPSC ring, 64-byte messages, two processes; lxshm's C API, 1 -> 4 processes")
  lib.figure("topic.c.spsc", spsc, "M msgs/s")
  lib.figure("topic.c.fanout", fan, "M msgs/s")
  lib.figure("topic.c.fanout.publisher", pub, "M msgs/s")
  lib.figure("topic.c.fanout.publisher.alone", alone, "M msgs/s")
  lib.figure("topic.c.fanout.publisher.ratio.with4/alone", lib.ratios(pub, alone), "x msgs/s")
end

c_figures()
