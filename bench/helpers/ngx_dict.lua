--- The ngx.shared.DICT side of bench/dict_bench.lua, run inside a throw-away nginx by
-- content_by_lua_file (LuaJIT, resty.core loaded). Each request does one thing and answers with
-- one line:
--   /fill           stores the N benchmark keys in zone `d` (16-byte keys, 64-byte values)
--   /get?n=K        K gets of those keys in turn: "<seconds>"
--   /set?n=K        K sets of those keys in turn: "<seconds>"
--   /mix?secs=S&start=T   from monotonic time T (busy-waiting, so that the worker stays busy
--                   and the other requests go to other workers) for S seconds: 9 gets, 1 set,
--                   repeated: "<operations> <worker pid>"
--   /memory         zone `m` emptied, then filled with the N keys: "<bytes used> <keys>"
--   /fillratio      zone `m` emptied, then filled with 16-byte keys and 16 B..4 KiB values from
--                   the same sequence lxshm uses, until the first forced eviction:
--                   "<key and value bytes> <zone bytes>"
-- luacheck: globals ngx
local ffi = require("ffi")

if not pcall(ffi.typeof, "struct lxshm_bench_ts") then
  ffi.cdef([[
    struct lxshm_bench_ts { long tv_sec; long tv_nsec; };
    int clock_gettime(int clock, struct lxshm_bench_ts *ts);
  ]])
end
local ts = ffi.new("struct lxshm_bench_ts")
local function now() -- CLOCK_MONOTONIC, the clock lxshm and bench/clock.c use
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local N = 100000
local keys = {}
for i = 1, N do
  keys[i] = ("key-%012d"):format(i)
end
local VALUE = string.rep("v", 64)
local args = ngx.req.get_uri_args()
local what = ngx.var.uri:sub(2)

local function loop(d, fn, n)
  local i = 0
  local t0 = now()
  for _ = 1, n do
    i = i + 1
    if i > N then
      i = 1
    end
    fn(d, keys[i], VALUE)
  end
  return now() - t0
end

local d = ngx.shared.d
if what == "fill" then
  for i = 1, N do
    assert(d:set(keys[i], VALUE))
  end
  ngx.say("ok")
elseif what == "get" then
  ngx.say(loop(d, d.get, tonumber(args.n)))
elseif what == "set" then
  ngx.say(loop(d, d.set, tonumber(args.n)))
elseif what == "mix" then
  local start, stop = tonumber(args.start), tonumber(args.start) + tonumber(args.secs)
  while now() < start do -- luacheck: ignore 542
  end
  local ops, i = 0, 0
  while now() < stop do
    for j = 1, 10 do
      i = i + 1
      if i > N then
        i = 1
      end
      if j == 10 then
        d:set(keys[i], VALUE)
      else
        d:get(keys[i])
      end
    end
    ops = ops + 10
  end
  ngx.say(ops, " ", ngx.worker.pid())
elseif what == "memory" then
  local m = ngx.shared.m
  m:flush_all()
  m:flush_expired()
  local before = m:free_space()
  for i = 1, N do
    assert(m:set(keys[i], VALUE))
  end
  ngx.say(before - m:free_space(), " ", N)
elseif what == "fillratio" then
  local m = ngx.shared.m
  m:flush_all()
  m:flush_expired()
  local x, kv, i = 12345, 0, 0
  while true do
    x = (x * 1103515245 + 12345) % 2147483648
    local len = 16 + x % (4096 - 16 + 1)
    i = i + 1
    local ok, _, forcible = m:set(("key-%012d"):format(i), string.rep("v", len))
    if not ok or forcible then
      break
    end
    kv = kv + 16 + len
  end
  ngx.say(kv, " ", m:capacity())
end
