--- Child processes for the topic specs: `lua5.4 spec/helpers/topic_child.lua COMMAND ARGS...`.
-- Publishers and subscribers of a real pipeline. Every message they publish proves its own
-- wholeness (topic_child.message / topic_child.check), so a subscriber can tell a torn message
-- from a whole one; subscribers check what they read as they go and print a summary. A command
-- that blocks or spins says so first on a line of its own, for Child:await.
local lxshm = require("lxshm")
local util = require("util")
local proc = util.proc

local M = {}

local function is_int(x)
  return type(x) == "number" and x == math.floor(x)
end

--- Message n of publisher `id`: a table whose pad is util.stamp'ed from both, `size` bytes long
-- (at least 16), so that a mix of two messages, or one cut short, fails M.check.
function M.message(id, n, size)
  return { id = id, n = n, pad = util.stamp(id * 1000000 + n, size or 24) }
end

--- The publisher and number of a whole message; raises on anything else.
function M.check(v, seq)
  assert(type(v) == "table", ("message %d is a %s"):format(seq, type(v)))
  local id, n = v.id, v.n
  assert(is_int(id) and is_int(n), ("message %d lacks id or n"):format(seq))
  assert(type(v.pad) == "string" and util.whole(v.pad)
    and tonumber(v.pad:sub(1, 8), 16) == id * 1000000 + n, ("message %d is torn"):format(seq))
  return id, n
end

