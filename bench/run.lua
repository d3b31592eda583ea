--- make bench: runs every benchmark script, each in its own process (so that one's malloc and
-- cache state does not shape another's figures), after a header that says on what machine and
-- under what load; echoes their lines as they come; ends with a markdown table of the headline
-- figures and ratios, ready for the README. Reports, never passes or fails on speed.
--   LUA_PATH='lua/?.lua;bench/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/run.lua [NAME...]
-- NAMEs (e.g. queue_bench) run only those scripts. LXSHM_BENCH_REPS and LXSHM_BENCH_TIME (see
-- bench/lib.lua) shorten or lengthen every script.
-- With LXSHM_BENCH_LUAJIT (LuaJIT's interpreter) and LXSHM_BENCH_LUAJIT_CPATH (the module path
-- of lxshm and bench.clock built for it), as make bench sets them, each script runs on LuaJIT
-- too, right after its run on this runtime, alternatives included (lua-cjson, MessagePack.lua,
-- luasocket and lua-redis as LuaJIT loads them), and the table gains LuaJIT's columns.
local lib = require("lib")
local clock = lib.clock

local LUAJIT = os.getenv("LXSHM_BENCH_LUAJIT")
local LUAJIT_CPATH = os.getenv("LXSHM_BENCH_LUAJIT_CPATH")
if LUAJIT == "" then
  LUAJIT = nil
end

local SCRIPTS = { "segment_bench", "codec_bench", "values_bench", "pingpong_bench",
  "queue_bench", "dict_bench", "topic_bench", "redis_bench" }

local function first_line(cmd)
  local f = io.popen(cmd .. " 2>/dev/null")
  local s = f and f:read("*l")
  if f then
    f:close()
  end
  return s or "?"
end

local function loadavg()
  local f = io.open("/proc/loadavg", "r")
  local s = f and f:read("*l") or "?"
  if f then
    f:close()
  end
  return s:match("^(%S+ %S+ %S+)") or s
end

local scripts = #arg > 0 and arg or SCRIPTS
local started = clock.now()
print("# lxshm benchmarks")
print("# date: " .. os.date("!%Y-%m-%d %H:%M:%S UTC"))
print(("# machine: nproc=%s, kernel %s, %s"):format(first_line("nproc"),
  first_line("uname -r"), first_line("sed -n 's/^model name[^:]*: //p' /proc/cpuinfo")))
print("# load average (1, 5, 15 min) at start: " .. loadavg())
print(("# LXSHM_BENCH_REPS=%d LXSHM_BENCH_TIME=%g; figures are medians, ratios pair by pair")
  :format(lib.REPS, lib.BATCH))

-- The runtimes each script runs on; figures of the second are stored as "luajit.<name>".
-- dict_bench and topic_bench measure LuaJIT themselves where they need it.
local LUAJIT_SCRIPTS = { segment_bench = true, codec_bench = true, values_bench = true,
  pingpong_bench = true, queue_bench = true }
local runtimes = { { label = lib.RUNTIME, prefix = "", command = lib.quote(lib.LUA) } }
if LUAJIT then
  local version = first_line(lib.quote(LUAJIT) .. " -e 'print(jit.version)'")
  runtimes[2] = { label = version, prefix = "luajit.", command = "LUA_CPATH="
    .. lib.quote(LUAJIT_CPATH) .. " " .. lib.quote(LUAJIT), only = LUAJIT_SCRIPTS }
  print("# segment, codec, values, ping-pong and queue scripts run on " .. lib.RUNTIME
    .. ", then on " .. version)
else
  print("# no LuaJIT columns: LXSHM_BENCH_LUAJIT is not set (make bench sets it)")
end

-- Every figure line of every script, by name: value and unit.
local figures = {}
local failed = {}
for _, name in ipairs(scripts) do
  local path = "bench/" .. name:gsub("%.lua$", "") .. ".lua"
  for _, rt in ipairs(runtimes) do
    if not rt.only or rt.only[path:match("([%w_]+)%.lua$")] then
      print()
      print("## " .. path .. " on " .. rt.label)
      io.stdout:flush()
      local t0 = clock.now()
      local child = assert(io.popen(rt.command .. " " .. lib.quote(path) .. " 2>&1", "r"))
      for line in child:lines() do
        print(line)
        io.stdout:flush()
        local fname, value, unit = line:match("^([%w%._/%-]+): (%-?[%d%.]+[%deE%+%-]*) ([^#]-)%s*#")
        if not fname then
          fname, value, unit = line:match("^([%w%._/%-]+): (%-?[%d%.]+[%deE%+%-]*) (.-)%s*$")
        end
        if fname then
          figures[rt.prefix .. fname] = { value = tonumber(value), unit = unit }
        end
      end
      local ok = child:close()
      if not ok then
        failed[#failed + 1] = path .. " on " .. rt.label
        print("# " .. path .. " on " .. rt.label .. " FAILED")
      end
      print(("# %s on %s took %.1f s; load average now %s"):format(path, rt.label,
        clock.now() - t0, loadavg()))
    end
  end
end
print()
print(("# all scripts took %.1f s; load average at end: %s"):format(clock.now() - started,
  loadavg()))
if #failed > 0 then
  print("# failed: " .. table.concat(failed, ", "))
end

--- The markdown table. Each row: a label, the lxshm figure, the alternative's label and
-- figure, and the ratio figure (already taken pair by pair by the script); then, when LuaJIT ran
-- too, the same three on LuaJIT. Cells are functions of a figure-name prefix ("" or "luajit.").
local function cell(name, scale, unit)
  return function(prefix)
    local f = figures[prefix .. name]
    if not f then
      return "–"
    end
    return lib.fmt(f.value * (scale or 1)) .. " " .. (unit or f.unit)
  end
end

local function ratio(name, meaning)
  return function(prefix)
    local f = figures[prefix .. name]
    if not f then
      return "–"
    end
    return lib.fmt(f.value) .. "× " .. meaning
  end
end

-- A cell given as text (or nil: empty) is the same on every runtime.
local function cellf(x)
  if type(x) == "function" then
    return x
  end
  return function()
    return x or ""
  end
end

local rows = {}
local function row(label, lx, alt_label, alt, r)
  lx, alt, r = cellf(lx), cellf(alt), cellf(r)
  local cells = { label, lx(""), alt_label .. (alt("") ~= "" and (" " .. alt("")) or ""), r("") }
  if LUAJIT then
    cells[#cells + 1] = lx("luajit.")
    cells[#cells + 1] = alt("luajit.")
    cells[#cells + 1] = r("luajit.")
  end
  rows[#rows + 1] = "| " .. table.concat(cells, " | ") .. " |"
end

row("ping-pong round trip, two processes", cell("pingpong.roundtrip.lxshm", 1, "µs"),
  "pipe pair", cell("pingpong.roundtrip.pipe", 1, "µs"),
  ratio("pingpong.ratio.lxshm/pipe", "the time"))
row("", nil, "Unix socket", cell("pingpong.roundtrip.unix", 1, "µs"),
  ratio("pingpong.ratio.lxshm/unix", "the time"))
for _, place in ipairs({ { "cpu0", "same, both pinned to CPU 0" },
  { "split", "same, parent pinned to CPU 0, child to CPU 1" },
  { "busy", "same, CPU 1 busy with a nice -10 loop" } }) do
  local p = "pingpong." .. place[1] .. "."
  row(place[2], cell(p .. "roundtrip.lxshm", 1, "µs"), "pipe pair",
    cell(p .. "roundtrip.pipe", 1, "µs"), ratio(p .. "ratio.lxshm/pipe", "the time"))
  row("", nil, "Unix socket", cell(p .. "roundtrip.unix", 1, "µs"),
    ratio(p .. "ratio.lxshm/unix", "the time"))
end
row("CPU used by a process blocked 1 s in `wait`", cell("idle.wait_1s.child_cpu", 1, "µs"), "")
row("CPU of a `wait` timing out after 10 ms (spin, then sleep)",
  cell("idle.wait_10ms.cpu", 1, "µs"), "same on one CPU (no spin)",
  cell("idle.cpu0.wait_10ms.cpu", 1, "µs"))
for _, mine in ipairs({ { "lxshm", "one-way 64-byte messages, 1 producer → 1 consumer, "
  .. "`push`/`pop`" }, { "lxshm_batch", "same, `push_many`/`pop_many` of 64" } }) do
  for _, alt in ipairs({ { "pipe", "pipe (stdio-buffered lines)" },
    { "pipe_flush", "pipe, a flush per message" }, { "unix", "Unix socket" },
    { "redis", "Redis RPUSH → BLPOP" } }) do
    row(alt[1] == "pipe" and mine[2] or "",
      alt[1] == "pipe" and cell("queue.oneway." .. mine[1], 1, "M msgs/s") or nil, alt[2],
      cell("queue.oneway." .. alt[1], 1, "M msgs/s"),
      ratio(("queue.oneway.ratio.%s/%s"):format(mine[1], alt[1]), "the rate"))
  end
end
row("futex calls per message while both are busy", function(prefix)
  local p = figures[prefix .. "queue.futex.producer.all"]
  local c = figures[prefix .. "queue.futex.consumer.all"]
  return p and c and ("producer %s, consumer %s"):format(lib.fmt(p.value), lib.fmt(c.value))
    or "–"
end, "")
row("one `push`, then one `pop`, one process alone", function(prefix)
  return cell("queue.solo.push", 1, "ns")(prefix) .. ", " .. cell("queue.solo.pop", 1, "ns")(prefix)
end, "")
row("4 producers × 3 consumers, one queue", cell("queue.lxshm.4x3", 1, "M msgs/s"),
  "1 × 1, same harness", cell("queue.lxshm.1x1", 1, "M msgs/s"),
  ratio("queue.lxshm.ratio.4x3/1x1", "the rate"))
row("sleeps per message, 4 × 3 (all processes)", cell("queue.lxshm.4x3.sleeps", 1, ""),
  "1 × 1", cell("queue.lxshm.1x1.sleeps", 1, ""))
local ITEMS = { "record", "gamestate", "floats10k", "string1M", "config" }
for _, item in ipairs(ITEMS) do
  local p = "values." .. item
  row("`put`+`get` through a segment, " .. item, cell(p .. ".put_get", 1, "/s"),
    "`encode`+`decode` alone", cell(p .. ".codec", 1, "/s"),
    ratio(p .. ".ratio.put_get/codec", "the rate"))
  row("", nil, "lua-cjson encode+decode", cell(p .. ".cjson", 1, "/s"),
    ratio(p .. ".ratio.put_get/cjson", "the rate"))
end
for _, item in ipairs(ITEMS) do
  local p = "codec." .. item
  row("codec round trip, " .. item, cell(p .. ".roundtrip.lxshm", 1, "/s"), "lua-cjson",
    cell(p .. ".roundtrip.cjson", 1, "/s"), ratio(p .. ".ratio.lxshm/cjson", "the rate"))
  row("", nil, "MessagePack.lua", cell(p .. ".roundtrip.msgpack", 1, "/s"),
    ratio(p .. ".ratio.lxshm/msgpack", "the rate"))
end
row("64-byte `write` + `read`, one process", cell("segment.write_read.64B.lxshm"),
  "two `memcpy`s of 64 B", cell("segment.write_read.64B.memcpy_x2"),
  ratio("segment.write_read.64B.ratio.lxshm/memcpy_x2", "the time"))
row("1 MiB `write` + `read`, one process", cell("segment.write_read.1MiB.lxshm"),
  "two `memcpy`s of 1 MiB", cell("segment.write_read.1MiB.memcpy_x2"),
  ratio("segment.write_read.1MiB.ratio.lxshm/memcpy_x2", "the time"))
-- Dictionaries (bench/dict_bench.lua): the alternative's time or rate over lxshm's.
for _, m in ipairs({ "get", "set" }) do
  row(("dict `%s`, 100,000 keys (16 B keys, 64 B values), Lua 5.4"):format(m),
    cell("dict." .. m .. ".lxshm", 1, "ns"), "ngx.shared.DICT (LuaJIT, in nginx)",
    cell("dict." .. m .. ".ngx", 1, "ns"), ratio("dict." .. m .. ".ratio.ngx/lxshm",
      "faster (ngx time ÷ lxshm time)"))
  row("same, lxshm from LuaJIT", cell("dict." .. m .. ".lxshm_luajit", 1, "ns"),
    "ngx.shared.DICT", cell("dict." .. m .. ".ngx", 1, "ns"),
    ratio("dict." .. m .. ".ratio.ngx/lxshm_luajit", "faster"))
  row(("dict `%s`, same keys, one process"):format(m),
    cell("dict.redis." .. m .. ".lxshm", 1, "ns"),
    "Redis (loopback TCP, lua-redis)", cell("dict.redis." .. m .. ".redis", 1, "ns"),
    ratio("dict.redis." .. m .. ".ratio.redis/lxshm", "faster"))
end
row("dict, 4 processes 90% get / 10% set", cell("dict.mix.lxshm.4proc", 1, "M ops/s"),
  "1 process, same", cell("dict.mix.lxshm.1proc", 1, "M ops/s"),
  ratio("dict.mix.lxshm.ratio.4proc/1proc", "the rate"))
row("", "", "ngx.shared.DICT, 4 workers", cell("dict.mix.ngx.4workers", 1, "M ops/s"),
  ratio("dict.mix.ratio.lxshm4/ngx4", "the rate"))
row("ngx.shared.DICT 4 workers over 1", cell("dict.mix.ngx.ratio.4workers/1worker", 1, "×"),
  "", "", "")
row("change one key of a 10,000-key table: dict `set`", cell("dict.table.dict_set", 1, "µs"),
  "`seg:update` of the whole table", cell("dict.table.segment_update", 1, "µs"),
  ratio("dict.table.ratio.segment/dict", "faster"))
row("dict memory per key (100,000 keys, 16 B + 64 B)", cell("dict.memory.lxshm.per_key", 1, "B"),
  "ngx.shared.DICT", cell("dict.memory.ngx.per_key", 1, "B"),
  ratio("dict.memory.ratio.ngx/lxshm", "less memory"))
row("dict filled before the first eviction (values 16 B..4 KiB)", cell("dict.fill.lxshm", 1, "%"),
  "ngx.shared.DICT", cell("dict.fill.ngx", 1, "%"), "")
-- Topics (bench/topic_bench.lua).
for _, mine in ipairs({ { "lxshm", "fan-out 1 → 4 subscriber processes, 64 B, `next_many`" },
  { "lxshm_next", "same, subscribers calling `next`" } }) do
  for _, alt in ipairs({ { "pipe", "4 pipes, a flush per message" },
    { "redis", "Redis PUBLISH → 4 SUBSCRIBE" } }) do
    row(alt[1] == "pipe" and mine[2] or "",
      alt[1] == "pipe" and cell("topic.fanout." .. mine[1], 1, "M msgs/s") or "", alt[2],
      cell("topic.fanout." .. alt[1], 1, "M msgs/s"),
      ratio(("topic.fanout.ratio.%s/%s"):format(mine[1], alt[1]), "the rate"))
  end
end
row("publisher's own rate with 4 subscribers", cell("topic.publisher.with4", 1, "M msgs/s"),
  "with none", cell("topic.publisher.alone", 1, "M msgs/s"),
  ratio("topic.publisher.ratio.with4/alone", "the rate"))
row("same, publisher on CPU 0, subscribers on CPU 1", cell("topic.publisher.pinned.with4", 1,
  "M msgs/s"), "with none", cell("topic.publisher.pinned.alone", 1, "M msgs/s"),
  ratio("topic.publisher.pinned.ratio.with4/alone", "the rate"))
row("latency, publish → sleeping `next`, median", cell("topic.latency.lxshm.median", 1, "µs"),
  "pipe write → read", cell("topic.latency.pipe.median", 1, "µs"),
  ratio("topic.latency.ratio.lxshm/pipe.median", "the time"))
row("latency, 99th percentile", cell("topic.latency.lxshm.p99", 1, "µs"), "pipe",
  cell("topic.latency.pipe.p99", 1, "µs"), "")
row("C limits (same run)", "", "C SPSC ring, 2 processes", cell("topic.c.spsc", 1, "M msgs/s"),
  "")
row("", "", "fan-out 1 → 4 through lxshm's C API", cell("topic.c.fanout", 1, "M msgs/s"), "")

-- bench/redis_bench.lua: lxshm on Redis against lua-redis + lua-cjson, then what each kind
-- costs on Redis against shared memory.
for _, item in ipairs({ "record", "gamestate", "floats10k", "string1M", "config" }) do
  local p = "redis.put_get." .. item
  row("Redis: `put`+`get` of a segment, " .. item, cell(p .. ".lxshm_redis", 1, "µs"),
    "lua-redis SET+GET, lua-cjson", cell(p .. ".lua_redis", 1, "µs"),
    ratio(p .. ".ratio.lxshm_redis/lua_redis", "the time"))
end
local q = "redis.queue.push_pop."
row("Redis: queue `push`+`pop`, record", cell(q .. "lxshm_redis", 1, "µs"),
  "lua-redis RPUSH+LPOP, lua-cjson", cell(q .. "lua_redis", 1, "µs"),
  ratio(q .. "ratio.lxshm_redis/lua_redis", "the time"))
row("same, `push_many`/`pop_many` of 64, per value", cell(q .. "lxshm_redis_batch", 1, "µs"),
  "lua-redis RPUSH+LPOP, lua-cjson", cell(q .. "lua_redis", 1, "µs"),
  ratio(q .. "ratio.lxshm_redis_batch/lua_redis", "the time"))
row("", "", "lua-redis pipeline of 64 RPUSH, 64 LPOP", cell(q .. "lua_redis_pipeline", 1, "µs"),
  ratio(q .. "ratio.lxshm_redis_batch/lua_redis_pipeline", "the time"))
row("Redis: dict `set`+`get`, record", cell("redis.dict.set_get.lxshm_redis", 1, "µs"),
  "lua-redis SET+GET, lua-cjson", cell("redis.dict.set_get.lua_redis", 1, "µs"),
  ratio("redis.dict.set_get.ratio.lxshm_redis/lua_redis", "the time"))
row("Redis: dict `keys()` of 100", cell("redis.dict.keys100.lxshm_redis", 1, "µs"),
  "lua-redis KEYS", cell("redis.dict.keys100.lua_redis", 1, "µs"),
  ratio("redis.dict.keys100.ratio.lxshm_redis/lua_redis", "the time"))
for _, kind in ipairs({
  { "redis.put_get.record", "segment `put`+`get`, record" },
  { "redis.queue.push_pop", "queue `push`+`pop`, record" },
  { "redis.dict.set_get", "dict `set`+`get`, record" },
  { "redis.topic.publish_next", "topic `publish`+`next`, record" },
  { "redis.pingpong", "ping-pong round trip, two processes (`wait`, `write`)" },
}) do
  row("leaving one machine: " .. kind[2], cell(kind[1] .. ".lxshm_redis", 1, "µs"),
    "shared memory", cell(kind[1] .. ".shm", 1, "µs"),
    ratio(kind[1] .. ".ratio.lxshm_redis/shm", "the time"))
end
row("leaving one machine: queue, batches of 64, per value",
  cell(q .. "lxshm_redis_batch", 1, "µs"), "shared memory, batches of 64",
  cell(q .. "shm_batch", 1, "µs"), ratio(q .. "ratio.lxshm_redis_batch/shm_batch", "the time"))
row("Redis: topic `publish_many`+`next_many` of 64, per message",
  cell("redis.topic.publish_next.lxshm_redis_batch", 1, "µs"), "", "", "")

print()
if LUAJIT then
  print("| figure | lxshm | alternative | ratio (lxshm ÷ alternative) | lxshm on LuaJIT"
    .. " | alternative on LuaJIT | ratio on LuaJIT |")
  print("| --- | --: | --- | --: | --: | --: | --: |")
else
  print("| figure | lxshm | alternative | ratio (lxshm ÷ alternative) |")
  print("| --- | --: | --- | --: |")
end
for _, r in ipairs(rows) do
  print(r)
end

-- The bar for LuaJIT (issue 11): lxshm's codec beats lua-cjson on LuaJIT on every corpus item.
if LUAJIT then
  local parts, faster = {}, 0
  for _, item in ipairs(ITEMS) do
    local f = figures["luajit.codec." .. item .. ".ratio.lxshm/cjson"]
    parts[#parts + 1] = item .. " " .. (f and (lib.fmt(f.value) .. "×") or "–")
    if f and f.value > 1 then
      faster = faster + 1
    end
  end
  print()
  print(("# codec round trips on LuaJIT, lxshm ÷ lua-cjson (rate): %s; %d of %d items faster")
    :format(table.concat(parts, ", "), faster, #ITEMS))
end
os.exit(#failed == 0 and 0 or 1)
