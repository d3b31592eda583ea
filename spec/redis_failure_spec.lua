--- When the Redis server goes away: connect and every call return nil, msg, UNAVAILABLE (never a
-- raise), within the timeout; blocked wait, pop and next return UNAVAILABLE as soon as the
-- server dies; the next call reconnects, and once the server is back the same handles work
-- again. Nothing is ever kept locally instead. Servers are stopped with SIGSTOP (alive but
-- silent), killed with SIGKILL, and restarted on the same socket, with an append-only file
-- (appendfsync always) where the data must survive the kill, without one where it must not.
local lxshm = require("lxshm")
local util = require("util")
local servers = require("redis_server")
local proc = util.proc

after_each(util.cleanup)

if not servers.backend() then
  describe("Redis failures", function()
    it("need the Redis backend: connect says how to get it", function()
      local _, msg, code = lxshm.connect("redis+unix:///nonexistent")
      assert.equal(lxshm.UNSUPPORTED, code)
      assert.matches("libhiredis%-dev", msg)
    end)
  end)
  return
end

-- Calls fn and returns its results and the seconds it took.
local function timed(fn)
  local t0 = proc.now()
  local a, b, c = fn()
  return proc.now() - t0, a, b, c
end

local function child(url, command, ...)
  local c = util.spawn_script("spec/helpers/ns_child.lua", command, url, ...)
  util.defer(function() c:cleanup() end)
  return c
end

describe("connect", function()
  it("to nothing is UNAVAILABLE at once, naming the address", function()
    local dir = os.tmpname()
    local took, ns, msg, code = timed(function()
      return lxshm.connect("redis+unix://" .. dir .. ".nothing.sock")
    end)
    assert.is_nil(ns)
    assert.equal(lxshm.UNAVAILABLE, code)
    assert.equal("connect: Redis at " .. dir .. ".nothing.sock: No such file or directory", msg)
    assert.is_true(took < 1, took)
    os.remove(dir)
    ns, msg, code = lxshm.connect("redis://127.0.0.1:1")
    assert.is_nil(ns)
    assert.equal(lxshm.UNAVAILABLE, code)
    assert.equal("connect: Redis at 127.0.0.1:1: Connection refused", msg)
  end)

  it("to a server that does not answer is UNAVAILABLE within opts.timeout", function()
    local server = servers.single()
    util.defer(function() server:stop() end)
    local pid = server:pid()
    proc.kill(pid, "STOP")
    util.defer(function() proc.kill(pid, "CONT") end)
    local took, ns, msg, code = timed(function()
      return lxshm.connect(server.url, { timeout = 0.3 })
    end)
    assert.is_nil(ns)
    assert.equal(lxshm.UNAVAILABLE, code)
    assert.matches("no reply in time", msg)
    assert.is_true(took >= 0.25 and took < 0.3 + 1.5 * util.SLOW, took)
    proc.kill(pid, "CONT")
    assert(lxshm.connect(server.url, { timeout = 0.3 })):close()
  end)
end)

describe("a server that stops answering", function()
  local server, ns

  lazy_setup(function()
    server = servers.single()
    ns = assert(lxshm.connect(server.url, { timeout = 0.3 }))
  end)

  lazy_teardown(function()
    ns:close()
    server:stop()
  end)

  it("makes every call UNAVAILABLE after opts.timeout; the same handles work on CONT", function()
    local sname, qname = util.name("stop"), util.name("stopq")
    local seg = assert(ns:create(sname, 64))
    local q = assert(ns:create_queue(qname, 64))
    util.defer(function()
      ns:remove(sname)
      ns:remove(qname)
    end)
    assert(seg:put("before"))
    assert(q:push(1))
    local pid = server:pid()
    proc.kill(pid, "STOP")
    util.defer(function() proc.kill(pid, "CONT") end)
    for _, call in ipairs({
      function() return seg:get() end,
      function() return seg:put("during") end,
      function() return q:pop(0) end,
    }) do
      local took, v, msg, code = timed(call)
      assert.is_nil(v)
      assert.equal(lxshm.UNAVAILABLE, code)
      assert.matches("no reply in time", msg)
      assert.is_true(took >= 0.25 and took < 0.3 + 1.5 * util.SLOW, took)
    end
    proc.kill(pid, "CONT")
    -- the put sent while stopped may have been applied once the server woke: "during" or
    -- "before", never lost halfway
    local v = assert(seg:get())
    assert.is_true(v == "before" or v == "during", v)
    assert(seg:put("after"))
    assert.equal("after", seg:get())
    seg:close()
    q:close()
  end)
end)