local function say(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

local commands = {}

--- publish NAME ID COUNT SIZE [BATCH [GATE]]: say "publishing" (or "ready" and wait for GATE),
-- then publish messages 1..COUNT of publisher ID (SIZE bytes of pad), one by one or BATCH at a
-- time with publish_many. COUNT 0: forever. Prints nothing else.
function commands.publish(name, id, count, size, batch, gate)
  local t = assert(lxshm.open_topic(name))
  id, count, size, batch = tonumber(id), tonumber(count), tonumber(size), tonumber(batch or 1)
  if gate then
    say("ready")
    while not proc.file_mode(gate) do -- luacheck: ignore 542
    end
  else
    say("publishing")
  end
  local n = 0
  while count == 0 or n < count do
    if batch <= 1 then
      n = n + 1
      assert(t:publish(M.message(id, n, size)))
    else
      local list = {}
      for _ = 1, count == 0 and batch or math.min(batch, count - n) do
        n = n + 1
        list[#list + 1] = M.message(id, n, size)
      end
      assert(t:publish_many(list))
    end
  end
end

--- follow NAME FROM LAST PUBLISHERS [SLOW]: subscribe (FROM "oldest", "new" or a number; with
-- a name when FROM is "name:NAME"), say "subscribed", then read until message LAST has come.
-- Checks that sequence numbers grow by exactly 1 + lost, that every message is whole and that
-- each of the PUBLISHERS' messages come in their order. SLOW > 0 sleeps that many seconds
-- every 64 messages. Prints "got N lost L first F".
function commands.follow(name, from, last, publishers, slow)
  local t = assert(lxshm.open_topic(name))
  last, publishers, slow = tonumber(last), tonumber(publishers), tonumber(slow or 0)
  local sub
  if from:match("^name:") then
    sub = assert(t:subscribe({ name = from:sub(6), from = "oldest" }))
  else
    sub = assert(t:subscribe(tonumber(from) or from))
  end
  say("subscribed")
  local got, lost_total, prev, first = 0, 0, nil, nil
  local order = {}
  for p = 1, publishers do
    order[p] = 0
  end
  while prev ~= last do
    local v, seq, lost = sub:next(30)
    assert(seq, lost)
    first = first or seq - lost
    if prev then
      assert(seq == prev + 1 + lost, ("message %d after %d with %d lost"):format(seq, prev, lost))
    end
    local id, n = M.check(v, seq)
    assert(n > order[id], ("publisher %d: message %d after %d"):format(id, n, order[id]))
    order[id] = n
    got, lost_total, prev = got + 1, lost_total + lost, seq
    if slow > 0 and got % 64 == 0 then
      proc.sleep(slow)
    end
  end
  io.write(("got %d lost %d first %d"):format(got, lost_total, first))
end

--- follow_many NAME LAST MAX: as follow from "oldest" with one publisher, reading with
-- next_many(MAX); prints "got N lost L batches B".
function commands.follow_many(name, last, max)
  local t = assert(lxshm.open_topic(name))
  last, max = tonumber(last), tonumber(max)
  local sub = assert(t:subscribe("oldest"))
  say("subscribed")
  local got, lost_total, prev, batches, order = 0, 0, 0, 0, 0
  while prev ~= last do
    local values, n, first, lost = sub:next_many(max, 30)
    assert(values, n)
    assert(first == prev + 1 + lost, ("batch from %d after %d with %d lost"):format(first, prev,
      lost))
    for i = 1, n do
      local _, k = M.check(values[i], first + i - 1)
      assert(k > order, "out of order")
      order = k
    end
    got, lost_total, prev, batches = got + n, lost_total + lost, first + n - 1, batches + 1
  end
  io.write(("got %d lost %d batches %d"):format(got, lost_total, batches))
end

--- watch NAME [SUBNAME]: subscribe from "oldest" (named SUBNAME if given), say "watching",
-- then read and check every message (whole, numbers growing by 1 + lost) until a message
-- "stop"; prints "got N lost L last S".
function commands.watch(name, subname)
  local t = assert(lxshm.open_topic(name))
  local sub = assert(t:subscribe(subname and { name = subname, from = "oldest" } or "oldest"))
  say("watching")
  local got, lost_total, prev = 0, 0, nil
  while true do
    local v, seq, lost = sub:next(60)
    assert(seq, lost)
    if prev then
      assert(seq == prev + 1 + lost, ("message %d after %d with %d lost"):format(seq, prev, lost))
    end
    prev = seq
    lost_total = lost_total + lost
    if v == "stop" then
      break
    end
    if type(v) == "table" then
      M.check(v, seq)
    else
      assert(type(v) == "string" and v:match("^parent %d+$"), "unexpected message " .. tostring(v))
    end
    got = got + 1
  end
  io.write(("got %d lost %d last %d"):format(got, lost_total, prev))
end

--- durable NAME SUBNAME COUNT: subscribe as SUBNAME from "oldest", print the seq of each of
-- COUNT messages on a line of its own as soon as next returns it, say "read COUNT", then wait
-- for more without a timeout (until killed).
function commands.durable(name, subname, count)
  local t = assert(lxshm.open_topic(name))
  local sub = assert(t:subscribe({ name = subname, from = "oldest" }))
  io.stdout:setvbuf("line")
  for _ = 1, tonumber(count) do
    local _, seq = sub:next(30)
    assert(seq)
    io.write(seq, "\n")
  end
  say("read " .. count)
  sub:next()
end

--- hold NAME SUBNAME: take the named subscription SUBNAME, say "holding", sleep until killed.
function commands.hold(name, subname)
  local t = assert(lxshm.open_topic(name))
  local _ = assert(t:subscribe({ name = subname }))
  say("holding")
  while true do
    proc.sleep(1)
  end
end

--- next NAME FROM TIMEOUT: subscribe from FROM, say "waiting", print what one next returned
-- ("value seq lost" or "nil code"); an empty TIMEOUT waits without a limit.
function commands.next(name, from, timeout)
  local t = assert(lxshm.open_topic(name))
  local sub = assert(t:subscribe(tonumber(from) or from))
  say("waiting")
  local v, seq, lost = sub:next(tonumber(timeout))
  if v == nil and type(seq) == "string" then
    io.write("nil ", tostring(lost))
  else
    io.write(tostring(v), " ", seq, " ", lost)
  end
end

--- read_forever NAME [SUBNAME [PRINT]]: subscribe from "oldest" (as SUBNAME if given), say
-- "reading", then read and check messages until killed, with next or (every other call)
-- next_many. With PRINT, reads with next only and prints the seq of every message on a line of
-- its own as soon as it is returned, so that what a killed reader got is on record.
function commands.read_forever(name, subname, print_seqs)
  local t = assert(lxshm.open_topic(name))
  local sub = assert(t:subscribe(subname and subname ~= "" and { name = subname, from = "oldest" }
    or "oldest"))
  io.stdout:setvbuf("line")
  say("reading")
  local k = 0
  while true do
    k = k + 1
    if k % 2 == 0 or print_seqs then
      local v, seq = sub:next()
      if type(v) == "table" then
        M.check(v, seq)
      end
      if print_seqs then
        io.write(seq, "\n")
      end
    else
      local values, n, first = sub:next_many(1 + k % 7)
      for i = 1, n do
        if type(values[i]) == "table" then
          M.check(values[i], first + i - 1)
        end
        if print_seqs then
          io.write(first + i - 1, "\n")
        end
      end
    end
  end
end

if arg and arg[0] and arg[0]:match("topic_child%.lua$") then
  local cmd = arg[1]
  if not commands[cmd] then
    io.stderr:write("topic_child.lua: unknown command ", tostring(cmd), "\n")
    os.exit(2)
  end
  commands[cmd](util.unpack(arg, 2))
end

return M
