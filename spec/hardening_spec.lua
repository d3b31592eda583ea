--- What a hostile or careless user found, and read-only and foreign-owner opens: each test
-- failed before its fix. Children that may crash run hostile.lua in their own process.
local lxshm = require("lxshm")
local util = require("util")
local proc = util.proc

after_each(util.cleanup)

local function shm_path(name)
  return "/dev/shm/lxshm." .. name
end

local function poke(name, offset, bytes)
  local f = assert(io.open(shm_path(name), "r+b"))
  f:seek("set", offset)
  f:write(bytes)
  f:close()
end

local u64 = util.u64le

local is_root = io.popen("id -u"):read("*l") == "0"
local NOBODY = 65534

--- Runs hostile.lua COMMAND ARGS... in a child, as user `uid` if given; cleaned up at the end.
local function hostile(uid, ...)
  local c = util.spawn_as(uid, "spec/helpers/hostile.lua", ...)
  util.defer(function() c:cleanup() end)
  return c
end

--- Says plainly, on stderr, which checks this run cannot make.
local function cannot(what)
  io.stderr:write("\n# hardening_spec: not run as root, so ", what, " was not checked\n")
end

describe("an object of another user", function()
  it("is refused with PERMISSION naming its owner, and opened with trust", function()
    if not is_root then
      return cannot("an object owned by another user (it needs chown)")
    end
    local seg, name = util.segment(64)
    assert(seg:write("theirs"))
    assert(util.execute(("chown %d %s"):format(NOBODY, shm_path(name))))
    for _, open in ipairs({
      function(opts) return lxshm.open(name, opts) end,
      function(opts) return lxshm.attach(name, 64, opts) end,
    }) do
      local r, err, code = open()
      assert.is_nil(r)
      assert.equal(lxshm.PERMISSION, code)
      assert.equal(name .. ": belongs to user nobody (uid 65534): open it with trust only if "
        .. "you trust that user with this process's memory", err)
      local _, err2, code2 = open({ readonly = true })
      assert.equal(lxshm.PERMISSION, code2, err2)
      local trusted = assert(open({ trust = true }))
      assert.equal("theirs", trusted:read())
      trusted:close()
    end
    local q, qname = util.queue(64)
    q:close()
    assert(util.execute(("chown %d %s"):format(NOBODY, shm_path(qname))))
    local _, _, code = lxshm.open_queue(qname)
    assert.equal(lxshm.PERMISSION, code)
    assert(lxshm.open_queue(qname, { trust = true })):close()
  end)

  it("is refused to a user without write permission unless opened read-only", function()
    if not is_root then
      return cannot("another user's access (it needs setpriv)")
    end
    local seg, name = util.segment(64)
    assert(seg:write("state"))
    assert(lxshm.remove(name))
    seg:close()
    seg = assert(lxshm.create(name, 64, { mode = "0644" }))
    util.defer(function() seg:close() lxshm.remove(name) end)
    assert(seg:write("state"))
    local plain = hostile(NOBODY, "open", name, "trust")
    assert.equal("PERMISSION " .. name .. ": shm_open: Permission denied\n", plain:finish())
    local untrusted = hostile(NOBODY, "open", name, "readonly")
    local said = untrusted:finish()
    assert.equal(1, said:find("PERMISSION " .. name .. ": belongs to user root (uid 0)", 1, true))
  end)
end)

