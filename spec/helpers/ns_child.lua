--- Child processes for the conformance specs, on any backend:
-- `lua5.4 spec/helpers/ns_child.lua COMMAND URL ARGS...` connects to URL (lxshm.connect: "shm:"
-- or a Redis URL) and does one thing another process of a pipeline would do, printing what the
-- parent needs. A command that blocks first says so on a line of its own ("waiting", …), so the
-- parent waits for that line, never for a time. Any unexpected result raises (exit 1).
local lxshm = require("lxshm")

local commands = {}

local function say(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

local function num(s)
  local n = tonumber(s)
  local tointeger = rawget(math, "tointeger") -- 5.3+
  return n and tointeger and tointeger(n) or n
end

--- seg_wait URL NAME VERSION TIMEOUT: say "waiting", wait, print the new version or the code.
function commands.seg_wait(ns, name, version, timeout)
  local seg = assert(ns:open(name))
  say("waiting")
  local v, _, code = seg:wait(num(version), num(timeout))
  say(v and ("version " .. v) or ("code " .. code))
end

--- seg_put URL NAME VALUE: put VALUE (a string), print the new version.
function commands.seg_put(ns, name, value)
  local seg = assert(ns:open(name))
  assert(seg:put(value))
  say("version " .. seg:version())
end

--- seg_count URL NAME N: N updates adding 1 to the segment's number; prints how many times the
-- function ran in all.
function commands.seg_count(ns, name, n)
  local seg = assert(ns:open(name))
  local calls = 0
  for _ = 1, num(n) do
    assert(seg:update(function(x)
      calls = calls + 1
      return (x or 0) + 1
    end))
  end
  say("calls " .. calls)
end

--- q_pop URL NAME TIMEOUT: say "popping", pop one value, print it (or the code).
function commands.q_pop(ns, name, timeout)
  local q = assert(ns:open_queue(name))
  say("popping")
  local v, _, code = q:pop(num(timeout))
  say(code and ("code " .. code) or ("value " .. tostring(v)))
end

--- q_push URL NAME VALUE TIMEOUT: say "pushing", push VALUE, print "pushed" (or the code).
function commands.q_push(ns, name, value, timeout)
  local q = assert(ns:open_queue(name))
  say("pushing")
  local ok, _, code = q:push(value, num(timeout))
  say(ok and "pushed" or ("code " .. code))
end

--- q_produce URL NAME P N: push { p = P, i = 1..N }, one at a time.
function commands.q_produce(ns, name, p, n)
  local q = assert(ns:open_queue(name))
  for i = 1, num(n) do
    assert(q:push({ p = num(p), i = i }))
  end
  say("produced")
end

--- q_consume URL NAME: pop until a value { stop = true }; print "p:i" of each value, in order.
function commands.q_consume(ns, name)
  local q = assert(ns:open_queue(name))
  local got = {}
  while true do
    local v = assert(q:pop(30))
    if v.stop then
      break
    end
    got[#got + 1] = v.p .. ":" .. v.i
  end
  say("got " .. table.concat(got, " "))
end

--- d_wait URL NAME KEY VERSION TIMEOUT: say "waiting", wait on KEY, print the new version.
function commands.d_wait(ns, name, key, version, timeout)
  local d = assert(ns:open_dict(name))
  say("waiting")
  local v, _, code = d:wait(key, num(version), num(timeout))
  say(v and ("version " .. v) or ("code " .. code))
end

--- d_incr URL NAME KEY N: N incr by 1 of KEY (starting from 0).
function commands.d_incr(ns, name, key, n)
  local d = assert(ns:open_dict(name))
  for _ = 1, num(n) do
    assert(d:incr(key, 1, 0))
  end
  say("done")
end

--- d_update URL NAME KEY N: N update adding 1 to KEY; prints how many times fn ran.
function commands.d_update(ns, name, key, n)
  local d = assert(ns:open_dict(name))
  local calls = 0
  for _ = 1, num(n) do
    assert(d:update(key, function(x)
      calls = calls + 1
      return (x or 0) + 1
    end))
  end
  say("calls " .. calls)
end

--- t_next URL NAME FROM N TIMEOUT: subscribe from FROM, say "subscribed", read N messages,
-- print "seq:value" of each.
function commands.t_next(ns, name, from, n, timeout)
  local t = assert(ns:open_topic(name))
  local sub = assert(t:subscribe(num(from) or from))
  say("subscribed")
  local got = {}
  for _ = 1, num(n) do
    local v, seq, lost = sub:next(num(timeout))
    if type(seq) ~= "number" then -- nil, msg, code
      say("code " .. tostring(lost))
      return
    end
    got[#got + 1] = seq .. ":" .. tostring(v)
  end
  say("got " .. table.concat(got, " "))
end

--- t_named URL NAME SUB N: subscribe { name = SUB, from = "oldest" }, say "subscribed", read N
-- messages printing each as it comes ("seq:value"), then say "holding" and wait to be killed.
function commands.t_named(ns, name, subname, n)
  local t = assert(ns:open_topic(name))
  local sub = assert(t:subscribe({ name = subname, from = "oldest" }))
  say("subscribed")
  for _ = 1, num(n) do
    local v, seq = sub:next(30)
    assert(seq, v)
    say(seq .. ":" .. tostring(v))
  end
  say("holding") -- keeps the name until killed, reading nothing more
  local proc = require("test.proc")
  while true do
    proc.sleep(1)
  end
end

local cmd, url = arg[1], arg[2]
local fn = commands[cmd] or error("unknown command " .. tostring(cmd))
local ns = assert(lxshm.connect(url))
fn(ns, (rawget(table, "unpack") or rawget(_G, "unpack"))(arg, 3))
