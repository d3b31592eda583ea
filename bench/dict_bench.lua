--- Dictionaries against the alternatives, side by side in one run, repetitions alternated:
--   ngx.shared.DICT  a throw-away nginx (Debian's nginx-light, libnginx-mod-http-lua,
--                    lua-resty-core) on a Unix socket, timing its loops inside one request
--                    (bench/helpers/ngx_dict.lua); 1 worker, and 4 for the 4-process figure
--   Redis            a throw-away redis-server on a loopback port, lua-redis client
--   a segment        holding the whole table, changed with seg:update
-- Single-process get/set of 100,000 keys (16-byte keys, 64-byte values) from Lua 5.4 and, when
-- its build is there or can be made (make LUA=luajit), from LuaJIT; 4 processes doing 90% get /
-- 10% set against 1; memory per key and the fill reached before the first eviction.
--   LUA_PATH='lua/?.lua;bench/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/dict_bench.lua
local lib = require("lib")
lib.pin_malloc()
local lxshm = require("lxshm")
local clock = lib.clock

local N = 100000
local VALUE = string.rep("v", 64)
local keys = {}
for i = 1, N do
  keys[i] = ("key-%012d"):format(i)
end
local MIX_SECS = math.max(0.3, lib.BATCH * 4)

--- Runs a shell command and returns its whole output.
local function run(cmd)
  local f = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = f:read("a")
  f:close()
  return out
end

local function exists(path)
  local f = io.open(path, "r")
  if f then
    f:close()
  end
  return f ~= nil
end

-- ---- the dictionary -------------------------------------------------------------------------

local name = lib.unique("bench-dict")
local d = assert(lxshm.create_dict(name, 64 * 1048576))
for i = 1, N do
  assert(d:set(keys[i], VALUE))
end

local function lxshm_loop(method)
  local fn = d[method]
  return function(n)
    local i = 0
    for _ = 1, n do
      i = i + 1
      if i > N then
        i = 1
      end
      fn(d, keys[i], VALUE)
    end
  end
end

-- ---- nginx ------------------------------------------------------------------------------------

local ngx_modules = "/usr/lib/nginx/modules/"

local function stop_nginx(ngx)
  local f = io.open(ngx.dir .. "/nginx.pid", "r")
  local pid = f and f:read("n")
  if f then
    f:close()
  end
  if pid then
    os.execute("kill " .. math.tointeger(pid))
    for _ = 1, 200 do
      if not exists(ngx.dir .. "/nginx.pid") then
        break
      end
      clock.sleep(0.01)
    end
  end
  os.execute("rm -rf " .. lib.quote(ngx.dir))
end

--- A throw-away nginx with `workers` workers, or nil and why not.
local function start_nginx(workers)
  if not exists("/usr/sbin/nginx") or not exists(ngx_modules .. "ngx_http_lua_module.so") then
    return nil, "nginx with the Lua module is not installed (nginx-light libnginx-mod-http-lua)"
  end
  if run("command -v curl") == "" then
    return nil, "curl is not installed"
  end
  local dir = lib.unique("/tmp/lxshm-bench-nginx")
  assert(os.execute("mkdir -p " .. lib.quote(dir .. "/logs")))
  local script = assert(io.open("bench/helpers/ngx_dict.lua", "r")):read("a")
  local f = assert(io.open(dir .. "/ngx_dict.lua", "w"))
  f:write(script)
  f:close()
  f = assert(io.open(dir .. "/nginx.conf", "w"))
  f:write(([[
load_module %sndk_http_module.so;
load_module %sngx_http_lua_module.so;
worker_processes %d;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  lua_shared_dict d 64m;
  lua_shared_dict m 16m;
  server {
    listen unix:%s/s.sock;
    location / { content_by_lua_file %s/ngx_dict.lua; }
  }
}
]]):format(ngx_modules, ngx_modules, workers, dir, dir, dir, dir))
  f:close()
  local out = run(("nginx -e %s/error.log -p %s -c %s/nginx.conf"):format(lib.quote(dir),
    lib.quote(dir), lib.quote(dir)))
  local ngx = { dir = dir, sock = dir .. "/s.sock", workers = workers }
  function ngx.get(path)
    return run(("curl -s --unix-socket %s %s"):format(lib.quote(ngx.sock),
      lib.quote("http://lxshm" .. path)))
  end
  for _ = 1, 200 do -- up to 2 s for it to listen
    if ngx.get("/fill"):match("^ok") then
      return ngx
    end
    clock.sleep(0.01)
  end
  stop_nginx(ngx)
  return nil, "nginx did not start: " .. out