describe("a read-only handle", function()
  it("reads, waits and counts, and every write returns PERMISSION", function()
    local seg, name = util.segment(64)
    assert(seg:put({ x = 1 }))
    local ro = assert(lxshm.open(name, { readonly = true }))
    util.defer(function() ro:close() end)
    assert.same({ x = 1 }, ro:get())
    assert.equal(seg:read(), ro:read())
    assert.equal(1, ro:version())
    assert.equal(1, ro:stat().version)
    for _, write in ipairs({
      function() return ro:write("y") end,
      function() return ro:put("y") end,
      function() return ro:update(function() return "y" end) end,
    }) do
      local r, err, code = write()
      assert.is_nil(r)
      assert.equal(lxshm.PERMISSION, code)
      assert.equal(name .. ": opened read-only", err)
    end
    assert.same({ x = 1 }, seg:get())
    local v, _, code = ro:wait(1, 0.01)
    assert.is_nil(v)
    assert.equal(lxshm.TIMEOUT, code)
  end)

  it("follows a segment of another user that it may only read", function()
    if not is_root then
      return cannot("a read-only follower of another user (it needs setpriv)")
    end
    local name = util.name("ro")
    local seg = assert(lxshm.create(name, 64, { mode = "0644" }))
    util.defer(function() seg:close() lxshm.remove(name) end)
    assert(seg:write("first"))
    local follower = hostile(NOBODY, "follow", name)
    follower:await("waiting")
    assert(seg:write("second"))
    assert.equal("value first\nwaiting\nvalue second\nwrites PERMISSION PERMISSION PERMISSION\n",
      follower:finish())
  end)

  it("refuses to take a queue's locks: push and pop return PERMISSION", function()
    local q, name = util.queue(64)
    assert(q:push("kept"))
    local ro = assert(lxshm.open_queue(name, { readonly = true }))
    util.defer(function() ro:close() end)
    assert.equal(1, ro:count())
    for _, call in ipairs({
      function() return ro:push(1, 0) end,
      function() return ro:pop(0) end,
      function() return ro:peek() end,
      function() return ro:pop_many(2, 0) end,
      function() return ro:push_many({ 1 }, 0) end,
    }) do
      local r, err, code = call()
      assert.is_nil(r)
      assert.equal(lxshm.PERMISSION, code, err)
    end
    assert.equal("kept", q:pop(0))
  end)
end)

describe("a handle closed during its own method", function()
  it("by a finalizer while get and read allocate: the close waits, nothing crashes", function()
    local seg, name = util.segment(4096)
    local big = {}
    for i = 1, 200 do
      big[i] = { i, tostring(i) }
    end
    assert(seg:put(big))
    local out = hostile(nil, "closing_gc", name, "segment"):finish()
    local returned, raised = out:match("^returned (%d+) raised (%d+)\n$")
    assert.equal(300, tonumber(returned) + tonumber(raised), out)
  end)

  it("by a finalizer while push, peek, pop and pop_many allocate", function()
    local _, name = util.queue(65536)
    local out = hostile(nil, "closing_gc", name, "queue"):finish()
    assert.matches("^returned %d+ raised %d+\n$", out)
  end)

  it("by a hook inside wait: wait runs to its timeout, later calls raise", function()
    local _, name = util.segment(64)
    assert.equal("wait nil TIMEOUT fired true\nattempt to use a closed lxshm segment\n",
      hostile(nil, "hook_close", name):finish())
  end)

  -- A subscription's state is freed by its close: closed during its own next, it was read and
  -- written after the free (ASan: heap-use-after-free in lxshm__subscription_take and has_next).
  it("a subscription, by a finalizer while next and next_many allocate", function()
    local name = util.name("gcsub")
    local t = assert(lxshm.create_topic(name, 1048576))
    util.defer(function() t:close() lxshm.remove(name) end)
    for i = 1, 40 do -- past the 1 KiB a copy takes on the C stack: next allocates its buffer
      assert(t:publish(string.rep(string.char(64 + i % 26), 5000 + i)))
    end
    local out = hostile(nil, "closing_gc", name, "subscription"):finish()
    local returned, raised = out:match("^returned (%d+) raised (%d+)\n$")
    assert.equal(300, tonumber(returned) + tonumber(raised), out)
    assert.is_true(tonumber(raised) > 0, out)
  end)

  it("a subscription, by a hook inside next: next runs to its timeout, later calls raise",
    function()
      local name = util.name("hooksub")
      local t = assert(lxshm.create_topic(name, 4096))
      util.defer(function() t:close() lxshm.remove(name) end)
      assert.equal("next nil TIMEOUT fired true\nattempt to use a closed lxshm subscription\n",
        hostile(nil, "hook_close_sub", name):finish())
    end)
end)

