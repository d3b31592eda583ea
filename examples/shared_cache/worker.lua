--- One worker of examples/shared_cache: `worker.lua CACHE ID FILES`. Goes through the files in
-- an order of its own; a file whose checksum is cached is skipped, and one another worker is
-- checksumming now (its "busy:" key added first) is left to it. Prints one line at the end.
local lxshm = require("lxshm")

local name, id, files = arg[1], arg[2], tonumber(arg[3])
local cache = assert(lxshm.open_dict(name))

--- The checksum of a generated file: deliberately slow, as real work is.
local function checksum(file)
  local sum, x = 0, #file
  for i = 1, 200000 do
    x = (x * 1103515245 + 12345 + i) % 2147483648
    sum = (sum + x % 251) % 4294967291
  end
  return sum
end

local computed, cached, left = 0, 0, 0
local w = tonumber(id:match("%d+"))
local step = ({ 7, 11, 13, 17 })[(w - 1) % 4 + 1] -- each worker walks the files its own way
for n = 1, files do
  local file = "file" .. ((n * step + w * 5) % files + 1)
  if cache:get("sum:" .. file) then
    cached = cached + 1
  elseif cache:add("busy:" .. file, id, 30) then -- ours to do; expires if we die meanwhile
    local sum = checksum(file)
    assert(cache:set("sum:" .. file, { sum = sum, by = id }, 3600)) -- kept for an hour
    cache:delete("busy:" .. file)
    cache:incr("done", 1, 0) -- wakes the monitor
    computed = computed + 1
  else
    left = left + 1 -- another worker has it in hand
  end
end
print(("%s: computed %d, %d from the cache, %d left to the others"):format(id, computed, cached,
  left))
