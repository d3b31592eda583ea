--- One side of a one-way stream of 64-byte messages, for bench/queue_bench.lua: a separate
-- process that produces or consumes COUNT messages over one transport.
--   lua5.4 bench/helpers/queue_peer.lua producer lxshm QUEUE COUNT [GATE]
--   lua5.4 bench/helpers/queue_peer.lua producer lxshm_batch QUEUE COUNT   (push_many, 64 each)
--   lua5.4 bench/helpers/queue_peer.lua consumer lxshm QUEUE COUNT|stop [GATE]
--   lua5.4 bench/helpers/queue_peer.lua producer pipe - COUNT         (to stdout, buffered)
--   lua5.4 bench/helpers/queue_peer.lua producer pipe_flush - COUNT   (a flush per message)
--   lua5.4 bench/helpers/queue_peer.lua producer unix PATH COUNT
--   lua5.4 bench/helpers/queue_peer.lua producer redis PORT:KEY COUNT
-- With GATE (a segment name), it prints "ready" once set up, then starts when GATE's version
-- moves, so that many peers start together. A consumer given a number pops that many and
-- prints "FIRST LAST SLEEPS" (monotonic times of the first and last pop, voluntary context
-- switches in between); given "stop", it pops until the value "stop" and prints how many it
-- popped. A producer prints "done" when it has pushed everything. With GATE, both add the
-- voluntary and involuntary context switches they made since the gate opened.
local clock = require("bench.clock")

local role, kind, target, count, gate_name = arg[1], arg[2], arg[3], arg[4], arg[5]
local MSG = string.rep("m", 64)

local function say(...)
  io.write(table.concat({ ... }, " "), "\n")
  io.flush()
end

local vcs0, ivcs0 = 0, 0
local function gate()
  if gate_name then
    local lxshm = require("lxshm")
    local g = assert(lxshm.open(gate_name))
    say("ready")
    assert(g:wait(0))
    g:close()
    vcs0, ivcs0 = clock.switches()
  end
end

--- " VCS IVCS" since the gate opened, when there was one.
local function switches()
  if not gate_name then
    return ""
  end
  local vcs, ivcs = clock.switches()
  return (" %d %d"):format(vcs - vcs0, ivcs - ivcs0)
end

if kind == "lxshm_batch" then -- a producer pushing BATCH messages per push_many
  local lxshm = require("lxshm")
  local q = assert(lxshm.open_queue(target))
  local BATCH, batch = 64, {}
  for i = 1, 64 do
    batch[i] = MSG
  end
  gate()
  local left = tonumber(count)
  while left > 0 do
    if left < BATCH then
      for i = left + 1, BATCH do
        batch[i] = nil
      end
    end
    assert(q:push_many(batch))
    left = left - #batch
  end
  say("done" .. switches())
  q:close()
elseif kind == "lxshm" then
  local lxshm = require("lxshm")
  local q = assert(lxshm.open_queue(target))
  gate()
  if role == "producer" then
    for _ = 1, tonumber(count) do
      q:push(MSG)
    end
    say("done" .. switches())
  elseif count == "stop" then
    local n = 0
    while q:pop() ~= "stop" do
      n = n + 1
    end
    say(n .. switches())
  else
    local first = q:pop() and clock.now()
    local sleeps = clock.switches()
    for _ = 2, tonumber(count) do
      q:pop()
    end
    local last = clock.now()
    say(("%.9f %.9f %d"):format(first, last, clock.switches() - sleeps))
  end
  q:close()
elseif role ~= "producer" then
  error("only lxshm has a consumer helper")
elseif kind == "pipe" or kind == "pipe_flush" then
  -- stdout is the pipe io.popen gave the parent; by default stdio fills 4 KiB before a write.
  local line, out = MSG .. "\n", io.stdout
  if kind == "pipe" then
    for _ = 1, tonumber(count) do
      out:write(line)
    end
  else
    for _ = 1, tonumber(count) do
      out:write(line)
      out:flush()
    end
  end
  out:close()
elseif kind == "unix" then
  local unix = require("socket.unix")
  local sock = assert(unix.stream())
  assert(sock:connect(target))
  local line = MSG .. "\n"
  for _ = 1, tonumber(count) do
    sock:send(line) -- one send(2) per message: luasocket does not buffer output
  end
  sock:close()
elseif kind == "redis" then
  package.path = package.path .. ";/usr/share/lua/5.3/?.lua" -- Debian has no 5.4 one
  local redis = require("redis")
  local port, key = target:match("^(%d+):(.+)$")
  local client = redis.connect("127.0.0.1", tonumber(port))
  for _ = 1, tonumber(count) do
    client:rpush(key, MSG)
  end
  client:quit()
else
  error("unknown transport " .. tostring(kind))
end
