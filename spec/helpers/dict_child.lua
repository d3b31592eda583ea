--- Child processes for the dictionary specs: `lua5.4 spec/helpers/dict_child.lua COMMAND ARGS`.
-- As spec/helpers/child.lua: each command does what another process of a real pipeline would,
-- prints what the parent needs, and says so on a line of its own before it blocks or spins.
local lxshm = require("lxshm")
local util = require("util")
local model = require("dict_model")
local proc = util.proc

local commands = {}

local function say(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

local function open(name)
  return assert(lxshm.open_dict(name))
end

local function start_at_gate(gate)
  say("ready")
  while not proc.file_mode(gate) do -- luacheck: ignore 542
  end
end

--- incr NAME KEY N GATE: after the gate, adds 1 to KEY N times.
function commands.incr(name, key, n, gate)
  local d = open(name)
  start_at_gate(gate)
  for _ = 1, tonumber(n) do
    assert(d:incr(key, 1, 0))
  end
end

--- cas NAME KEY N GATE: after the gate, adds 1 to the number under KEY N times by
-- compare-and-set, retrying on CONFLICT; prints how many conflicts it met.
function commands.cas(name, key, n, gate)
  local d = open(name)
  local conflicts = 0
  start_at_gate(gate)
  for _ = 1, tonumber(n) do
    while true do
      local v, ver = d:get(key)
      local ok, err, code = d:cas(key, ver or 0, (v or 0) + 1)
      if ok then
        break
      end
      assert(code == lxshm.CONFLICT, err)
      conflicts = conflicts + 1
    end
  end
  io.write(conflicts)
end

--- wait NAME KEY VERSION TIMEOUT: says "waiting", waits, prints what wait returned ("<version>"
-- or "nil <code>").
function commands.wait(name, key, version, timeout)
  local d = open(name)
  say("waiting")
  local v, _, code = d:wait(key, tonumber(version), tonumber(timeout))
  io.write(v and tostring(v) or ("nil " .. tostring(code)))
end

--- set NAME KEY VALUE: stores VALUE (a string) under KEY.
function commands.set(name, key, value)
  assert(open(name):set(key, value))
end

--- get NAME KEY: prints the value under KEY (a table as key=value pairs, sorted).
function commands.get(name, key)
  local v = open(name):get(key)
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do
      parts[#parts + 1] = tostring(k) .. "=" .. tostring(x)
    end
    table.sort(parts)
    v = table.concat(parts, ",")
  end
  io.write(tostring(v))
end

--- attach NAME SIZE GATE: after the gate, attaches, adds its pid under "pid:<pid>"; prints
-- the capacity it found.
function commands.attach(name, size, gate)
  start_at_gate(gate)
  local d = assert(lxshm.attach_dict(name, tonumber(size)))
  assert(d:set("pid:" .. proc.pid(), true))
  io.write(d:capacity())
end

--- update_hold NAME KEY: inside update's function on KEY, says "locked" and sleeps until killed.
function commands.update_hold(name, key)
  open(name):update(key, function()
    say("locked")
    while true do
      proc.sleep(1)
    end
  end)
end

--- update_gate NAME KEY GATE: inside update's function on KEY, says "locked", waits for the
-- file GATE, then stores "from update".
function commands.update_gate(name, key, gate)
  assert(open(name):update(key, function()
    say("locked")
    while not proc.file_mode(gate) do
      proc.sleep(0.001)
    end
    return "from update"
  end))
end

--- set_after NAME KEY VALUE: says "setting", stores VALUE under KEY, says "set".
function commands.set_after(name, key, value)
  local d = open(name)
  say("setting")
  assert(d:set(key, value))
  say("set")
end

--- workload NAME FIRST: applies the model's operations FIRST, FIRST + 1, ... forever, printing
-- each one's number before starting it; update's function spins for a while, so that kills land
-- there too.
function commands.workload(name, first)
  local d = open(name)
  io.stdout:setvbuf("no")
  local function spin()
    local t = proc.now() + 0.0005
    while proc.now() < t do -- luacheck: ignore 542
    end
  end
  local i = tonumber(first)
  while true do
    io.stdout:write(i, "\n")
    model.run(d, i, spin)
    i = i + 1
  end
end

local cmd = arg[1]
if not commands[cmd] then
  io.stderr:write("dict_child.lua: unknown command ", tostring(cmd), "\n")
  os.exit(2)
end
commands[cmd](util.unpack(arg, 2))
