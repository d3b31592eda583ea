--- Child processes for the conformance specs, on any backend:
-- `lua5.4 spec/helpers/ns_child.lua COMMAND URL ARGS...` connects to URL (lxshm.connect: "shm:"
-- or a Redis URL) and does one thing another process of a pipeline would do, printing what the
-- parent needs. A command that blocks first says so on a line of its own ("waiting", …), so the
-- parent waits for that line, never for a time. Any unexpected result raises (exit 1).
local lxshm = require("lxshm")
local util = require("util")

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


-- What closing_gc calls on each kind: methods that run Lua code (encoding, making values, a
-- function) between their uses of the handle.
local exercises = {
  segment = {
    function(h, v) return h:put(v) end,
    function(h) return h:get() end,
    function(h) return h:read() end,
    function(h) return h:update(function(old) return old end) end,
    function(h) return h:stat() end,
  },
  queue = {
    function(h, v) return h:push(v) end,
    function(h, v) return h:push_many({ v, v }) end,
    function(h) return h:peek() end,
    function(h) return h:pop(0) end,
    function(h) return h:pop_many(5, 0) end,
    function(h) return h:stat() end,
  },
  dict = {
    function(h, v) return h:set("k", v) end,
    function(h, v) return h:add("a" .. math.random(1e9), v) end,
    function(h, v) return h:replace("k", v) end,
    function(h, v) return h:cas("k", h:version("k"), v) end,
    function(h) return h:get("k") end,
    function(h) return h:incr("n", 1, 0) end,
    function(h) return h:update("k", function(old) return old end) end,
    function(h) return h:keys() end,
    function(h)
      for _ in h:pairs() do -- luacheck: ignore 512 (the loop only walks)
      end
    end,
    function(h) return h:stat() end,
  },
  topic = {
    function(h, v) return h:publish(v) end,
    function(h, v) return h:publish_many({ v, v }) end,
    function(h) return h:subscribe("oldest") end,
    function(_, _, sub) return sub:next(0) end,
    function(_, _, sub) return sub:next_many(3, 0) end,
    function(h) return h:stat() end,
  },
}

--- Calls call(a, b, c) in a protected call, with 20 finalizers that run close(), and garbage
-- that grows with `round`, made just before while the collector is stopped; the collector then
-- runs all the time, so that the finalizers run inside the call: at its first allocation in odd
-- rounds (a whole cycle per step), wherever the cycle ends in even ones. The call must return,
-- or raise "attempt to use a closed lxshm ..."; returns 1 if it returned, 0 if it raised.
local function closed_inside(close, round, call, a, b, c)
  collectgarbage("collect")
  collectgarbage("stop")
  for _ = 1, 20 do
    util.finalized(close)
  end
  for _ = 1, round % 64 do
    util.finalized(function() end)
  end
  collectgarbage("setstepmul", round % 2 == 1 and 1000000 or 200)
  collectgarbage("setpause", 0)
  collectgarbage("restart")
  local ok, err = pcall(call, a, b, c)
  collectgarbage("setpause", 200)
  collectgarbage("setstepmul", 200)
  assert(ok or tostring(err):find("attempt to use a closed lxshm", 1, true), err)
  return ok and 1 or 0
end

