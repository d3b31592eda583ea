--- The "overlay": follows the game's events live and prints a kill feed. It subscribes from
-- "new" (only what happens from now on) and sleeps in the kernel between events.
--   lua5.4 examples/events/overlay.lua [TOPIC]
local lxshm = require("lxshm")

local name = arg[1] or "game.events"
local events = assert(lxshm.attach_topic(name, 256 * 1024))
local feed = events:subscribe("new")
print("overlay: ready")
io.stdout:flush()
local shown, missed = 0, 0
while true do
  local e, seq, lost = feed:next(10)
  assert(seq, lost) -- nil, msg, TIMEOUT after 10 s without an event
  missed = missed + lost
  shown = shown + 1
  if e.type == "hit" then
    print(("[%4d] %s hits %s for %d (%d hp left)"):format(e.tick, e.from, e.to, e.damage, e.hp))
  elseif e.type == "kill" then
    print(("[%4d] %s eliminated %s"):format(e.tick, e.by, e.player))
  elseif e.type == "chat" then
    print(("[%4d] <%s> %s"):format(e.tick, e.player, e.text))
  elseif e.type == "game_over" then
    print(("overlay: game over at tick %d; %d events shown, %d missed"):format(e.tick, shown,
      missed))
    break
  end
end
