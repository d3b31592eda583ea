--- The "game": publishes its state table 60 times a second, as a running game would for its
-- editor, overlay or telemetry tools. Latest state wins; nobody waits for anybody.
--   lua5.4 examples/game_state/game.lua [NAME] [SECONDS]
local lxshm = require("lxshm")

local name, seconds = arg[1] or "game.state", tonumber(arg[2]) or 3
local state = assert(lxshm.attach(name, 64 * 1024))

--- Sleeps about `s` seconds without burning CPU: the game is the only writer of its state, so a
-- wait for a newer version simply times out. (Plain Lua has no sleep.)
local function sleep(s)
  state:wait(state:version(), s)
end

local world = {
  tick = 0,
  map = "arena-07",
  players = {
    { name = "alice", hp = 100, pos = { x = 0.0, y = 0.0 } },
    { name = "bob", hp = 100, pos = { x = 10.0, y = 5.0 } },
  },
}

for tick = 1, math.floor(seconds * 60) do
  world.tick = tick
  for i, p in ipairs(world.players) do
    p.pos.x = p.pos.x + math.cos(tick / 30 + i) * 0.5
    p.pos.y = p.pos.y + math.sin(tick / 30 + i) * 0.5
  end
  if tick % 45 == 0 then -- somebody gets hit now and then
    local p = world.players[math.floor(tick / 45) % 2 + 1]
    p.hp = math.max(0, p.hp - 15)
  end
  assert(state:put(world)) -- the whole table, atomically: readers see this tick or the last
  sleep(1 / 60)
end
assert(state:put({ tick = world.tick, over = true }))
