--- Children for hardening_spec: `LUA spec/helpers/hostile.lua COMMAND ARGS...`, LUA being the
-- runtime under test (written in Lua 5.1 syntax). Each does what a careless or hostile process
-- would, in a process of its own so that a crash is a failed exit, not a dead test runner.
-- Prints what the parent checks; exits 0 unless something unexpected happened.
local lxshm = require("lxshm")
local util = require("util")

local commands = {}

local function say(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

local function code_name(code)
  return code and lxshm.codes[code] or "nil"
end

--- follow NAME: open read-only (trusting the owner), print the value, say "waiting", wait for
-- the next version, print it, then try every kind of write and print what each returned.
function commands.follow(name)
  local seg = assert(lxshm.open(name, { readonly = true, trust = true }))
  say("value " .. seg:get())
  local v = seg:version()
  say("waiting")
  assert(seg:wait(v, 20))
  say("value " .. seg:get())
  local _, _, c1 = seg:write("x")
  local _, _, c2 = seg:put("x")
  local _, _, c3 = seg:update(function() return "x" end)
  say(("writes %s %s %s"):format(code_name(c1), code_name(c2), code_name(c3)))
  assert(seg:stat().waiters == 0)
end

--- open NAME [OPTION...]: open with the options named ("readonly", "trust"); print "opened" or
-- the code and message.
function commands.open(name, ...)
  local opts = {}
  for _, o in ipairs({ ... }) do
    opts[o] = true
  end
  local seg, err, code = lxshm.open(name, opts)
  say(seg and "opened" or (code_name(code) .. " " .. err))
end

--- closing_gc NAME KIND: closes the handle (KIND segment, queue, or subscription of a topic)
-- from finalizers while its methods allocate, many times; prints how many calls ended in
-- "closed" errors and how many returned.
function commands.closing_gc(name, kind)
  collectgarbage("setpause", 0) -- collect all the time: finalizers run inside every allocation
  local returned, raised = 0, 0
  local topic = kind == "subscription" and assert(lxshm.open_topic(name))
  for _ = 1, 300 do
    local h = assert(topic and topic:subscribe("oldest")
      or kind == "queue" and lxshm.open_queue(name) or lxshm.open(name))
    for _ = 1, 20 do
      util.finalized(function() h:close() end) -- a userdata's __gc on 5.1 and LuaJIT
    end
    local ok, err = pcall(function()
      if kind == "queue" then
        assert(h:push({ 1, 2, { 3, "four" } }))
        assert(h:push_many({ { 5 }, { 6 } }))
        h:peek()
        h:pop(0)
        h:pop_many(10, 0)
      elseif topic then
        h:next(0)
        h:next_many(10, 0)
        h:next(0)
      else
        h:get()
        h:read()
        h:stat()
      end
    end)
    if ok then
      returned = returned + 1
    else
      assert(tostring(err):find("attempt to use a closed lxshm " .. kind, 1, true), err)
      raised = raised + 1
    end
    h:close()
  end
  say(("returned %d raised %d"):format(returned, raised))
end

--- Calls h:method(...), a call that sleeps, with a debug hook that closes h at the first call
-- made between its sleeps; then prints "METHOD VALUE CODE fired FIRED" (what the call returned)
-- and what a later h:later() raised ("LATER worked" if nothing).
local function close_while_sleeping(h, method, later, ...)
  local calls, fired = 0, false
  debug.sethook(function()
    calls = calls + 1
    if calls == 2 then -- the first call is the method itself
      fired = true
      h:close()
    end
  end, "c")
  local v, _, code = h[method](h, ...)
  debug.sethook()
  say(("%s %s %s fired %s"):format(method, tostring(v), code_name(code), tostring(fired)))
  local ok, err = pcall(h[later], h)
  say(ok and later .. " worked" or err)
end

--- hook_close NAME: a debug hook closes the segment while wait sleeps; prints what wait returned
-- and what a later call raised.
function commands.hook_close(name)
  local seg = assert(lxshm.open(name))
  close_while_sleeping(seg, "wait", "version", seg:version(), 0.3)
end

--- hook_close_sub NAME: a debug hook closes a subscription while its next sleeps; prints what
-- next returned and what a later call raised.
function commands.hook_close_sub(name)
  local sub = assert(assert(lxshm.open_topic(name)):subscribe("new"))
  close_while_sleeping(sub, "next", "position", 0.3)
end

local function poke(name, offset, bytes)
  local f = assert(io.open("/dev/shm/lxshm." .. name, "r+b"))
  f:seek("set", offset)
  f:write(bytes)
  f:close()
end

--- garbage_locks NAME TRIALS SEED: fills the lock's cache line (bytes 64..127) of a fresh
-- segment with random bytes, then writes, reads and updates through it; every call must return
-- (a status) rather than abort or hang. Prints the codes seen, counted.
function commands.garbage_locks(name, trials, seed)
  math.randomseed(tonumber(seed))
  local seen = {}
  for _ = 1, tonumber(trials) do
    local seg = assert(lxshm.create(name, 64))
    assert(seg:write("kept"))
    local bytes = {}
    for i = 1, 64 do
      bytes[i] = string.char(math.random(0, 255))
    end
    if math.random(2) == 1 then -- often only the first words, which glibc reads first
      for i = 17, 64 do
        bytes[i] = "\0"
      end
    end
    poke(name, 64, table.concat(bytes))
    for _, call in ipairs({
      function() return seg:write("new", 0.05) end,
      function() return seg:update(function() return "upd" end, 0.05) end,
    }) do
      local ok, _, code = call()
      local key = ok and "OK" or code_name(code)
      seen[key] = (seen[key] or 0) + 1
    end
    local v = seg:read()
    assert(v == "kept" or v == "new" or v == lxshm.encode("upd"), v)
    seg:close()
    assert(lxshm.remove(name))
  end
  local keys = {}
  for k, n in pairs(seen) do
    keys[#keys + 1] = k .. "=" .. n
  end
  table.sort(keys)
  say(table.concat(keys, " "))
end

--- create_huge NAME SECONDS: say "creating", then for SECONDS try to create NAME with a size
-- no machine has room for; every create must fail with INVALID_SIZE or EXISTS. Prints how many
-- failed, then "done".
function commands.create_huge(name, seconds)
  local deadline = os.time() + tonumber(seconds) + 1
  local failed = 0
  say("creating")
  while os.time() < deadline do
    local seg, err, code = lxshm.create(name, 2 ^ 40)
    assert(seg == nil and (code == lxshm.INVALID_SIZE or code == lxshm.EXISTS), err)
    failed = failed + 1
  end
  say("failed " .. failed .. " times")
  say("done")
end

local command = commands[arg[1]]
if not command then
  io.stderr:write("hostile.lua: unknown command ", tostring(arg[1]), "\n")
  os.exit(2)
end
command(util.unpack(arg, 2))