end

local function ngx_loop(ngx, method)
  return function(n)
    local secs = tonumber(ngx.get(("/%s?n=%d"):format(method, n)))
    return assert(secs, "nginx gave no time")
  end
end

-- ---- LuaJIT ---------------------------------------------------------------------------------

--- The LuaJIT build of lxshm (made here if missing), or nil and why not.
local function luajit_build()
  if run("command -v luajit") == "" then
    return nil, "luajit is not installed"
  end
  if not exists("build/luajit/lxshm/core.so") then
    run("make --no-print-directory LUA=luajit build/luajit/lxshm/core.so")
  end
  if not exists("build/luajit/lxshm/core.so") then
    return nil, "build/luajit/lxshm/core.so could not be built (make LUA=luajit)"
  end
  return "LUA_PATH='lua/?.lua;bench/?.lua;;' LUA_CPATH='build/luajit/?.so;;' luajit"
end

local function peer_loop(interp, method)
  return function(n)
    local out = run(("%s bench/helpers/dict_peer.lua %s %s %d"):format(interp, method,
      lib.quote(name), n))
    return assert(tonumber(out), "dict_peer: " .. out)
  end
end

-- ---- single process ------------------------------------------------------------------------

local ngx1, why1 = start_nginx(1)
local jit_cmd, why_jit = luajit_build()
print(("# 100,000 keys of 16 bytes, values of 64 bytes; get or set each key in turn; %d "
  .. "repetitions, medians"):format(lib.REPS))
if not ngx1 then
  print("# ngx.shared.DICT skipped: " .. why1)
end
if not jit_cmd then
  print("# lxshm from LuaJIT skipped: " .. why_jit)
