--- The far side of bench/pingpong_bench.lua: a separate process that echoes every message it
-- receives, over one transport, until told to stop. Its first stdout line is its pid, so that
-- the parent can read /proc/PID of it; it comes once the peer is ready for the first message.
--   lua5.4 bench/helpers/pingpong_peer.lua lxshm PING PONG  -- waits on PING, writes PONG
--   lua5.4 bench/helpers/pingpong_peer.lua pipe FIFO        -- reads FIFO, writes stdout
--   lua5.4 bench/helpers/pingpong_peer.lua unix PATH        -- connects to a Unix socket
local clock = require("bench.clock")

local kind = arg[1]

local function say(...)
  io.write(table.concat({ ... }, " "), "\n")
  io.flush()
end

if kind == "lxshm" then
  -- Two segments, one per direction, as examples/demo.lua does: each side writes only its own
  -- and waits on the other's. The message "idle" starts a measured wait: the answer goes out
  -- first, then the next wait is timed in CPU and wall time and reported on stdout when it
  -- ends, i.e. what a waiter whose partner went quiet costs.
  local lxshm = require("lxshm")
  local ping = assert(lxshm.open(arg[2]))
  local pong = assert(lxshm.open(arg[3]))
  local seen = ping:version()
  say(clock.pid()) -- only now: the parent's first message comes after this line
  while true do
    seen = assert(ping:wait(seen))
    local msg = ping:read()
    if msg == "stop" then
      break
    elseif msg == "idle" then
      pong:write("idle")
      local cpu0, t0, vcs0 = clock.cputime(), clock.now(), clock.switches()
      seen = assert(ping:wait(seen))
      local cpu, t, vcs = clock.cputime() - cpu0, clock.now() - t0, clock.switches() - vcs0
      say(("%.9f %.9f %d"):format(cpu, t, vcs))
      pong:write(ping:read())
    else
      pong:write(msg)
    end
  end
elseif kind == "pipe" then
  -- Messages come through a FIFO, one line each; answers go to stdout, which the parent reads
  -- through io.popen. Both ends flush every line: a round trip cannot wait for a full buffer.
  say(clock.pid())
  local fifo = assert(io.open(arg[2], "r"))
  for line in fifo:lines() do
    if line == "stop" then
      break
    end
    io.write(line, "\n")
    io.flush()
  end
  fifo:close()
elseif kind == "unix" then
  local unix = require("socket.unix")
  local sock = assert(unix.stream())
  say(clock.pid())
  assert(sock:connect(arg[2]))
  while true do
    local line = sock:receive("*l")
    if line == nil or line == "stop" then
      break
    end
    assert(sock:send(line .. "\n"))
  end
  sock:close()
else
  error("unknown transport " .. tostring(kind))
end
