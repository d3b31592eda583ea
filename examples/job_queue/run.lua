--- A small asset pipeline: this process queues jobs, two worker processes do them, and the
-- results come back on a second queue. No server: two lxshm queues. The same script runs across
-- machines through Redis: only LXSHM_URL changes (default "shm:", this machine).
--   LUA_PATH='lua/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/job_queue/run.lua
--   LXSHM_URL=redis://127.0.0.1:6379 LUA_PATH=… LUA_CPATH=… lua5.4 examples/job_queue/run.lua
local lxshm = require("lxshm")
local ns = assert(lxshm.connect(os.getenv("LXSHM_URL") or "shm:"))

local tag = ("jobs-%d-%d"):format(os.time(), math.random(1, 1e9))
local jobs = assert(ns:create_queue(tag .. ".jobs", 16 * 1024))
local results = assert(ns:create_queue(tag .. ".results", 16 * 1024))

local lua = arg[-1] or "lua5.4"
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local workers = {}
for i = 1, 2 do
  workers[i] = assert(io.popen(("%s %s/worker.lua %s %s w%d"):format(lua, dir, jobs:name(),
    results:name(), i), "w"))
end

local files = { "hero.png", "tree.png", "castle.glb", "theme.ogg", "level1.map", "font.ttf" }
local n = 60
for id = 1, n do
  local file = files[(id - 1) % #files + 1]
  assert(jobs:push({ id = id, file = file, cost = 200 + (id * 37) % 400 }))
end
print(("run: queued %d jobs for 2 workers"):format(n))

local got, count, by, finished = {}, 0, {}, 0
while finished < #workers do
  local r = assert(results:pop(10))
  if r.finished then
    finished = finished + 1
  else
    assert(not got[r.id], "a job was done twice")
    got[r.id] = r
    count = count + 1
    by[r.by] = (by[r.by] or 0) + 1
    if count == n then -- every job is back: tell the workers to stop
      for _ = 1, #workers do
        assert(jobs:push({ stop = true }))
      end
    end
  end
end
for id = 1, n do
  assert(got[id], "job " .. id .. " was lost")
end
print(("run: %d results, each job done once: w1 did %d, w2 did %d"):format(n, by.w1 or 0,
  by.w2 or 0))
print(("run: job 1 (%s) -> checksum %d by %s"):format(got[1].file, got[1].checksum, got[1].by))
for _, w in ipairs(workers) do
  assert(w:close(), "a worker failed")
end
jobs:close()
results:close()
ns:remove(tag .. ".jobs")
ns:remove(tag .. ".results")