describe("a server killed and restarted", function()
  it("with its data kept (appendfsync always): UNAVAILABLE, then the same handles carry on",
    function()
      local server = servers.single({ "--appendonly", "yes", "--appendfsync", "always" })
      util.defer(function() server:stop() end)
      local ns = assert(lxshm.connect(server.url))
      local seg = assert(ns:create("kill.seg", 64))
      local q = assert(ns:create_queue("kill.q", 1024))
      local d = assert(ns:create_dict("kill.d", 65536))
      local t = assert(ns:create_topic("kill.t", 65536))
      local sub = assert(t:subscribe("oldest"))
      assert(seg:put({ n = 1 }))
      assert(q:push_many({ "a", "b" }))
      assert(d:set("k", "v1"))
      assert.equal(1, t:publish("m1"))
      server:kill()
      for what, call in pairs({
        get = function() return seg:get() end,
        put = function() return seg:put({ n = 2 }) end,
        push = function() return q:push("c") end,
        pop = function() return q:pop(0) end,
        dget = function() return d:get("k") end,
        dset = function() return d:set("k", "v2") end,
        publish = function() return t:publish("m2") end,
        next = function() return sub:next(0) end,
        create = function() return ns:create("kill.other", 8) end,
        stat = function() return seg:stat() end,
        qstat = function() return q:stat() end,
        count = function() return q:count() end,
        dstat = function() return d:stat() end,
        last = function() return t:last() end,
      }) do
        local v, msg, code = call()
        assert.is_nil(v, what)
        assert.equal(lxshm.UNAVAILABLE, code, what)
        assert.matches("^%S+: Redis at ", msg)
      end
      -- tostring does not fail: what it cannot learn it shows as "?"
      assert.equal("lxshm.segment: kill.seg (64 bytes)", tostring(seg))
      assert.equal("lxshm.queue: kill.q (1024 bytes, ? values)", tostring(q))
      assert.equal("lxshm.dict: kill.d (65536 bytes, ? keys)", tostring(d))
      assert.equal("lxshm.topic: kill.t (65536 bytes, last ?)", tostring(t))
      assert(server:start())
      assert.equal("lxshm.queue: kill.q (1024 bytes, 2 values)", tostring(q))
      assert.equal("lxshm.dict: kill.d (65536 bytes, 1 keys)", tostring(d))
      assert.equal("lxshm.topic: kill.t (65536 bytes, last 1)", tostring(t))
      assert.same({ n = 1 }, seg:get())
      assert.equal(1, seg:version())
      assert(seg:put({ n = 2 }))
      assert.equal(2, seg:version())
      assert.equal("a", q:pop(0))
      assert.equal("v1", d:get("k"))
      assert.equal("m1", sub:next(0))
      assert.equal(2, t:publish("m2"))
      assert.equal("m2", sub:next(0))
      ns:close()
    end)

  it("without persistence: the objects are gone (NOT_FOUND), nothing was kept locally",
    function()
      local server = servers.single()
      util.defer(function() server:stop() end)
      local ns = assert(lxshm.connect(server.url))
      local seg = assert(ns:create("gone.seg", 64))
      assert(seg:put("x"))
      server:kill()
      local v, _, code = seg:get()
      assert.is_nil(v)
      assert.equal(lxshm.UNAVAILABLE, code)
      assert(server:start())
      v, _, code = seg:get()
      assert.is_nil(v)
      assert.equal(lxshm.NOT_FOUND, code)
      local again = assert(ns:create("gone.seg", 64)) -- the namespace reconnects too
      assert.equal("", again:read())
      ns:close()
    end)

  it("ends blocked wait, pop, next and dict wait with UNAVAILABLE at once", function()
    local server = servers.single()
    util.defer(function() server:stop() end)
    local ns = assert(lxshm.connect(server.url))
    assert(ns:create("block.seg", 64))
    assert(ns:create_queue("block.q", 64))
    assert(ns:create_dict("block.d", 65536))
    assert(ns:create_topic("block.t", 65536))
    local children = {
      child(server.url, "seg_wait", "block.seg", 0, 60),
      child(server.url, "q_pop", "block.q", 60),
      child(server.url, "d_wait", "block.d", "k", 0, 60),
      child(server.url, "t_next", "block.t", "new", 1, 60),
    }
    for i, c in ipairs(children) do
      c:await(i == 4 and "subscribed" or i == 2 and "popping" or "waiting")
    end
    util.eventually(function()
      local list = server:cli("CLIENT", "LIST")
      local blocked = 0
      for flags in list:gmatch("flags=(%S+)") do
        if flags:find("b", 1, true) then
          blocked = blocked + 1
        end
      end
      return blocked == 4
    end, 10, "four blocked clients")
    local t0 = proc.now()
    server:kill()
    for _, c in ipairs(children) do
      assert.equal("code " .. lxshm.UNAVAILABLE, c:finish(20):match("code %d+"))
    end
    assert.is_true(proc.now() - t0 < 5 * util.SLOW)
    ns:close()
  end)
end)

