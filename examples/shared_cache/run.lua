--- A shared cache for a build pipeline: three worker processes checksum generated files, cache
-- each result for a while in a dictionary, and skip the files another worker did already (or is
-- doing now); a monitor process waits on the "done" counter and prints progress. No server: one
-- lxshm dictionary.
--   LUA_PATH='lua/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/shared_cache/run.lua
local lxshm = require("lxshm")

local name = ("cache-%d-%d"):format(os.time(), math.random(1, 1e9))
local cache = assert(lxshm.create_dict(name, 1024 * 1024))
local FILES, WORKERS = 40, 3

local lua = arg[-1] or "lua5.4"
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local function start(script, ...)
  return assert(io.popen(table.concat({ lua, dir .. "/" .. script, name, ... }, " "), "r"))
end

local monitor = start("monitor.lua", FILES)
local workers = {}
for i = 1, WORKERS do
  workers[i] = start("worker.lua", "w" .. i, FILES)
end
print(("run: %d workers checksum %d files through the cache %s"):format(WORKERS, FILES, name))

local computed, hits = 0, 0
for _, w in ipairs(workers) do
  local line = assert(w:read("*l"), "a worker said nothing")
  print(line)
  computed = computed + tonumber(line:match("computed (%d+)"))
  hits = hits + tonumber(line:match("(%d+) from the cache"))
  assert(w:close(), "a worker failed")
end
for line in monitor:lines() do
  print(line)
end
assert(monitor:close(), "the monitor failed")

-- Every file is in the cache, computed once, and stays there for its TTL.
for i = 1, FILES do
  local entry = cache:get("sum:file" .. i)
  assert(entry, "file" .. i .. " is missing from the cache")
end
assert(computed == FILES, ("%d checksums computed for %d files"):format(computed, FILES))
local one = cache:get("sum:file1")
print(("run: %d files, each computed once; %d cache hits; file1 -> %d by %s, %.0f s left")
  :format(FILES, hits, one.sum, one.by, cache:ttl("sum:file1")))
local st = cache:stat()
print(("run: cache holds %d keys in %d of %d bytes"):format(st.count, st.used, st.capacity))
cache:close()
lxshm.remove(name)
