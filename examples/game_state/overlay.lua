--- The "overlay": sleeps until the game publishes, then prints what changed since the last
-- state it saw. It may skip states when it is slower than the game: it always gets the latest.
--   lua5.4 examples/game_state/overlay.lua [NAME]
local lxshm = require("lxshm")

local name = arg[1] or "game.state"

--- Flattens a table into { ["players.1.hp"] = 85, ... } to compare two states.
local function flatten(t, prefix, out)
  out = out or {}
  for k, v in pairs(t) do
    local key = prefix and (prefix .. "." .. tostring(k)) or tostring(k)
    if type(v) == "table" then
      flatten(v, key, out)
    else
      out[key] = v
    end
  end
  return out
end

-- attach: whichever of the game and the overlay starts first creates the segment.
local state = assert(lxshm.attach(name, 64 * 1024))
local seen, last, states = state:version(), {}, 0
while true do
  seen = assert(state:wait(seen, 5)) -- no CPU used while the game is between frames
  local s = assert(state:get())
  states = states + 1
  if s.over then
    break
  end
  local now = flatten(s)
  local changes = {}
  for k, v in pairs(now) do
    if last[k] ~= v and not k:find("pos") and k ~= "tick" then
      changes[#changes + 1] = ("%s: %s -> %s"):format(k, tostring(last[k]), tostring(v))
    end
  end
  table.sort(changes)
  if #changes > 0 then
    print(("overlay: tick %d: %s"):format(s.tick, table.concat(changes, ", ")))
  end
  last = now
end
print(("overlay: the game is over; %d states seen, the last at tick %d"):format(states,
  state:get().tick))
state:close()
lxshm.remove(name)