--- closing_gc URL NAME KIND ROUNDS: for each method of KIND above, ROUNDS times: open NAME, make
-- 20 finalizers that close the handle and some garbage (more each round), and call the method
-- while collecting all the time, so that the finalizers run inside it: at its first allocation
-- in odd rounds, at a different one each even round. A method whose handle was closed
-- meanwhile returns (Redis: nil, "closed during the call", INVALID) or raises "attempt to use
-- a closed lxshm KIND"; nothing may crash. Prints "returned R raised X".
function commands.closing_gc(ns, name, kind, rounds)
  local sizes = { segment = 65536, queue = 1048576, dict = 1048576, topic = 1048576 }
  local suffix = kind == "segment" and "" or "_" .. kind
  local big = {}
  for i = 1, 50 do
    big[i] = { i, tostring(i), { x = i } }
  end
  local returned, raised = 0, 0
  for round = 1, num(rounds) do
    for _, call in ipairs(exercises[kind]) do
      local h = assert(ns["attach" .. suffix](ns, name, sizes[kind]))
      -- A topic's subscription comes from a handle of its own, so that it does not keep h in
      -- use (it would keep h's close from releasing anything); the finalizers close all three.
      local h2 = kind == "topic" and assert(ns:attach_topic(name, sizes[kind]))
      local sub = h2 and assert(h2:subscribe("oldest"))
      local function close_all()
        h:close()
        if h2 then
          sub:close()
          h2:close()
        end
      end
      local r = closed_inside(close_all, round, call, h, big, sub)
      returned, raised = returned + r, raised + 1 - r
      close_all()
    end
  end
  say(("returned %d raised %d"):format(returned, raised))
end

--- closing_ns_gc URL NAME ROUNDS: ROUNDS times: connect anew, make 20 finalizers that close the
-- namespace (and some garbage, more each round), then, while collecting all the time (as
-- closing_gc does), open NAME as each kind in turn, use the handle and list the namespace. A
-- constructor or list whose namespace was closed meanwhile returns, or raises "attempt to use a
-- closed lxshm namespace"; nothing may crash. Prints "returned R raised X".
function commands.closing_ns_gc(_, name, rounds)
  local suffixes = { "", "_queue", "_dict", "_topic" }
  local uses = {
    [""] = function(h) return h:put({ 1, 2 }) end,
    _queue = function(h) return h:push({ 1, 2 }) end,
    _dict = function(h) return h:set("k", { 1, 2 }) end,
    _topic = function(h) return h:publish({ 1, 2 }) end,
  }
  local returned, raised = 0, 0
  for round = 1, num(rounds) do
    local ns = assert(lxshm.connect(arg[2]))
    local suffix = suffixes[round % 4 + 1]
    local method, use = "attach" .. suffix, uses[suffix]
    local function body()
      local h = ns[method](ns, name .. suffix, 65536)
      if h then
        use(h)
        h:close()
      end
      return ns:list()
    end
    local r = closed_inside(function() ns:close() end, round, body)
    returned, raised = returned + r, raised + 1 - r
    ns:close()
  end
  say(("returned %d raised %d"):format(returned, raised))
end

--- hook_close URL NAME KIND: a debug hook closes the handle while a blocking call waits with a
-- 0.3 s timeout (seg:wait, q:pop, d:wait, sub:next); prints "CODE fired FIRED" (what the call
-- returned) and what a later call on the handle raised.
function commands.hook_close(ns, name, kind)
  local suffix = kind == "segment" and "" or "_" .. kind
  local h = assert(ns["attach" .. suffix](ns, name, 65536))
  local call
  if kind == "segment" then
    local v = h:version()
    call = function() return h:wait(v, 0.3) end
  elseif kind == "queue" then
    call = function() return h:pop(0.3) end
  elseif kind == "dict" then
    local v = h:version("k")
    call = function() return h:wait("k", v, 0.3) end
  else
    local sub = assert(h:subscribe("new"))
    call = function() return sub:next(0.3) end
  end
  local calls, fired = 0, false
  local r, _, code = (function()
    debug.sethook(function()
      calls = calls + 1
      if calls == 3 then -- 1: this function's call below, 2: the method, 3: one between sleeps
        fired = true
        h:close()
      end
    end, "c")
    return call()
  end)()
  debug.sethook()
  assert(r == nil, "the call returned " .. tostring(r))
  local names = { [lxshm.TIMEOUT] = "TIMEOUT", [lxshm.INVALID] = "INVALID" }
  say(("%s fired %s"):format(names[code] or tostring(code), tostring(fired)))
  local ok, err = pcall(h.stat, h)
  say(ok and "stat worked" or err)
end

local cmd, url = arg[1], arg[2]
local fn = commands[cmd] or error("unknown command " .. tostring(cmd))
local ns = assert(lxshm.connect(url))
fn(ns, (rawget(table, "unpack") or rawget(_G, "unpack"))(arg, 3))
