--- One subscriber of a fan-out, for bench/topic_bench.lua: a separate process that receives
-- COUNT 64-byte messages over one transport, or times how long a message takes to reach it.
--   lua5.4 bench/helpers/topic_peer.lua lxshm TOPIC COUNT next|many   (sub:next / next_many(256))
--   lua5.4 bench/helpers/topic_peer.lua pipe - COUNT                  (lines from stdin)
--   lua5.4 bench/helpers/topic_peer.lua redis PORT:CHANNEL COUNT      (SUBSCRIBE, lua-redis)
--   lua5.4 bench/helpers/topic_peer.lua latency_lxshm TOPIC COUNT
--   lua5.4 bench/helpers/topic_peer.lua latency_pipe - COUNT
--   lua5.4 bench/helpers/topic_peer.lua publish TOPIC COUNT
-- A fan-out subscriber says "ready" once subscribed (lxshm, redis; a pipe needs nothing), then
-- prints "done TIME GOT LOST" when it has COUNT messages: TIME is the monotonic clock then, LOST
-- what lxshm said it lost; an lxshm subscriber adds the processor time it used since "ready".
-- A latency subscriber reads COUNT messages, each holding the monotonic time it was sent at,
-- and prints the delay of each, in seconds, one per line. A publisher publishes COUNT messages
-- and prints "published SECONDS" (the time its loop took).
local clock = require("bench.clock")

local role, target, count, mode = arg[1], arg[2], tonumber(arg[3]), arg[4]

local function say(...)
  io.write(table.concat({ ... }, " "), "\n")
  io.flush()
end

if role == "lxshm" then
  local lxshm = require("lxshm")
  local t = assert(lxshm.open_topic(target))
  local sub = assert(t:subscribe("new"))
  say("ready")
  local cpu0 = os.clock()
  local got, lost = 0, 0
  if mode == "next" then
    while got < count do
      local _, _, l = sub:next()
      got, lost = got + 1 + l, lost + l
    end
  else
    while got < count do
      local _, n, _, l = sub:next_many(256)
      got, lost = got + n + l, lost + l
    end
  end
  say("done", clock.now(), got - lost, lost, os.clock() - cpu0)
elseif role == "pipe" then
  local got, read = 0, io.read
  while got < count and read("l") do
    got = got + 1
  end
  say("done", clock.now(), got, 0)
elseif role == "redis" then
  package.path = package.path .. ";/usr/share/lua/5.3/?.lua" -- Debian's lua-redis is for 5.3
  local redis = require("redis")
  local port, channel = target:match("^(%d+):(.+)$")
  local client = redis.connect("127.0.0.1", tonumber(port))
  local got = 0
  for msg, abort in client:pubsub({ subscribe = { channel } }) do
    if msg.kind == "subscribe" then
      say("ready")
    elseif msg.kind == "message" then
      got = got + 1
      if got == count then
        abort()
      end
    end
  end
  say("done", clock.now(), got, 0)
elseif role == "publish" then
  local lxshm = require("lxshm")
  local t = assert(lxshm.open_topic(target))
  local msg = string.rep("x", 64)
  local t0 = clock.now()
  for _ = 1, count do
    t:publish(msg)
  end
  say("published", clock.now() - t0)
elseif role == "latency_lxshm" then
  local lxshm = require("lxshm")
  local t = assert(lxshm.open_topic(target))
  local sub = assert(t:subscribe("new"))
  say("ready")
  local out = {}
  for i = 1, count do
    local sent = sub:next()
    out[i] = clock.now() - sent
  end
  say(table.concat(out, "\n"))
elseif role == "latency_pipe" then
  local out = {}
  for i = 1, count do
    local sent = tonumber(io.read("l"))
    out[i] = clock.now() - sent
  end
  say(table.concat(out, "\n"))
else
  error("topic_peer: unknown role " .. tostring(role))
end
