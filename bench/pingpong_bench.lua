--- Ping-pong between two Lua processes: the parent sends a short message, a separate child
-- process (bench/helpers/pingpong_peer.lua, started with io.popen) answers it, the parent waits
-- for the answer; round-trip time in µs. Transports, side by side in one run:
--   lxshm  two segments, one per direction (the pattern of examples/demo.lua): each side
--          write()s its own segment and wait()s on the other's, then read()s it
--   pipe   a FIFO (mkfifo) from parent to child, the io.popen pipe back; a line per message,
--          flushed on both sides
--   unix   a luasocket Unix stream socket pair; a line per message
-- Then what an idle waiter costs: the CPU time of the child blocked in wait() for 1 s after its
-- partner went quiet, and the CPU time of a wait() that times out after 10 ms (the spin before
-- sleeping). Then the same ping-pong with the processes placed on purpose, because lxshm spins
-- before sleeping and a spin only pays while the other process runs on another CPU:
--   cpu0   both pinned to CPU 0 (taskset -c 0): lxshm must see that it cannot spin
--   split  parent pinned to CPU 0, child to CPU 1: each may run on one CPU only, yet the two
--          run in parallel
--   busy   free placement, but CPU 1 kept busy by a busy loop at nice -10 (the scheduler then
--          puts both processes on CPU 0); only when run as root, LXSHM_BENCH_BUSY=0 skips it
--   LUA_PATH='lua/?.lua;bench/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/pingpong_bench.lua
local lib = require("lib")
local lxshm = require("lxshm")
local unix = require("socket.unix")
local clock = lib.clock

-- The placement this process runs (see above); the default run starts the others itself.
local PLACE = (arg[1] or ""):match("^%-%-place=(%w+)$") or "free"
local CHILD_PREFIX = PLACE == "split" and "taskset -c 1" or nil
local PREFIX = PLACE == "free" and "pingpong." or ("pingpong." .. PLACE .. ".")
local MSG = "ping 0123456789abcdef" -- the same bytes over every transport
local IDLE_REPS = math.max(1, math.min(3, lib.REPS))

--- On-CPU nanoseconds of a process, from /proc/PID/schedstat (first field), or nil.
local function oncpu_ns(pid)
  local f = io.open(("/proc/%d/schedstat"):format(pid), "r")
  if not f then
    return nil
  end
  local ns = f:read("*n")
  f:close()
  return ns
end

--- lxshm: two 64-byte segments, the child opens them by name.
local function lxshm_contender()
  local ping_name, pong_name = lib.unique("bench-ping"), lib.unique("bench-pong")
  local ping = assert(lxshm.create(ping_name, 64))
  local pong = assert(lxshm.create(pong_name, 64))
  local child = lib.spawn("pingpong_peer", { "lxshm", ping_name, pong_name }, "r", CHILD_PREFIX)
  local pid = tonumber(lib.expect(child, "its pid"))
  local seen = pong:version()
  local c = { name = "lxshm" }

  function c.run(n)
    for _ = 1, n do
      ping:write(MSG)
      seen = assert(pong:wait(seen))
      pong:read()
    end
  end

  --- One idle period of `secs`: returns the child's CPU seconds, wall seconds and voluntary
  -- context switches as it measured them, and its on-CPU seconds as the kernel counted them.
  function c.idle(secs)
    ping:write("idle")
    seen = assert(pong:wait(seen))
    local before = oncpu_ns(pid)
    clock.sleep(secs)
    local after = oncpu_ns(pid)
    ping:write(MSG)
    seen = assert(pong:wait(seen))
    local cpu, wall, vcs = lib.expect(child, "its idle report"):match("(%S+) (%S+) (%S+)")
    local kernel = before and after and (after - before) / 1e9 or nil
    return tonumber(cpu), tonumber(wall), tonumber(vcs), kernel
  end

  function c.close()
    ping:write("stop")
    child:close()
    ping:close()
    pong:close()
    lxshm.remove(ping_name)
    lxshm.remove(pong_name)
  end

  return c
end

--- A pipe pair: parent -> child through a FIFO, child -> parent through io.popen.
local function pipe_contender()
  local fifo = lib.unique("/tmp/lxshm-bench-fifo")
  assert(lib.execute("mkfifo -m 600 " .. lib.quote(fifo)))
  local child = lib.spawn("pingpong_peer", { "pipe", fifo }, "r", CHILD_PREFIX)
  lib.expect(child, "its pid")
  local out = assert(io.open(fifo, "w")) -- returns once the child has opened its end
  os.remove(fifo)
  local line = MSG .. "\n"
  local c = { name = "pipe" }

  function c.run(n)
    for _ = 1, n do
      out:write(line)
      out:flush()
      child:read("*l")
    end
  end

  function c.close()
    out:write("stop\n")
    out:close()
    child:close()
  end

  return c
end

--- A Unix stream socket: the parent listens, the child connects.
local function unix_contender()
  local path = lib.unique("/tmp/lxshm-bench-sock")
  local server = assert(unix.stream())
  assert(server:bind(path))
  assert(server:listen(1))
  local child = lib.spawn("pingpong_peer", { "unix", path }, "r", CHILD_PREFIX)
  lib.expect(child, "its pid")
  local conn = assert(server:accept())
  server:close()
  os.remove(path)
  local line = MSG .. "\n"
  local c = { name = "unix" }

  function c.run(n)
    for _ = 1, n do
      conn:send(line)
      conn:receive("*l")
    end
  end

  function c.close()
    conn:send("stop\n")
    conn:close()
    child:close()
  end

  return c
