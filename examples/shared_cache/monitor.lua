--- The monitor of examples/shared_cache: `monitor.lua CACHE FILES`. Sleeps on the "done" key
-- (using no CPU) and prints progress each time a worker finishes a file, until all are done.
local lxshm = require("lxshm")

local name, files = arg[1], tonumber(arg[2])
local cache = assert(lxshm.open_dict(name))
local version, shown = cache:version("done"), -1
while true do
  local done = cache:get("done") or 0
  if math.floor(done / 10) ~= math.floor(shown / 10) or (done == files and shown ~= done) then
    print(("monitor: %d/%d files done"):format(done, files))
    shown = done
  end
  if done >= files then
    break
  end
  version = assert(cache:wait("done", version, 60)) -- the next change of "done"
end
