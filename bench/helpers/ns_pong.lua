--- The other end of bench/redis_bench.lua's ping-pong, on any backend:
-- `lua5.4 bench/helpers/ns_pong.lua URL PING PONG` waits for each new version of PING and
-- answers with a write to PONG, until PING holds "stop". Says "ready" once both are open.
local lxshm = require("lxshm")

local ns = assert(lxshm.connect(arg[1]))
local ping, pong = assert(ns:open(arg[2])), assert(ns:open(arg[3]))
io.stdout:write("ready\n")
io.stdout:flush()
local seen = 0
while true do
  seen = assert(ping:wait(seen))
  if ping:read() == "stop" then
    break
  end
  assert(pong:write("y"))
end
