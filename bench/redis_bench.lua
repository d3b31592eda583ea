--- lxshm on Redis, side by side in one run with (a) the Lua Redis client people use today,
-- lua-redis, with lua-cjson for tables, doing the same work over the same Unix socket, and (b)
-- lxshm on this machine's shared memory, so that users see what leaving one machine costs.
-- Starts its own redis-server (Unix socket, no persistence, --hz 100) and stops it at the end.
--   LUA_PATH='lua/?.lua;bench/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/redis_bench.lua
-- Ratios are of the time per operation, taken repetition by repetition: "lxshm_redis/lua_redis"
-- below 1 is lxshm being faster (0.5: twice as fast); "lxshm_redis/shm" how many times longer
-- the same call takes on Redis than in shared memory.
local lib = require("lib")
lib.pin_malloc()
lib.use_lua53_modules()
local lxshm = require("lxshm")
local clock = lib.clock

local have_backend = pcall(require, "lxshm.redis")
local ok_redis, redis = pcall(require, "redis")
local ok_cjson, cjson = pcall(require, "cjson")
if not have_backend then
  print("# lxshm.redis is not built (no libhiredis-dev): nothing to measure")
  os.exit(0)
end
if os.execute("command -v redis-server >/dev/null 2>&1") ~= true then
  print("# redis-server is not installed (apt-get install -y redis-server): nothing to measure")
  os.exit(0)
end

-- ---- a throw-away server -----------------------------------------------------------------

local dir = assert(io.popen("mktemp -d /tmp/lxshm-bench-redis.XXXXXX")):read("l")
local sock = dir .. "/r.sock"
local port = 45000 + clock.pid() % 4000
assert(os.execute(("redis-server --port %d --bind 127.0.0.1 --unixsocket %s --save '' "
  .. "--appendonly no --dir %s --hz 100 --daemonize yes --pidfile %s/pid --logfile %s/log")
  :format(port, lib.quote(sock), lib.quote(dir), lib.quote(dir), lib.quote(dir))))
local function cli(...)
  local f = io.popen("redis-cli -s " .. lib.quote(sock) .. " " .. table.concat({ ... }, " ")
    .. " 2>/dev/null")
  local out = f:read("a")
  f:close()
  return (out:gsub("\n$", ""))
end
local deadline = clock.now() + 10
while cli("PING") ~= "PONG" do
  assert(clock.now() < deadline, "redis-server did not start")
  clock.sleep(0.01)
end
local function stop()
  cli("SHUTDOWN", "NOSAVE")
  os.execute("rm -rf " .. lib.quote(dir))
end