end
for _, method in ipairs({ "get", "set" }) do
  local contenders = { { name = "lxshm", run = lxshm_loop(method), n = N } }
  if jit_cmd then
    contenders[#contenders + 1] = { name = "lxshm_luajit", run = peer_loop(jit_cmd, method),
      n = N }
  end
  if ngx1 then
    contenders[#contenders + 1] = { name = "ngx", run = ngx_loop(ngx1, method), n = N }
  end
  local per_op = lib.compare(contenders)
  local ns = function(t) return t * 1e9 end
  lib.figure("dict." .. method .. ".lxshm", lib.map(per_op.lxshm, ns), "ns")
  if jit_cmd then
    lib.figure("dict." .. method .. ".lxshm_luajit", lib.map(per_op.lxshm_luajit, ns), "ns")
  end
  if ngx1 then
    lib.figure("dict." .. method .. ".ngx", lib.map(per_op.ngx, ns), "ns")
    lib.figure("dict." .. method .. ".ratio.ngx/lxshm", lib.ratios(per_op.ngx, per_op.lxshm),
      "x time")
    if jit_cmd then
      lib.figure("dict." .. method .. ".ratio.ngx/lxshm_luajit",
        lib.ratios(per_op.ngx, per_op.lxshm_luajit), "x time")
    end
  end
end

-- ---- 4 processes, 90% get / 10% set --------------------------------------------------------

--- Operations per second of `procs` peer processes doing the mix for MIX_SECS together.
local function lxshm_mix(procs)
  return function()
    local start = clock.now() + 0.3 -- after every peer has started and built its keys
    local children = {}
    for p = 1, procs do
      children[p] = lib.spawn("dict_peer", { "mix", name, MIX_SECS, start })
    end
    local ops = 0
    for _, c in ipairs(children) do
      ops = ops + assert(tonumber(lib.expect(c, "operations")))
      c:close()
    end
    return MIX_SECS / ops -- seconds per operation, all processes together
  end
end

--- As lxshm_mix, with `procs` requests to nginx: sent one after the other, 50 ms apart, so
-- that each goes to a worker not yet busy (a busy worker accepts nothing), and started together.
local function ngx_mix(ngx, procs)
  return function()
    for _ = 1, 5 do -- until the requests land on distinct workers
      local start = clock.now() + 0.05 * procs + 0.3
      local cmd = {}
      for _ = 1, procs do
        cmd[#cmd + 1] = ("curl -s --unix-socket %s %s & sleep 0.05;"):format(lib.quote(ngx.sock),
          lib.quote(("http://lxshm/mix?secs=%g&start=%.6f"):format(MIX_SECS, start)))
      end
      local out = run("{ " .. table.concat(cmd, " ") .. " wait; }")
      local ops, pids, distinct = 0, {}, 0
      for n, pid in out:gmatch("(%d+) (%d+)") do
        ops = ops + tonumber(n)
        if not pids[pid] then
          pids[pid] = true
          distinct = distinct + 1
        end
      end
      if distinct == procs then
        return MIX_SECS / ops
      end
    end
    error("nginx would not spread the requests over its workers")
  end
end

local ngx4, why4 = start_nginx(4)
print(("# 90%% get / 10%% set on 100,000 keys for %g s, all processes together: operations "
  .. "per second; %d repetitions, medians"):format(MIX_SECS, lib.REPS))
if not ngx4 then
  print("# ngx.shared.DICT with 4 workers skipped: " .. tostring(why4))
end
do
  local contenders = { { name = "lxshm1", run = lxshm_mix(1), n = 1 },
    { name = "lxshm4", run = lxshm_mix(4), n = 1 } }
  if ngx1 and ngx4 then
    contenders[#contenders + 1] = { name = "ngx1", run = ngx_mix(ngx1, 1), n = 1 }
    contenders[#contenders + 1] = { name = "ngx4", run = ngx_mix(ngx4, 4), n = 1 }
  end
  local per_op = lib.compare(contenders)
  local mops = function(t) return 1 / t / 1e6 end
  lib.figure("dict.mix.lxshm.1proc", lib.map(per_op.lxshm1, mops), "M ops/s")
  lib.figure("dict.mix.lxshm.4proc", lib.map(per_op.lxshm4, mops), "M ops/s")
  lib.figure("dict.mix.lxshm.ratio.4proc/1proc", lib.ratios(per_op.lxshm1, per_op.lxshm4),
    "x rate")
  if per_op.ngx4 then
    lib.figure("dict.mix.ngx.1worker", lib.map(per_op.ngx1, mops), "M ops/s")
    lib.figure("dict.mix.ngx.4workers", lib.map(per_op.ngx4, mops), "M ops/s")
    lib.figure("dict.mix.ngx.ratio.4workers/1worker", lib.ratios(per_op.ngx1, per_op.ngx4),
      "x rate")
    lib.figure("dict.mix.ratio.lxshm4/ngx4", lib.ratios(per_op.ngx4, per_op.lxshm4), "x rate")
  end
end
if ngx4 then
  stop_nginx(ngx4)
end

-- ---- Redis ----------------------------------------------------------------------------------

--- A private redis-server on a free loopback port, or nil and why not.
local function start_redis()
  local ok_socket, socket = pcall(require, "socket")
  lib.use_lua53_modules()
  local ok_redis, redis = pcall(require, "redis")
  if not ok_socket or not ok_redis or run("command -v redis-server") == "" then
    return nil, "redis-server, luasocket or lua-redis is missing"
  end
  local probe = assert(socket.bind("127.0.0.1", 0))
  local _, port = probe:getsockname()
  probe:close()
  local dir = lib.unique("/tmp/lxshm-bench-redis")
  assert(os.execute("mkdir -p " .. lib.quote(dir)))
  if not os.execute(("redis-server --bind 127.0.0.1 --port %d --save '' --appendonly no"
      .. " --daemonize yes --dir %s --pidfile %s/redis.pid --logfile %s/redis.log"):format(
      port, lib.quote(dir), lib.quote(dir), lib.quote(dir))) then
    return nil, "redis-server did not start"
  end
  for _ = 1, 200 do
    local ok, client = pcall(redis.connect, "127.0.0.1", tonumber(port))
    if ok then
      return { dir = dir, client = client }
    end
    clock.sleep(0.01)
  end
  return nil, "redis-server never answered"
end

local function stop_redis(r)
  pcall(r.client.shutdown, r.client)
  for _ = 1, 100 do
    if not exists(r.dir .. "/redis.pid") then
      break
    end
    clock.sleep(0.01)
  end
  os.execute("rm -rf " .. lib.quote(r.dir))
end

local redis_server, why_redis = start_redis()
print(("# get and set of the same keys and values, one process, against Redis; %d repetitions, "
  .. "medians"):format(lib.REPS))
if redis_server then
  local r = redis_server.client
  for _, method in ipairs({ "get", "set" }) do
    local per_op = lib.compare({
      { name = "lxshm", run = lxshm_loop(method) },
      { name = "redis", run = function(n)
          local i = 0
          for _ = 1, n do
            i = i + 1
            if i > N then
              i = 1
            end
            if method == "get" then
              r:get(keys[i])
            else
              r:set(keys[i], VALUE)
            end
          end
        end },
    })
    local ns = function(t) return t * 1e9 end
    lib.figure("dict.redis." .. method .. ".lxshm", lib.map(per_op.lxshm, ns), "ns")
    lib.figure("dict.redis." .. method .. ".redis", lib.map(per_op.redis, ns), "ns")
    lib.figure("dict.redis." .. method .. ".ratio.redis/lxshm",
      lib.ratios(per_op.redis, per_op.lxshm), "x time")
  end
  stop_redis(redis_server)
else
  print("# Redis skipped: " .. tostring(why_redis))
end

-- ---- against a segment holding the whole table ----------------------------------------------

do
  print(("# one key of a 10,000-key table changed: dict set against seg:update of the table; "
    .. "%d repetitions, medians"):format(lib.REPS))
  local segname = lib.unique("bench-dict-seg")
  local seg = assert(lxshm.create(segname, 4 * 1048576))
  local t = {}
  for i = 1, 10000 do
    t["key" .. i] = VALUE
  end
  assert(seg:put(t))
  local tname = lib.unique("bench-dict-table")
  local td = assert(lxshm.create_dict(tname, 4 * 1048576))
  for k, v in pairs(t) do
    assert(td:set(k, v))
  end
  local per_op = lib.compare({
    { name = "dict", run = function(n)
        for i = 1, n do
          td:set("key" .. (i % 10000 + 1), VALUE)
        end
      end },
    { name = "segment", run = function(n)
        for i = 1, n do
          seg:update(function(tab)
            tab["key" .. (i % 10000 + 1)] = VALUE
            return tab
          end)
        end
      end },
  })
  local us = function(x) return x * 1e6 end
  lib.figure("dict.table.dict_set", lib.map(per_op.dict, us), "µs")
  lib.figure("dict.table.segment_update", lib.map(per_op.segment, us), "µs")
  lib.figure("dict.table.ratio.segment/dict", lib.ratios(per_op.segment, per_op.dict), "x time")
  seg:close()
  lxshm.remove(segname)
  td:close()
  lxshm.remove(tname)
end

-- ---- memory -----------------------------------------------------------------------------------

do
  print("# memory: 100,000 keys of 16 bytes with 64-byte values in 16 MiB (bytes of the zone or "
    .. "capacity in use, per key); fill with 16-byte keys and values of 16 B..4 KiB until the "
    .. "first eviction (key and value bytes, of the capacity)")
  local mname = lib.unique("bench-dict-mem")
  local m = assert(lxshm.create_dict(mname, 16 * 1048576))
  local fresh_used = m:stat().used -- the index and reference bits: sized by the capacity
  for i = 1, N do
    assert(m:set(keys[i], VALUE))
  end
  local used = m:stat().used
  print(("dict.memory.lxshm.per_key: %s B  # of which %s B for the buckets and reference bits "
    .. "of a 16 MiB dictionary"):format(lib.fmt(used / N), lib.fmt(fresh_used / N)))
  if ngx1 then
    local bytes, count = ngx1.get("/memory"):match("(%d+) (%d+)")
    print(("dict.memory.ngx.per_key: %s B"):format(lib.fmt(tonumber(bytes) / tonumber(count))))
    print(("dict.memory.ratio.ngx/lxshm: %s x  # bytes per key"):format(
      lib.fmt(tonumber(bytes) / tonumber(count) / (used / N))))
  end
  assert(m:flush_all())
  local x, kv, i = 12345, 0, 0
  while true do
    x = (x * 1103515245 + 12345) % 2147483648
    local len = 16 + x % (4096 - 16 + 1)
    i = i + 1
    local ok, evicted = m:set(("key-%012d"):format(i), string.rep("v", len))
    if not ok or evicted > 0 then
      break
    end
    kv = kv + 16 + len
  end
  print(("dict.fill.lxshm: %s %%  # %d keys before the first eviction"):format(
    lib.fmt(100 * kv / m:capacity()), i - 1))
  if ngx1 then
    local nkv, cap = ngx1.get("/fillratio"):match("(%d+) (%d+)")
    print(("dict.fill.ngx: %s %%"):format(lib.fmt(100 * tonumber(nkv) / tonumber(cap))))
  end
  m:close()
  lxshm.remove(mname)
end

if ngx1 then
  stop_nginx(ngx1)
end
d:close()
lxshm.remove(name)