describe("damaged shared state", function()
  it("a push on indices claiming more than the ring returns CORRUPT at once", function()
    local q, name = util.queue(64)
    assert(q:push("a"))
    poke(name, 128, u64(10000)) -- tail, far past head + capacity
    local t0 = proc.now()
    local r, err, code = q:push("b", 5)
    assert.is_nil(r)
    assert.equal(lxshm.CORRUPT, code)
    assert.equal(name .. ": indices are damaged (head 0, tail 10000, ring 64)", err)
    assert.is_true(proc.now() - t0 < 1)
  end)

  it("garbage in a lock's bytes gives statuses, never an abort or a hang", function()
    local name = util.name("lockjunk")
    util.defer(function() lxshm.remove(name) end)
    local out = hostile(nil, "garbage_locks", name, 40, os.time()):finish(60)
    local total = 0
    for key, n in out:gmatch("(%u+)=(%d+)") do
      assert.is_true(key == "OK" or key == "CORRUPT" or key == "TIMEOUT", out)
      total = total + tonumber(n)
    end
    assert.equal(80, total, out)
  end)

  it("a lock naming a live thread that does not map the object is CORRUPT, not a wait for ever",
    function()
      local seg, name = util.segment(64)
      assert(seg:write("kept"))
      -- A process that runs and never maps this object: a "hold" of its can never end.
      local sleeper = assert(proc.spawn({ "sleep", "60" }))
      util.defer(function()
        proc.kill(sleeper, "KILL")
        proc.wait(sleeper, 5)
      end)
      local tid = u64(sleeper):sub(1, 4) -- as string.pack("<i4", sleeper), which 5.1 lacks
      poke(name, 64, tid)
      poke(name, 72, tid)
      local t0 = proc.now()
      local r, err, code = seg:write("lost") -- no timeout: would wait for ever
      assert.is_nil(r)
      assert.equal(lxshm.CORRUPT, code)
      assert.equal(name .. ": lock is held by thread " .. sleeper
        .. ", which does not map this object", err)
      assert.is_true(proc.now() - t0 < 5 * util.SLOW)
      assert.equal("kept", seg:read())
    end)

  -- Found by make fuzz-object: FUTEX_WAITERS with no holder is a word no lock passes through,
  -- and glibc would sleep on it for ever, since nobody is left to wake it.
  it("a lock word with waiters but no holder is CORRUPT at once, not a wait for ever", function()
    local seg, name = util.segment(64)
    assert(seg:write("kept"))
    poke(name, 64, "\0\0\0\128") -- the lock word, little-endian 0x80000000
    local r, err, code = seg:write("lost") -- no timeout: would wait for ever
    assert.is_nil(r)
    assert.equal(lxshm.CORRUPT, code)
    assert.equal(name .. ": lock bytes are damaged", err)
    assert.equal("kept", seg:read())
  end)

  it("an object not wholly backed by memory is CORRUPT, never mapped (no SIGBUS)", function()
    local seg, name = util.segment(1048576)
    seg:close()
    local f = assert(io.open(shm_path(name), "rb"))
    local head = f:read(4096)
    f:close()
    assert(lxshm.remove(name))
    -- The same header in a sparse file of the same size: the rest is holes, as a creator killed
    -- between ftruncate and fallocate left it.
    f = assert(io.open(shm_path(name), "wb"))
    f:write(head)
    f:seek("set", 1048576 * 2 + 1024 + 128 - 1)
    f:write("\0")
    f:close()
    local t0 = proc.now()
    local r, err, code = lxshm.open(name)
    assert.is_nil(r)
    assert.equal(lxshm.CORRUPT, code)
    assert.equal(name .. ": never finished initializing (its creator died?)", err)
    assert.is_true(proc.now() - t0 < 2)
  end)

  it("a forged 16 GiB sparse object is refused within a second", function()
    local name = util.name("forged")
    local f = assert(io.open(shm_path(name), "wb"))
    util.defer(function() os.remove(shm_path(name)) end)
    f:seek("set", 16 * 2 ^ 30 - 1)
    f:write("\0")
    f:close()
    local t0 = proc.now()
    local r, _, code = lxshm.open(name)
    assert.is_nil(r)
    assert.equal(lxshm.CORRUPT, code)
    assert.is_true(proc.now() - t0 < 1)
  end)
end)