end

--- CPU seconds of a wait() that times out after `secs` with nobody writing, in this process:
-- a waiter spins at most ~50 µs when it may, then sleeps. One entry per repetition.
local function timed_out_wait_cpu(secs, count)
  local name = lib.unique("bench-idle")
  local seg = assert(lxshm.create(name, 64))
  local v = seg:version()
  local xs = {}
  for rep = 1, lib.REPS do
    local cpu0 = clock.cputime()
    for _ = 1, count do
      assert(seg:wait(v, secs) == nil)
    end
    xs[rep] = (clock.cputime() - cpu0) / count
  end
  seg:close()
  lxshm.remove(name)
  return xs
end

--- A busy loop pinned to CPU 1 at nice -10, for the "busy" placement: returns a function that
-- stops it, or nil when this process may not raise a priority.
local function start_hog()
  local id = io.popen("id -u")
  local root = id:read("*l") == "0"
  id:close()
  if not root then
    return nil
  end
  -- exec all the way down: the loop is our direct child, and its pid is the one echoed.
  local hog = assert(io.popen("exec sh -c 'echo $$; exec taskset -c 1 nice -n -10 "
    .. lib.quote(lib.LUA) .. " -e \"while true do end\"' 2>/dev/null", "r"))
  local pid = tonumber(lib.expect(hog, "the busy loop's pid"))
  clock.sleep(0.2) -- let the scheduler see CPU 1 busy
  return function()
    os.execute(("kill %d"):format(pid))
    hog:close()
  end
end

local placement_note = {
  free = "",
  cpu0 = "; both processes pinned to CPU 0 (taskset -c 0)",
  split = "; parent pinned to CPU 0, child to CPU 1",
  busy = "; CPU 1 busy with a nice -10 busy loop, placement left to the scheduler",
}

local stop_hog
if PLACE == "busy" then
  stop_hog = start_hog()
  if not stop_hog then
    print("# not root: no busy-CPU figures (a nice -10 busy loop needs root)")
    os.exit(0)
  end
end

print(("# ping-pong between two Lua processes, round trip of a %d-byte message;"
  .. " %d repetitions, medians%s"):format(#MSG, lib.REPS, placement_note[PLACE]))
local contenders = { lxshm_contender(), pipe_contender(), unix_contender() }
local ok, rt = pcall(lib.compare, contenders)
if stop_hog then
  stop_hog()
end
assert(ok, rt)
for _, c in ipairs(contenders) do
  lib.figure(PREFIX .. "roundtrip." .. c.name, lib.scale(rt[c.name], 1e6), "us")
end
lib.figure(PREFIX .. "ratio.lxshm/pipe", lib.ratios(rt.lxshm, rt.pipe), "x time")
lib.figure(PREFIX .. "ratio.lxshm/unix", lib.ratios(rt.lxshm, rt.unix), "x time")

if PLACE == "free" then
  -- The waiter whose partner stops: the child sits in wait() for 1 s.
  local cpu, wall, vcs, kernel = {}, {}, {}, {}
  for i = 1, IDLE_REPS do
    cpu[i], wall[i], vcs[i], kernel[i] = contenders[1].idle(1.0)
  end
  print(("# idle waiter: the child blocked in wait() while its partner sleeps 1 s,"
    .. " %d repetitions"):format(IDLE_REPS))
  lib.figure("idle.wait_1s.child_cpu", lib.scale(cpu, 1e6), "us")
  if #kernel == IDLE_REPS then
    lib.figure("idle.wait_1s.child_oncpu_schedstat", lib.scale(kernel, 1e6), "us")
  end
  lib.figure("idle.wait_1s.wall", wall, "s")
  lib.figure("idle.wait_1s.child_voluntary_switches", vcs, "sleeps")
end
if PLACE == "free" or PLACE == "cpu0" then
  -- The spin before sleeping, seen from one process: CPU per wait that times out.
  local idle = PLACE == "free" and "idle." or "idle.cpu0."
  print("# timed-out wait() with nobody writing: CPU per wait (spin, then sleep)")
  lib.figure(idle .. "wait_10ms.cpu", lib.scale(timed_out_wait_cpu(0.01, 10), 1e6), "us")
  lib.figure(idle .. "wait_20us.cpu", lib.scale(timed_out_wait_cpu(20e-6, 200), 1e6), "us")
end

for _, c in ipairs(contenders) do
  c.close()
end

if PLACE == "free" then
  local runs = {
    { "cpu0", "taskset -c 0 " }, { "split", "taskset -c 0 " }, { "busy", "" },
  }
  for _, r in ipairs(runs) do
    if r[1] ~= "busy" or os.getenv("LXSHM_BENCH_BUSY") ~= "0" then
      io.stdout:flush()
      local cmd = r[2] .. lib.quote(lib.LUA) .. " " .. lib.quote(arg[0]) .. " --place=" .. r[1]
      if not lib.execute(cmd) then
        print("# placement " .. r[1] .. " failed")
      end
    end
  end
end