describe("timeouts on Redis", function()
  local server, ns

  lazy_setup(function()
    server = servers.single()
    ns = assert(lxshm.connect(server.url))
  end)

  lazy_teardown(function()
    ns:close()
    server:stop()
  end)

  it("wait, pop, push, next, next_many and dict wait give up on time", function()
    local seg = assert(ns:create(util.name("tw"), 8))
    local q = assert(ns:create_queue(util.name("tq"), 16))
    local full = assert(ns:create_queue(util.name("tf"), 16))
    assert(full:push(1))
    local d = assert(ns:create_dict(util.name("td"), 65536))
    local t = assert(ns:create_topic(util.name("tt"), 65536))
    local sub = assert(t:subscribe())
    local names = { seg:name(), q:name(), full:name(), d:name(), t:name() }
    util.defer(function()
      for _, name in ipairs(names) do
        ns:remove(name)
      end
    end)
    for _, timeout in ipairs({ 0.05, 0.3 }) do
      for what, call in pairs({
        wait = function() return seg:wait(0, timeout) end,
        pop = function() return q:pop(timeout) end,
        push = function() return full:push(2, timeout) end,
        next = function() return sub:next(timeout) end,
        next_many = function() return sub:next_many(5, timeout) end,
        dwait = function() return d:wait("k", 0, timeout) end,
      }) do
        local took, v, _, code = timed(call)
        assert.is_nil(v, what)
        assert.equal(lxshm.TIMEOUT, code, what)
        assert.is_true(took >= timeout - 0.005 and took < timeout + 0.25 * util.SLOW,
          ("%s(%g) took %g s"):format(what, timeout, took))
      end
    end
  end)
end)

-- Another client writing the keys of an object (by mistake, with the same key names): lxshm
-- says CORRUPT, never reads past a reply or spins. Found by a reviewing helper.
describe("keys written by another client", function()
  local server, ns
  lazy_setup(function()
    server = servers.single()
    ns = assert(lxshm.connect(server.url))
  end)
  lazy_teardown(function()
    ns:close()
    server:stop()
  end)

  --- The one key of object `name` whose name ends in ":SUFFIX".
  local function key_of(name, suffix)
    local key = (server:cli("--scan", "--pattern", "{lxshm:" .. name .. "}:*:" .. suffix))
    assert.matches("^{lxshm:.*:" .. suffix .. "$", key)
    return key
  end

  -- The position, returned by a script as tonumber(garbage), came back as {1} and was read
  -- past its end (ASan: heap-buffer-overflow in topic_subscribe).
  it("a named subscription's position that is no number is CORRUPT", function()
    local name = util.name("tpos")
    local t = assert(ns:create_topic(name, 4096))
    util.defer(function()
      t:close()
      ns:remove(name)
    end)
    assert(t:publish(1))
    assert(t:subscribe({ name = "a", from = "oldest" })):close()
    assert.equal("0", (server:cli("HSET", key_of(name, "p"), "a", "garbage")))
    local sub, err, code = t:subscribe({ name = "a" })
    assert.is_nil(sub)
    assert.equal(lxshm.CORRUPT, code)
    assert.equal(name .. ": subscription a has a damaged position", err)
  end)

  -- An entry with an automatic id read as version 0: wait(0) found it again at once, for ever,
  -- without letting Ctrl-C through.
  it("a segment's stream with another writer's entry is CORRUPT at once, wait included", function()
    local name = util.name("sforeign")
    local seg = assert(ns:create(name, 100))
    util.defer(function()
      seg:close()
      ns:remove(name)
    end)
    assert(seg:put("a"))
    assert.matches("^%d+%-%d+$", (server:cli("XADD", key_of(name, "s"), "*", "f", "0", "v", "x")))
    local t0 = proc.now()
    for _, call in ipairs({
      function() return seg:version() end,
      function() return seg:wait(0, 5) end,
      function() return seg:wait(1, 5) end,
      function() return seg:wait(1) end,
    }) do
      local v, err, code = call()
      assert.is_nil(v)
      assert.equal(lxshm.CORRUPT, code, err)
    end
    assert.is_true(proc.now() - t0 < 2, "took " .. proc.now() - t0 .. " s")
  end)
end)