local function measure()
  local url = "redis+unix://" .. sock
  local ns = assert(lxshm.connect(url))
  local shm = lxshm.connect("shm:")
  local lr -- lua-redis client
  if ok_redis then
    lr = redis.connect("unix://" .. sock)
  end

  -- Debian's lua-redis 2.0.5 pipeline() does table.insert(parsers, #requests, nil), which Lua 5.3
  -- and later refuse ("position out of bounds"): run it with a table.insert that accepts that.
  local function lr_pipeline(block)
    local insert = table.insert
    table.insert = function(t, ...) -- luacheck: ignore 122
      if select("#", ...) == 2 and select(2, ...) == nil then
        return
      end
      return insert(t, ...)
    end
    local ok, replies = pcall(lr.pipeline, lr, block)
    table.insert = insert -- luacheck: ignore 122
    if not ok then
      error(replies, 0)
    end
    return replies
  end

  print(("# redis-server %s on a Unix socket (and 127.0.0.1:%d), --hz 100, no persistence; "
    .. "%d repetitions, medians"):format(cli("INFO", "server"):match("redis_version:(%S+)") or "?",
    port, lib.REPS))
  if not (ok_redis and ok_cjson) then
    print("# lua-redis or lua-cjson missing (apt-get install -y lua-redis lua-cjson): "
      .. "no comparison with them")
  end

  local corpus = lib.load_corpus()
  local record = corpus[1].value
  local us = function(t) return t * 1e6 end
  local tag = lib.unique("rb")
  local made = {}

  local function seg_pair(size)
    local name = tag .. ".seg" .. #made
    made[#made + 1] = name
    return assert(ns:create(name, size)), assert(shm:create(name, size))
  end

  -- Prints the per-op figures of two contenders and their ratio (b ÷ a of the time).
  local function pair(prefix, per_op, a, b, unit_scale, unit)
    lib.figure(prefix .. "." .. a, lib.map(per_op[a], unit_scale), unit)
    lib.figure(prefix .. "." .. b, lib.map(per_op[b], unit_scale), unit)
    lib.figure(prefix .. ".ratio." .. b .. "/" .. a, lib.ratios(per_op[b], per_op[a]), "x time")
  end

  -- ---- (a) against lua-redis + lua-cjson ----------------------------------------------------

  print("# put then get of each corpus item: lxshm segment on Redis vs lua-redis SET/GET + cjson")
  for _, item in ipairs(corpus) do
    local rseg, lseg = seg_pair(2 << 20)
    local key = tag .. ":kv:" .. item.name
    local v = item.value
    local contenders = {
      { name = "lxshm_redis", run = function(n)
          for _ = 1, n do
            assert(rseg:put(v))
            rseg:get()
          end
        end },
      { name = "shm", run = function(n)
          for _ = 1, n do
            assert(lseg:put(v))
            lseg:get()
          end
        end },
    }
    if lr and ok_cjson then
      contenders[#contenders + 1] = { name = "lua_redis", run = function(n)
          for _ = 1, n do
            lr:set(key, cjson.encode(v))
            cjson.decode(lr:get(key))
          end
        end }
    end
    local per_op = lib.compare(contenders)
    local p = "redis.put_get." .. item.name
    lib.figure(p .. ".lxshm_redis", lib.map(per_op.lxshm_redis, us), "µs")
    if per_op.lua_redis then
      lib.figure(p .. ".lua_redis", lib.map(per_op.lua_redis, us), "µs")
      lib.figure(p .. ".ratio.lxshm_redis/lua_redis",
        lib.ratios(per_op.lxshm_redis, per_op.lua_redis), "x time")
    end
    lib.figure(p .. ".shm", lib.map(per_op.shm, us), "µs")
    lib.figure(p .. ".ratio.lxshm_redis/shm", lib.ratios(per_op.lxshm_redis, per_op.shm), "x time")
  end

  print("# queue push then pop of the record, one at a time and in batches of 64")
  local rq = assert(ns:create_queue(tag .. ".q", 1 << 20))
  local lq = assert(shm:create_queue(tag .. ".q", 1 << 20))
  made[#made + 1] = tag .. ".q"
  local batch = {}
  for i = 1, 64 do
    batch[i] = record
  end
  local qkey = tag .. ":list"
  local contenders = {
    { name = "lxshm_redis", run = function(n)
        for _ = 1, n do
          assert(rq:push(record))
          rq:pop()
        end
      end },
    { name = "lxshm_redis_batch", run = function(n)
        for _ = 1, n // 64 + 1 do
          assert(rq:push_many(batch))
          rq:pop_many(64)
        end
        return nil
      end, n = nil },
    { name = "shm", run = function(n)
        for _ = 1, n do
          assert(lq:push(record))
          lq:pop()
        end
      end },
    { name = "shm_batch", run = function(n)
        for _ = 1, n // 64 + 1 do
          assert(lq:push_many(batch))
          lq:pop_many(64)
        end
      end },
  }
  if lr and ok_cjson then
    contenders[#contenders + 1] = { name = "lua_redis", run = function(n)
        for _ = 1, n do
          lr:rpush(qkey, cjson.encode(record))
          cjson.decode(lr:lpop(qkey))
        end
      end }
    contenders[#contenders + 1] = { name = "lua_redis_pipeline", run = function(n)
        for _ = 1, n // 64 + 1 do
          lr_pipeline(function(p)
            for _ = 1, 64 do
              p:rpush(qkey, cjson.encode(record))
            end
          end)
          local replies = lr_pipeline(function(p)
            for _ = 1, 64 do
              p:lpop(qkey)
            end
          end)
          for i = 1, 64 do
            cjson.decode(replies[i])
          end
        end
      end }
  end
  -- batch contenders do (n // 64 + 1) * 64 values: time per value is what they report
  for _, c in ipairs(contenders) do
    if c.name:find("batch") or c.name:find("pipeline") then
      local run = c.run
      c.run = function(n)
        local t0 = clock.now()
        run(n)
        return (clock.now() - t0) * n / ((n // 64 + 1) * 64)
      end
    end
  end
  local per_op = lib.compare(contenders)
  lib.figure("redis.queue.push_pop.lxshm_redis", lib.map(per_op.lxshm_redis, us), "µs")
  lib.figure("redis.queue.push_pop.lxshm_redis_batch", lib.map(per_op.lxshm_redis_batch, us), "µs")
  if per_op.lua_redis then
    lib.figure("redis.queue.push_pop.lua_redis", lib.map(per_op.lua_redis, us), "µs")
    lib.figure("redis.queue.push_pop.lua_redis_pipeline", lib.map(per_op.lua_redis_pipeline, us),
      "µs")
    lib.figure("redis.queue.push_pop.ratio.lxshm_redis/lua_redis",
      lib.ratios(per_op.lxshm_redis, per_op.lua_redis), "x time")
    lib.figure("redis.queue.push_pop.ratio.lxshm_redis_batch/lua_redis",
      lib.ratios(per_op.lxshm_redis_batch, per_op.lua_redis), "x time")
    lib.figure("redis.queue.push_pop.ratio.lxshm_redis_batch/lua_redis_pipeline",
      lib.ratios(per_op.lxshm_redis_batch, per_op.lua_redis_pipeline), "x time")
  end
  lib.figure("redis.queue.push_pop.shm", lib.map(per_op.shm, us), "µs")
  lib.figure("redis.queue.push_pop.shm_batch", lib.map(per_op.shm_batch, us), "µs")
  lib.figure("redis.queue.push_pop.ratio.lxshm_redis/shm",
    lib.ratios(per_op.lxshm_redis, per_op.shm), "x time")
  lib.figure("redis.queue.push_pop.ratio.lxshm_redis_batch/shm_batch",
    lib.ratios(per_op.lxshm_redis_batch, per_op.shm_batch), "x time")

  -- ---- (b) each kind, this machine against Redis ------------------------------------------

  print("# dictionary set then get of the record (shm: only where this build has dictionaries)")
  local rd = assert(ns:create_dict(tag .. ".d", 1 << 24))
  local ld = shm:create_dict(tag .. ".d", 1 << 24)
  made[#made + 1] = tag .. ".d"
  contenders = {
    { name = "lxshm_redis", run = function(n)
        for i = 1, n do
          assert(rd:set(i % 100, record))
          rd:get(i % 100)
        end
      end },
  }
  if ld then
    contenders[#contenders + 1] = { name = "shm", run = function(n)
        for i = 1, n do
          assert(ld:set(i % 100, record))
          ld:get(i % 100)
        end
      end }
  end
  if lr and ok_cjson then
    contenders[#contenders + 1] = { name = "lua_redis", run = function(n)
        for i = 1, n do
          lr:set(tag .. ":d:" .. i % 100, cjson.encode(record))
          cjson.decode(lr:get(tag .. ":d:" .. i % 100))
        end
      end }
  end
  per_op = lib.compare(contenders)
  lib.figure("redis.dict.set_get.lxshm_redis", lib.map(per_op.lxshm_redis, us), "µs")
  if per_op.lua_redis then
    lib.figure("redis.dict.set_get.lua_redis", lib.map(per_op.lua_redis, us), "µs")
    lib.figure("redis.dict.set_get.ratio.lxshm_redis/lua_redis",
      lib.ratios(per_op.lxshm_redis, per_op.lua_redis), "x time")
  end
  if per_op.shm then
    pair("redis.dict.set_get", per_op, "shm", "lxshm_redis", us, "µs")
  end
  -- keys: one script for every key, against lua-redis KEYS on the same 100 keys
  contenders = {
    { name = "lxshm_redis", run = function(n)
        for _ = 1, n do
          rd:keys()
        end
      end },
  }
  if lr then
    contenders[#contenders + 1] = { name = "lua_redis", run = function(n)
        for _ = 1, n do
          lr:keys(tag .. ":d:*")
        end
      end }
  end
  per_op = lib.compare(contenders)
  lib.figure("redis.dict.keys100.lxshm_redis", lib.map(per_op.lxshm_redis, us), "µs")
  if per_op.lua_redis then
    lib.figure("redis.dict.keys100.lua_redis", lib.map(per_op.lua_redis, us), "µs")
    lib.figure("redis.dict.keys100.ratio.lxshm_redis/lua_redis",
      lib.ratios(per_op.lxshm_redis, per_op.lua_redis), "x time")
  end

  print("# topic publish then next of the record, one at a time and publish_many of 64")
  local rt = assert(ns:create_topic(tag .. ".t", 1 << 22))
  local lt = shm:create_topic(tag .. ".t", 1 << 22)
  made[#made + 1] = tag .. ".t"
  local rsub = assert(rt:subscribe())
  local lsub = lt and assert(lt:subscribe())
  contenders = {
    { name = "lxshm_redis", run = function(n)
        for _ = 1, n do
          rt:publish(record)
          rsub:next(0)
        end
      end },
    { name = "lxshm_redis_batch", run = function(n)
        local t0 = clock.now()
        for _ = 1, n // 64 + 1 do
          rt:publish_many(batch)
          rsub:next_many(64, 0)
        end
        return (clock.now() - t0) * n / ((n // 64 + 1) * 64)
      end },
  }
  if lt then
    contenders[#contenders + 1] = { name = "shm", run = function(n)
        for _ = 1, n do
          lt:publish(record)
          lsub:next(0)
        end
      end }
  end
  per_op = lib.compare(contenders)
  lib.figure("redis.topic.publish_next.lxshm_redis", lib.map(per_op.lxshm_redis, us), "µs")
  lib.figure("redis.topic.publish_next.lxshm_redis_batch", lib.map(per_op.lxshm_redis_batch, us),
    "µs")
  if per_op.shm then
    pair("redis.topic.publish_next", per_op, "shm", "lxshm_redis", us, "µs")
  end
  if lt then
    lt:close()
    lsub:close()
  end

  print("# ping-pong round trip between two processes: wait, then write the other segment")
  local pongs, rounds = {}, {}
  for _, backend in ipairs({ { "shm", "shm:" }, { "lxshm_redis", url } }) do
    local b = assert(lxshm.connect(backend[2]))
    local a_name, b_name = tag .. ".ping" .. backend[1], tag .. ".pong" .. backend[1]
    made[#made + 1] = a_name
    made[#made + 1] = b_name
    local ping, pong = assert(b:create(a_name, 64)), assert(b:create(b_name, 64))
    local child = lib.spawn("ns_pong", { backend[2], a_name, b_name })
    assert(lib.expect(child, "ready") == "ready")
    local seen = 0
    pongs[#pongs + 1] = { child = child, ping = ping, pong = pong }
    rounds[#rounds + 1] = { name = backend[1], run = function(n)
        for _ = 1, n do
          assert(ping:write("x"))
          seen = assert(pong:wait(seen))
        end
      end }
  end
  per_op = lib.compare(rounds)
  pair("redis.pingpong", per_op, "shm", "lxshm_redis", us, "µs")
  for _, p in ipairs(pongs) do
    assert(p.ping:write("stop"))
    p.child:close()
    p.ping:close()
    p.pong:close()
  end

  -- ---- cleanup -----------------------------------------------------------------------------

  for _, h in ipairs({ rq, lq, rd, rt }) do
    h:close()
  end
  for _, name in ipairs(made) do
    ns:remove(name)
    shm:remove(name)
  end
  ns:close()
end

-- The server goes whatever happens to the measurements.
local ok, err = xpcall(measure, debug.traceback)
stop()
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