describe("counts and names under concurrency", function()
  it("q:count() and tostring(q) never go negative while others push and pop", function()
    local q, name = util.queue(4096)
    local producer = util.child("produce", name, 1, 20000)
    local consumer = util.child("consume", name)
    producer:await("producing")
    consumer:await("consuming")
    local lowest, samples = 0, 0
    while not producer.how do
      for _ = 1, 1000 do
        lowest = math.min(lowest, q:count())
      end
      samples = samples + 1000
      assert.is_true(tonumber(tostring(q):match("(%-?%d+) values%)$")) >= 0)
      local how, code = proc.wait(producer.pid, 0)
      producer.how, producer.code = how, code
    end
    assert(q:push("stop"))
    consumer:finish()
    assert.equal(0, lowest)
    assert.is_true(samples > 0)
  end)

  it("a failed create never removes the object another process made under the name", function()
    local name = util.name("race")
    util.defer(function() lxshm.remove(name) end)
    local creator = hostile(nil, "create_huge", name, 1)
    creator:await("creating")
    local rounds = 0
    while not creator:said("done") do
      -- Take the name away from whoever holds it (the child, mid-create, with the old code),
      -- then make ours: it must stay ours, whatever the child's create does when it fails.
      lxshm.remove(name)
      local seg = lxshm.create(name, 64)
      if seg then
        rounds = rounds + 1
        assert(seg:write("mine"))
        for _ = 1, 20 do
          local again = assert(lxshm.open(name))
          assert.equal("mine", again:read())
          again:close()
        end
        seg:close()
      end
    end
    assert.matches("^creating\nfailed %d+ times\ndone\n$", creator:finish())
    assert.is_true(rounds > 0)
  end)

  it("stat().waiters forgets a killed waiter before its parent reaps it", function()
    local seg, name = util.segment(64)
    local waiter = util.child("wait", name, 0, 30)
    waiter:await("waiting")
    util.eventually(function() return seg:stat().waiters == 1 end, 10, "a blocked waiter")
    waiter:kill()
    -- Not reaped: the child is a zombie until waiter:wait(), which comes only after.
    util.eventually(function() return seg:stat().waiters == 0 end, 10, "the killed waiter gone")
    waiter:wait()
  end)
end)

describe("small things", function()
  it("strerror of a huge or fractional code is unknown", function()
    for _, code in ipairs({ math.mininteger or -2 ^ 63, -1, 1.5, 2 ^ 40, 1 / 0 }) do
      assert.same({ "unknown status", "UNKNOWN" }, { lxshm.strerror(code) })
    end
  end)

  it("an option named with a zero byte inside is unknown", function()
    assert.has_error(function() lxshm.create(util.name("z"), 8, { ["mode\0x"] = 384 }) end,
      "bad argument #3 to 'create' (unknown option '?')")
  end)

  it("open options must be booleans, and open knows no mode", function()
    local _, name = util.segment(8)
    assert.has_error(function() lxshm.open(name, { readonly = 1 }) end,
      "bad argument #2 to 'open' (option 'readonly' must be a boolean)")
    assert.has_error(function() lxshm.open(name, { mode = "0600" }) end,
      "bad argument #2 to 'open' (unknown option 'mode')")
  end)

  it("push_many refuses a proxy list with __len or __index", function()
    local q = util.queue(64)
    local proxy = setmetatable({}, { __len = function() return 3 end,
      __index = function(_, i) return i end })
    assert.has_error(function() q:push_many(proxy) end,
      "bad argument #1 to 'push_many' (a list with __len or __index: pass a plain table)")
    assert.equal(0, q:count())
  end)
end)
