--- Runs the game with an overlay and a recorder following its events. The recorder stops
-- after 20 events, as if it crashed, and a new one resumes where it stopped: the log ends up
-- with every event once, in order.
--   LUA_PATH='lua/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/events/run.lua
local lxshm = require("lxshm")

local name = ("game-%d-%d.events"):format(os.time(), math.random(1, 1e9))
local log = os.tmpname()
local lua = arg[-1] or "lua5.4"
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local events = assert(lxshm.create_topic(name, 256 * 1024, { cursors = 4 }))

local function start(script, ...)
  local cmd = ("%s %s/%s %s"):format(lua, dir, script, table.concat({ name, ... }, " "))
  return assert(io.popen(cmd, "r"))
end

--- Reads a follower's lines until it says it is ready, echoing them.
local function ready(p)
  repeat
    local line = assert(p:read("*l"), "a follower ended before it was ready")
    print(line)
  until line:find("ready")
end

local overlay = start("overlay.lua")
ready(overlay)
local first = start("recorder.lua", log, 20)
ready(first)
local game = start("game.lua", 300)
print(assert(first:read("*a")) .. "(the first recorder stopped after 20 events)")
assert(first:close())
local second = start("recorder.lua", log)
ready(second)
io.write(assert(game:read("*a")))
assert(game:close(), "the game failed")
io.write(assert(second:read("*a")))
assert(second:close(), "the second recorder failed")
io.write(assert(overlay:read("*a")))
assert(overlay:close(), "the overlay failed")

-- The log: every event once, in order, whatever happened to the recorder in between.
local expect = 1
for line in io.lines(log) do
  local seq = tonumber(line:match("^(%d+) "))
  assert(seq == expect, ("event %d in the log where %d was due"):format(seq, expect))
  expect = expect + 1
end
print(("run: the log holds events 1 to %d, each once; %d named subscription(s) kept in the topic")
  :format(expect - 1, events:stat().subscribers))
os.remove(log)
events:close()
assert(lxshm.remove(name))
