--- A worker: takes jobs from the "jobs" queue, does them, puts the results on "results".
-- Several workers share one queue; each job goes to exactly one of them. LXSHM_URL picks where
-- the queues are (default "shm:"; "redis://HOST:PORT" for workers on other machines).
--   lua5.4 examples/job_queue/worker.lua JOBS RESULTS WORKER_NAME
local lxshm = require("lxshm")
local ns = assert(lxshm.connect(os.getenv("LXSHM_URL") or "shm:"))

local jobs = assert(ns:open_queue(arg[1]))
local results = assert(ns:open_queue(arg[2]))
local me = arg[3] or "worker"

--- Pretend to process an asset: a checksum of its name, repeated `cost` times.
local function process(job)
  local sum = 0
  for _ = 1, job.cost do
    for i = 1, #job.file do
      sum = (sum * 31 + job.file:byte(i)) % 2 ^ 31
    end
  end
  return { id = job.id, file = job.file, checksum = math.floor(sum), by = me }
end

local done = 0
while true do
  local job = jobs:pop(10) -- sleeps while there is nothing to do
  if job == nil or job.stop then
    break
  end
  assert(results:push(process(job)))
  done = done + 1
end
assert(results:push({ worker = me, done = done, finished = true }))
