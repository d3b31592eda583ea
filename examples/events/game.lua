--- The "game": publishes what happens as events on a topic (spawns, hits, chat, kills), as a
-- running game would for its overlay, recorder and replay tools. It never waits for them: a
-- follower that falls behind learns how many events it missed.
--   lua5.4 examples/events/game.lua [TOPIC] [TICKS]
local lxshm = require("lxshm")

local name, ticks = arg[1] or "game.events", tonumber(arg[2]) or 300
local events = assert(lxshm.attach_topic(name, 256 * 1024))

--- Sleeps about `s` seconds without burning CPU (plain Lua has no sleep): once past its own
-- events, a subscription of the game's waits for a newer one, which only the game publishes.
local idle = events:subscribe()
local function sleep(s)
  repeat until not idle:next(0)
  idle:next(s)
end

local players = { alice = 100, bob = 100, carol = 100 }
local names = { "alice", "bob", "carol" }
assert(events:publish_many({ -- a batch: all three appear at once, or none does
  { type = "spawn", tick = 0, player = "alice" },
  { type = "spawn", tick = 0, player = "bob" },
  { type = "spawn", tick = 0, player = "carol" },
}))
for tick = 1, ticks do
  local attacker, target = names[tick % 3 + 1], names[(tick + 1) % 3 + 1]
  if tick % 7 == 0 and players[attacker] > 0 and players[target] > 0 then
    local damage = 5 + tick % 11
    players[target] = math.max(0, players[target] - damage)
    assert(events:publish({ type = "hit", tick = tick, from = attacker, to = target,
      damage = damage, hp = players[target] }))
    if players[target] == 0 then
      assert(events:publish({ type = "kill", tick = tick, by = attacker, player = target }))
    end
  end
  if tick % 50 == 0 then
    assert(events:publish({ type = "chat", tick = tick, player = attacker, text = "gg " .. tick }))
  end
  sleep(1 / 600)
end
local seq = assert(events:publish({ type = "game_over", tick = ticks }))
idle:close()
print(("game: %d events published"):format(seq))
