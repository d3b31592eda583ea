--- Two Lua processes exchange tables through lxshm: no server, no sockets.
--
-- Run it with `make demo`, or by hand from the repository root after `make`:
--   LUA_PATH='lua/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/demo.lua
-- (any runtime: `make LUA=luajit`, then LUA_CPATH='build/luajit/?.so;;' luajit examples/demo.lua)
--
-- This process plays an editor. It starts a second process, the "game", hands it commands
-- through one segment and reads the game's replies from another. Each side sleeps in wait()
-- until the other commits, so neither polls.
local lxshm = require("lxshm")

--- A table as one line of Lua, for the log.
local function show(v)
  if type(v) ~= "table" then
    return type(v) == "string" and ("%q"):format(v) or tostring(v)
  end
  local parts, n = {}, #v
  for i = 1, n do
    parts[#parts + 1] = show(v[i])
  end
  local keys = {}
  for k in pairs(v) do
    if not (type(k) == "number" and k % 1 == 0 and k >= 1 and k <= n) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    parts[#parts + 1] = (type(k) == "string" and k or "[" .. show(k) .. "]") .. "=" .. show(v[k])
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

--- The game: applies the editor's commands to its world and answers each one.
local function game(inbox_name, outbox_name)
  local inbox = assert(lxshm.open(inbox_name))
  local outbox = assert(lxshm.open(outbox_name))
  local world, next_id, seen = {}, 1, 0
  while true do
    seen = assert(inbox:wait(seen, 5)) -- sleeps until the editor commits
    local cmd = inbox:get()
    local reply
    if cmd.op == "spawn" then
      world[next_id] = { kind = cmd.kind, pos = cmd.pos, hp = cmd.kind == "orc" and 30 or 10 }
      reply = { ok = true, id = next_id, entity = world[next_id] }
      next_id = next_id + 1
    elseif cmd.op == "hit" then
      local e = world[cmd.id]
      e.hp = e.hp - cmd.damage
      reply = { ok = true, id = cmd.id, hp = e.hp, dead = e.hp <= 0 }
    elseif cmd.op == "ping" then
      reply = cmd.n
    elseif cmd.op == "quit" then
      assert(outbox:put({ ok = true, bye = #world }))
      return
    end
    assert(outbox:put(reply))
  end
end

--- The editor: starts the game, sends commands, prints what comes back.
local function editor()
  local tag = ("demo-%d-%d"):format(os.time(), math.random(1, 1e9))
  local game_name, editor_name = tag .. ".to_game", tag .. ".to_editor"
  local to_game = assert(lxshm.create(game_name, 4096))
  local to_editor = assert(lxshm.create(editor_name, 4096))

  local lua = arg[-1] or "lua5.4"
  local game_process = assert(io.popen(("%s %s game %s %s"):format(lua, arg[0],
    game_name, editor_name), "w"))
  print(("editor: started the game process; talking through %s.*"):format(tag))

  local replies = 0
  local function send(cmd)
    assert(to_game:put(cmd))
    replies = assert(to_editor:wait(replies, 5)) -- sleeps until the game answers
    return to_editor:get()
  end

  for _, cmd in ipairs({
    { op = "spawn", kind = "orc", pos = { x = 12.5, y = -3.0 } },
    { op = "spawn", kind = "archer", pos = { x = 0.0, y = 7.25 } },
    { op = "hit", id = 1, damage = 12 },
    { op = "hit", id = 1, damage = 20 },
  }) do
    print("editor -> game  " .. show(cmd))
    print("game -> editor  " .. show(send(cmd)))
  end

  local n, t0 = 2000, to_editor:stat().updated
  for i = 1, n do
    assert(send({ op = "ping", n = i }) == i)
  end
  local us = (to_editor:stat().updated - t0) / n * 1e6
  print(("editor: %d table round trips, %.1f us each"):format(n, us))

  print("game -> editor  " .. show(send({ op = "quit" })))
  assert(game_process:close(), "the game process failed")
  to_game:close()
  to_editor:close()
  assert(lxshm.remove(game_name))
  assert(lxshm.remove(editor_name))
  print("editor: done; both segments removed")
end

if arg[1] == "game" then
  game(arg[2], arg[3])
else
  editor()
end
