--- Child processes for the specs: `LUA spec/helpers/child.lua COMMAND ARGS...`, LUA being the
-- runtime under test (any of 5.1 to 5.4 and LuaJIT: written in Lua 5.1 syntax).
-- Each command does one thing another process of a real pipeline would do, prints what the
-- parent needs on stdout, and exits 0; any unexpected result raises (exit 1, message on stderr).
-- A command that blocks or spins first says so on a line of its own ("waiting", "ready", ...),
-- so that the parent can wait for that line (Child:await) instead of sleeping.
local lxshm = require("lxshm")
local util = require("util")
local proc = util.proc

local commands = {}

local function open(name)
  return assert(lxshm.open(name))
end

--- Prints `line` on a line of its own and flushes it, whatever stdout's buffering.
local function say(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

--- Says "ready", then spins until the file GATE exists (the parent creates it once every racer
-- is ready, so that they all start at once).
local function start_at_gate(gate)
  say("ready")
  while not proc.file_mode(gate) do -- luacheck: ignore 542
  end
end

--- write NAME VALUE: store VALUE, print the new version.
function commands.write(name, value)
  local seg = open(name)
  assert(seg:write(value))
  io.write(seg:version())
end

--- read NAME: print the current value.
function commands.read(name)
  io.write(open(name):read())
end

--- create NAME SIZE: create, print "created"; on failure print the code.
function commands.create(name, size)
  local seg, _, code = lxshm.create(name, tonumber(size))
  io.write(seg and "created" or tostring(code))
end

--- attach_race NAME SIZE GATE: say "ready", spin until the file GATE exists, attach, write
-- this process's pid, print "attached".
function commands.attach_race(name, size, gate)
  start_at_gate(gate)
  local seg = assert(lxshm.attach(name, tonumber(size)))
  assert(seg:write(tostring(proc.pid())))
  io.write("attached")
end

--- open_race NAME SIZE: open NAME in a loop until 50 opens have succeeded, saying "spinning"
-- once the first open has found nothing; every result must be NOT_FOUND or a whole segment of
-- SIZE bytes. Prints the number of opens that found nothing.
function commands.open_race(name, size)
  size = tonumber(size)
  local opened, missed = 0, 0
  while opened < 50 do
    local seg, err, code = lxshm.open(name)
    if seg then
      assert(seg:size() == size, "size " .. seg:size())
      assert(seg:version() == 0 and seg:read() == "", "not a new segment")
      seg:close()
      opened = opened + 1
    elseif code == lxshm.NOT_FOUND then
      missed = missed + 1
      if missed == 1 then
        say("spinning")
      end
    else
      error("open during create returned " .. tostring(err))
    end
  end
  io.write(missed)
end

--- write_loop NAME SIZE [METHOD]: store stamped strings of SIZE bytes as fast as possible,
-- forever, with seg:write (the default) or seg:put (METHOD "put").
function commands.write_loop(name, size, method)
  local seg = open(name)
  local store = seg[method or "write"]
  size = tonumber(size)
  local i = 0
  while true do
    i = i + 1
    assert(store(seg, util.stamp(i, size)))
  end
end

--- write_after_remove NAME VALUE: open NAME, say "opened", poll until the name is gone (another
-- process removed it), then write VALUE through the handle opened before.
function commands.write_after_remove(name, value)
  local seg = open(name)
  say("opened")
  while true do
    local other, err, code = lxshm.open(name)
    if not other and code == lxshm.NOT_FOUND then
      break
    end
    assert(other, err)
    other:close()
    proc.sleep(0.001)
  end
  assert(seg:write(value))
end

--- wait NAME VERSION TIMEOUT: say "waiting", wait, print what wait returned ("<version>" or
-- "nil <code>").
function commands.wait(name, version, timeout)
  local seg = open(name)
  say("waiting")
  local v, _, code = seg:wait(tonumber(version), tonumber(timeout))
  io.write(v and tostring(v) or ("nil " .. tostring(code)))
end

--- put_table NAME: store a nested table with the kinds of values a game state has.
function commands.put_table(name)
  assert(open(name):put({
    tick = 42, time = 1.5, paused = false, name = "arena",
    players = { { name = "alice", pos = { 1.25, -3.5 } }, { name = "bob", pos = { 0.0, 2 } } },
    [7] = "seven", [1.5] = "one and a half",
  }))
end

--- increment NAME N: add 1 to the stored integer N times, each an update.
function commands.increment(name, n)
  local seg = open(name)
  for _ = 1, tonumber(n) do
    assert(seg:update(function(v) return (v or 0) + 1 end))
  end
end

--- update_exit NAME: leave the process (os.exit) from inside update's function, lock held.
function commands.update_exit(name)
  open(name):update(function()
    os.exit(3)
  end)
end

--- update_hang NAME: say "locked" from inside update's function and sleep there until killed.
function commands.update_hang(name)
  open(name):update(function()
    say("locked")
    while true do
      proc.sleep(1)
    end
  end)
end

--- produce NAME ID N: say "producing", then push { id = ID, seq = 1..N } in order, waiting
-- while the queue is full, and print each seq on its own line once its push has returned, so
-- that what a killed producer pushed is on record (all of it, and at most one value more).
function commands.produce(name, id, n)
  local q = assert(lxshm.open_queue(name))
  id = tonumber(id)
  io.stdout:setvbuf("line")
  say("producing")
  for seq = 1, tonumber(n) do
    assert(q:push({ id = id, seq = seq }))
    io.write(seq, "\n")
  end
end

--- produce_nowait NAME ID N GATE: say "ready", spin until the file GATE exists, then push N
-- small values with timeout 0: each push must succeed at once.
function commands.produce_nowait(name, id, n, gate)
  local q = assert(lxshm.open_queue(name))
  id = tonumber(id)
  start_at_gate(gate)
  for seq = 1, tonumber(n) do
    local ok, err = q:push(seq, 0)
    assert(ok, ("push %d of producer %d: %s"):format(seq, id, tostring(err)))
  end
end

--- produce_batches NAME ID N B: say "producing", then push { id = ID, seq = 1..N } in batches
-- of B (push_many), waiting while the queue is full.
function commands.produce_batches(name, id, n, b)
  local q = assert(lxshm.open_queue(name))
  id, n, b = tonumber(id), tonumber(n), tonumber(b)
  say("producing")
  for first = 1, n, b do
    local batch = {}
    for seq = first, math.min(n, first + b - 1) do
      batch[#batch + 1] = { id = id, seq = seq }
    end
    assert(q:push_many(batch))
  end
end

--- consume_batches NAME B: as consume, taking up to B values per pop_many.
function commands.consume_batches(name, b)
  local q = assert(lxshm.open_queue(name))
  io.stdout:setvbuf("full")
  say("consuming")
  while true do
    local values, n = q:pop_many(tonumber(b))
    assert(values, n)
    for i = 1, n do
      local v = values[i]
      if v == "stop" then -- one stop is ours; the batch may hold other consumers' stops
        for j = i + 1, n do
          assert(values[j] == "stop", "a value after the stops")
          assert(q:push("stop"))
        end
        return
      end
      io.write(v.id, ":", v.seq, "\n")
    end
  end
end

--- consume NAME: say "consuming", then pop until a "stop" value arrives, waiting while the
-- queue is empty; print each value as "id:seq" on its own line as soon as it is popped, so that
-- what a killed consumer got is on record (all of it but at most the value it was killed with).
function commands.consume(name)
  local q = assert(lxshm.open_queue(name))
  io.stdout:setvbuf("line")
  say("consuming")
  while true do
    local v, err = q:pop()
    assert(v ~= nil or err == nil, err)
    if v == "stop" then
      return
    end
    assert(type(v) == "table", "popped a " .. type(v))
    io.write(v.id, ":", v.seq, "\n")
  end
end

--- pop NAME TIMEOUT: say "popping", then print what one pop returned ("value" or "nil <code>").
-- An empty TIMEOUT waits forever.
function commands.pop(name, timeout)
  local q = assert(lxshm.open_queue(name))
  say("popping")
  local v, _, code = q:pop(tonumber(timeout))
  io.write(v ~= nil and tostring(v) or ("nil " .. tostring(code)))
end

--- push NAME VALUE TIMEOUT: say "pushing", then print what one push returned ("true" or
-- "nil <code>"). An empty TIMEOUT waits forever.
function commands.push(name, value, timeout)
  local q = assert(lxshm.open_queue(name))
  say("pushing")
  local ok, _, code = q:push(value, tonumber(timeout))
  io.write(ok and "true" or ("nil " .. tostring(code)))
end

--- wait_forever NAME: say "waiting", then wait on the segment without a timeout.
function commands.wait_forever(name)
  local seg = open(name)
  say("waiting")
  seg:wait(seg:version())
end

local cmd = arg[1]
if not commands[cmd] then
  io.stderr:write("child.lua: unknown command ", tostring(cmd), "\n")
  os.exit(2)
end
commands[cmd](util.unpack(arg, 2))
