--- Lua values through a segment, one process, on each item of the shared corpus:
--   put_get      seg:put(v) then seg:get(): encode, commit under the lock, copy out, decode
--   codec        lxshm.encode(v) then lxshm.decode(s): the same codec work with no segment
--   cjson        cjson.encode(v) then cjson.decode(s)
-- so that the segment's own cost (lock, two copies, version checks) shows as put_get/codec,
-- and the whole path can be set against the usual way of moving a table as text. Timed in CPU
-- seconds of this process (one process: the wall clock only adds other users' noise), with the
-- malloc state pinned (see lib.pin_malloc).
--   LUA_PATH='lua/?.lua;bench/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/values_bench.lua
local lib = require("lib")
lib.pin_malloc()
local lxshm = require("lxshm")
local cjson = require("cjson")
local clock = lib.clock

local corpus = lib.load_corpus()
local ONLY = os.getenv("LXSHM_BENCH_ONLY")

-- Room for the largest item (the 1 MiB string encodes to 1 MiB + 5 bytes).
local name = lib.unique("bench-values")
local seg = assert(lxshm.create(name, 4 * 1024 * 1024))

print(("# put+get through a segment vs encode+decode, one process, %d repetitions of ~%.2f s"
  .. " CPU, medians; GLIBC_TUNABLES=%s"):format(lib.REPS, lib.BATCH,
  os.getenv("GLIBC_TUNABLES")))
for _, item in ipairs(corpus) do
  if not ONLY or ONLY == item.name then
    local v = item.value
    local encode, decode = lxshm.encode, lxshm.decode
    local cencode, cdecode = cjson.encode, cjson.decode
    local per_op = lib.compare({
      { name = "put_get", run = function(n)
          for _ = 1, n do
            seg:put(v)
            seg:get()
          end
        end },
      { name = "codec", run = function(n)
          for _ = 1, n do
            decode(encode(v))
          end
        end },
      { name = "cjson", run = function(n)
          for _ = 1, n do
            cdecode(cencode(v))
          end
        end },
    }, { timer = clock.cputime })
    local prefix = "values." .. item.name
    for _, k in ipairs({ "put_get", "codec", "cjson" }) do
      lib.figure(prefix .. "." .. k, lib.rate(per_op[k]), "roundtrips/s")
    end
    -- Ratios as speed (how many times as many round trips per second).
    lib.figure(prefix .. ".ratio.put_get/codec", lib.ratios(per_op.codec,
      per_op.put_get), "x speed")
    lib.figure(prefix .. ".ratio.put_get/cjson", lib.ratios(per_op.cjson,
      per_op.put_get), "x speed")
  end
end

seg:close()
lxshm.remove(name)
