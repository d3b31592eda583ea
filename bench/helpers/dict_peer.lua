--- The other processes of bench/dict_bench.lua: `LUA bench/helpers/dict_peer.lua WHAT NAME ...`,
-- under Lua 5.4 or LuaJIT (each with its own build of lxshm). Prints one line:
--   get NAME K / set NAME K    K gets (sets) of the benchmark keys in turn: "<seconds>"
--   mix NAME SECS START        from monotonic time START for SECS seconds: 9 gets, 1 set,
--                              repeated: "<operations>"
local lxshm = require("lxshm")

local now
if rawget(_G, "jit") then
  local ffi = require("ffi")
  ffi.cdef([[
    struct lxshm_bench_ts { long tv_sec; long tv_nsec; };
    int clock_gettime(int clock, struct lxshm_bench_ts *ts);
  ]])
  local ts = ffi.new("struct lxshm_bench_ts")
  now = function()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC, as bench/clock.c
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
  end
else
  now = require("bench.clock").now
end

local N = 100000
local keys = {}
for i = 1, N do
  keys[i] = ("key-%012d"):format(i)
end
local VALUE = string.rep("v", 64)

local what, name = arg[1], arg[2]
local d = assert(lxshm.open_dict(name))

if what == "get" or what == "set" then
  local n, i = tonumber(arg[3]), 0
  local fn = d[what]
  local t0 = now()
  for _ = 1, n do
    i = i + 1
    if i > N then
      i = 1
    end
    fn(d, keys[i], VALUE)
  end
  print(now() - t0)
elseif what == "mix" then
  local start = tonumber(arg[4])
  local stop = start + tonumber(arg[3])
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
  print(ops)
end
