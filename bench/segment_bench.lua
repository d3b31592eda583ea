--- Segments from Lua against a plain memcpy: a 64-byte and a 1 MiB value written and read back
-- in one process. A write+read makes at least two copies (into the mapping, out of it), so
-- the baseline is two memcpys of the same size, timed in C.
--   LUA_PATH='lua/?.lua;bench/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/segment_bench.lua
local lib = require("lib")
lib.pin_malloc()
local lxshm = require("lxshm")
local clock = lib.clock

local name = ("bench-seg-%d"):format(math.random(1, 1e9))
local seg = assert(lxshm.create(name, 1024 * 1024))

print(("# segment write+read in one process, %d repetitions, medians"):format(lib.REPS))
for _, size in ipairs({ 64, 1024 * 1024 }) do
  local value = string.rep("v", size)
  local per_op = lib.compare({
    { name = "lxshm", run = function(n)
        for _ = 1, n do
          seg:write(value)
          seg:read()
        end
      end },
    { name = "memcpy", run = function(n) return clock.memcpy(size, 2 * n) end },
  })
  local label = size == 64 and "64B" or "1MiB"
  if size == 64 then
    local ns = function(t) return t * 1e9 end
    lib.figure("segment.write_read.64B.lxshm", lib.map(per_op.lxshm, ns), "ns")
    lib.figure("segment.write_read.64B.memcpy_x2", lib.map(per_op.memcpy, ns), "ns")
  else
    local gbs = function(t) return size / t / 1e9 end
    lib.figure("segment.write_read.1MiB.lxshm", lib.map(per_op.lxshm, gbs), "GB/s")
    lib.figure("segment.write_read.1MiB.memcpy_x2", lib.map(per_op.memcpy, gbs), "GB/s")
  end
  lib.figure("segment.write_read." .. label .. ".ratio.lxshm/memcpy_x2",
    lib.ratios(per_op.lxshm, per_op.memcpy), "x time")
end

seg:close()
lxshm.remove(name)
