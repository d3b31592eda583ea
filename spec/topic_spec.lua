--- Topics: every subscriber sees every message, in order, and learns what it lost; across real
-- processes. Crashes are in topic_crash_spec.lua.
local lxshm = require("lxshm")
local util = require("util")
local proc = util.proc

after_each(util.cleanup)

--- A new topic under a fresh name, closed and removed when the test ends.
local function topic(size, opts, tag)
  local name = util.name(tag or "tp")
  local t = assert(lxshm.create_topic(name, size or 4096, opts))
  util.defer(function()
    t:close()
    lxshm.remove(name)
  end)
  return t, name
end

--- A topic_child.lua process, killed (if still running) and cleaned up when the test ends.
local function child(...)
  local c = util.spawn_script("spec/helpers/topic_child.lua", ...)
  util.defer(function() c:cleanup() end)
  return c
end

--- The three results of a failure, for assert.same.
local function failure(...)
  return { select(1, ...) }
end

describe("a topic in one process", function()
  it("starts empty, its size rounded up to 8, and says so in stat, last and tostring", function()
    local t, name = topic(100)
    assert.equal(104, t:size())
    assert.equal(0, t:last())
    assert.equal(name, t:name())
    assert.same({ name = name, size = 104, last = 0, oldest = 1, subscribers = 0, waiters = 0 },
      t:stat())
    assert.equal("lxshm.topic: " .. name .. " (104 bytes, last 0)", tostring(t))
    assert.equal("lxshm.topic", getmetatable(t).__name)
  end)

  it("numbers messages from 1 and gives every subscription every one, in order", function()
    local t = topic()
    local a, b = t:subscribe("oldest"), t:subscribe()
    local values = { "one", 2, 3.5, { a = { 1, 2 } }, false, "", "last" }
    for i, v in ipairs(values) do
      assert.equal(i, t:publish(v))
    end
    assert.equal(#values, t:last())
    for _, sub in ipairs({ a, b }) do
      for i, v in ipairs(values) do
        assert.same({ v, i, 0 }, { sub:next(0) })
      end
      assert.equal(#values + 1, sub:position())
    end
  end)

  it("returns a published nil as nil, seq, lost", function()
    local t = topic()
    local sub = t:subscribe()
    assert.equal(1, t:publish(nil))
    assert.equal(2, t:publish(nil))
    assert.equal(3, select("#", sub:next(0)))
    local v, seq, lost = sub:next(0)
    assert.is_nil(v)
    assert.equal(2, seq)
    assert.equal(0, lost)
  end)

  it("subscribes from \"new\" by default: only messages published after the call", function()
    local t = topic()
    assert(t:publish("before"))
    local sub = t:subscribe()
    local new = t:subscribe("new")
    assert.equal(2, sub:position())
    assert.equal(2, new:position())
    assert(t:publish("after"))
    assert.same({ "after", 2, 0 }, { sub:next(0) })
    assert.same({ "after", 2, 0 }, { new:next(0) })
  end)

  it("subscribes from \"oldest\": every message still held, none counted lost", function()
    local t = topic(256) -- room for 8 messages (the index: one per 32 bytes)
    for i = 1, 20 do
      assert(t:publish(i))
    end
    assert.equal(13, t:stat().oldest)
    local sub = t:subscribe("oldest")
    assert.equal(13, sub:position())
    assert.same({ 13, 13, 0 }, { sub:next(0) })
  end)

  it("subscribes from a sequence number: that message on, or the oldest held, counting the rest "
    .. "as lost", function()
    local t = topic(256)
    for i = 1, 20 do
      assert(t:publish("m" .. i))
    end
    local exact = t:subscribe(15)
    assert.same({ "m15", 15, 0 }, { exact:next(0) })
    local gone = t:subscribe(3) -- 3 .. 12 were overwritten
    assert.equal(3, gone:position())
    assert.same({ "m13", 13, 10 }, { gone:next(0) })
    assert.same({ "m14", 14, 0 }, { gone:next(0) })
    local ahead = t:subscribe(22) -- not published yet: waits for it
    assert.same(failure(nil, t:name() .. ": no new message", lxshm.TIMEOUT), { ahead:next(0) })
    assert(t:publish("m21"))
    assert(t:publish("m22"))
    assert.same({ "m22", 22, 0 }, { ahead:next(0) })
  end)

  it("overwrites the oldest messages when full, and a lagging subscription counts them lost",
    function()
      local t = topic(512)
      local sub = t:subscribe()
      for i = 1, 10 do
        assert(t:publish(util.stamp(i, 100))) -- 8 + 102 bytes, padded to 112: 4 fit
      end
      local st = t:stat()
      assert.equal(10, st.last)
      assert.equal(7, st.oldest)
      assert.same({ util.stamp(7, 100), 7, 6 }, { sub:next(0) })
      assert.same({ util.stamp(8, 100), 8, 0 }, { sub:next(0) })
    end)

  it("reports no message with TIMEOUT, at once or after the timeout", function()
    local t, name = topic()
    local sub = t:subscribe()
    assert.same(failure(nil, name .. ": no new message", lxshm.TIMEOUT), { sub:next(0) })
    local t0 = proc.now()
    assert.same(failure(nil, name .. ": no new message after 0.05 s", lxshm.TIMEOUT),
      { sub:next(0.05) })
    assert.is_true(proc.now() - t0 >= 0.05)
    assert.same(failure(nil, name .. ": no new message", lxshm.TIMEOUT), { sub:next_many(5, 0) })
    assert.equal(1, sub:position())
  end)

  it("refuses a message larger than the ring with INVALID_SIZE at once, publishing nothing",
    function()
      local t, name = topic(64)
      assert(t:publish("kept"))
      local ok, err, code = t:publish(string.rep("x", 100)) -- no timeout: must not wait
      assert.is_nil(ok)
      assert.equal(lxshm.INVALID_SIZE, code)
      assert.equal(name .. ": encoded value exceeds the limit of 56 bytes", err)
      ok, err, code = t:publish(string.rep("x", 70000)) -- a big string skips the encoder
      assert.is_nil(ok)
      assert.equal(lxshm.INVALID_SIZE, code)
      assert.equal(name .. ": encoded value exceeds the limit of 56 bytes", err)
      assert.equal(1, t:last())
    end)

  it("publishes a big string (its header joined to its bytes) as the encoder would", function()
    local t = topic(1024 * 1024)
    local sub = t:subscribe()
    local big = string.rep("\255", 70000) -- not UTF-8: bin32, past the encoder
    assert.equal(1, t:publish(big))
    assert.equal(2, t:publish(string.rep("y", 65536))) -- UTF-8: str32
    local v, seq = sub:next(0)
    assert.equal(big, v)
    assert.equal(1, seq)
    v = sub:next(0)
    assert.equal(string.rep("y", 65536), v)
    local bytes = lxshm.encode(big) -- lxshm.encode takes the same path
    assert.equal(0xc6, bytes:byte(1)) -- bin32
    assert.equal(70005, #bytes)
    assert.equal(big, lxshm.decode(bytes))
    assert.equal(0xdb, lxshm.encode(string.rep("y", 65536)):byte(1)) -- str32
  end)

  it("refuses what cannot be stored with UNSUPPORTED, publishing nothing", function()
    local t, name = topic()
    assert.same(failure(nil, name .. ": value at .on_hit is a function", lxshm.UNSUPPORTED),
      { t:publish({ on_hit = print }) })
    assert.equal(0, t:last())
  end)

  it("carries big strings whole", function()
    local t = topic(1024 * 1024)
    local sub = t:subscribe()
    local big = util.stamp(7, 300000)
    assert.equal(1, t:publish(big))
    assert.equal(2, t:publish({ big, big }))
    assert.same({ big, 1, 0 }, { sub:next(0) })
    assert.same({ { big, big }, 2, 0 }, { sub:next(0) })
  end)
end)

describe("batches", function()
  it("publish_many numbers the list's values consecutively and returns the last", function()
    local t = topic()
    local sub = t:subscribe()
    assert(t:publish("first"))
    assert.equal(4, t:publish_many({ "a", { b = true }, 3 }))
    assert.equal(4, t:publish_many({})) -- nothing: the last number as it is
    local values, n, first, lost = sub:next_many(10, 0)
    assert.same({ "first", "a", { b = true }, 3 }, values)
    assert.same({ 4, 1, 0 }, { n, first, lost })
  end)

  it("publish_many publishes all or nothing", function()
    local t, name = topic(256)
    assert.same(failure(nil, name .. ": item 2: value at .f is a function", lxshm.UNSUPPORTED),
      { t:publish_many({ 1, { f = print }, 3 }) })
    local ok, err, code = t:publish_many({ util.stamp(1, 100), util.stamp(2, 100),
      util.stamp(3, 100) })
    assert.is_nil(ok)
    assert.equal(lxshm.INVALID_SIZE, code)
    assert.equal(name .. ": 3 messages take more than the topic's 256 bytes", err)
    local list = {}
    for i = 1, 9 do
      list[i] = i
    end
    ok, err, code = t:publish_many(list) -- 9 small messages fit the ring, not the index
    assert.is_nil(ok)
    assert.equal(lxshm.INVALID_SIZE, code)
    assert.equal(name .. ": 9 messages at once, a topic of 256 bytes holds at most 8", err)
    assert.equal(0, t:last())
    assert.equal(8, t:publish_many({ 1, 2, 3, 4, 5, 6, 7, 8 }))
  end)

  it("next_many takes up to max messages, counts what was lost, and waits while there is none",
    function()
      local t, name = topic(512)
      local sub = t:subscribe()
      for i = 1, 10 do
        assert(t:publish(util.stamp(i, 100)))
      end
      local values, n, first, lost = sub:next_many(3, 0)
      assert.same({ 3, 7, 6 }, { n, first, lost })
      assert.same({ util.stamp(7, 100), util.stamp(8, 100), util.stamp(9, 100) }, values)
      values, n, first, lost = sub:next_many(3, 0)
      assert.same({ { util.stamp(10, 100) }, 1, 10, 0 }, { values, n, first, lost })
      assert.same(failure(nil, name .. ": no new message after 0.01 s", lxshm.TIMEOUT),
        { sub:next_many(3, 0.01) })
      assert(t:publish(nil))
      assert(t:publish("x"))
      values, n, first = sub:next_many(5)
      assert.equal(2, n)
      assert.equal(11, first)
      assert.is_nil(values[1])
      assert.equal("x", values[2])
    end)

  it("next_many takes as many as fit its buffer, and grows it for a larger message", function()
    local t = topic(1024 * 1024)
    local sub = t:subscribe()
    local big = util.stamp(3, 200000)
    assert.equal(3, t:publish_many({ "small", big, big }))
    local got = {}
    repeat -- as many as fit its buffer, which grows for a message larger than it
      local values, n, first = sub:next_many(10, 0)
      assert.equal(#got + 1, first)
      for i = 1, n do
        got[#got + 1] = values[i]
      end
    until #got == 3
    assert.same({ "small", big, big }, got)
  end)
end)

describe("named subscriptions", function()
  it("keep their position in the topic when closed, and resume there", function()
    local t = topic()
    assert(t:publish("before"))
    local sub = assert(t:subscribe({ name = "rec" })) -- from "new" the first time
    assert.equal("rec", sub:name())
    assert.equal(2, sub:position())
    assert.equal(2, t:publish_many({ "a" }))
    assert(t:publish("b"))
    assert.same({ "a", 2, 0 }, { sub:next(0) })
    sub:close()
    assert.equal(1, t:stat().subscribers)
    sub = assert(t:subscribe({ name = "rec", from = "oldest" })) -- from applies only at first
    assert.equal(3, sub:position())
    assert.same({ "b", 3, 0 }, { sub:next(0) })
    assert.equal("lxshm.subscription: rec on " .. t:name() .. " (next 4)", tostring(sub))
  end)

  it("start from any from the first time", function()
    local t = topic()
    for i = 1, 5 do
      assert(t:publish(i))
    end
    assert.equal(1, assert(t:subscribe({ name = "o", from = "oldest" })):position())
    assert.equal(6, assert(t:subscribe({ name = "n", from = "new" })):position())
    assert.equal(4, assert(t:subscribe({ name = "s", from = 4 })):position())
  end)

  it("count messages overwritten while nobody held them as lost on resuming", function()
    local t = topic(256)
    local sub = assert(t:subscribe({ name = "slow", from = "oldest" }))
    assert(t:publish(1))
    assert.same({ 1, 1, 0 }, { sub:next(0) })
    sub:close()
    for i = 2, 20 do
      assert(t:publish(i))
    end
    sub = assert(t:subscribe({ name = "slow" }))
    assert.same({ 13, 13, 11 }, { sub:next(0) })
  end)

  it("are held by one subscription at a time: EXISTS naming the holder", function()
    local t, name = topic()
    local sub = assert(t:subscribe({ name = "one" }))
    assert.same(failure(nil, name .. ": subscription one is held by process " .. proc.pid(),
      lxshm.EXISTS), { t:subscribe({ name = "one" }) })
    assert.same(failure(nil, name .. ": subscription one is held by process " .. proc.pid(),
      lxshm.EXISTS), { t:unsubscribe("one") })
    sub:close()
    sub:close()
    assert(t:subscribe({ name = "one" })):close()
  end)

  it("are at most opts.cursors (default 16): then FULL", function()
    local t, name = topic()
    for i = 1, 16 do
      assert(t:subscribe({ name = "s" .. i })):close()
    end
    assert.equal(16, t:stat().subscribers)
    assert.same(failure(nil, name .. ": no room for another named subscription (16 taken)",
      lxshm.FULL), { t:subscribe({ name = "s17" }) })
    local t2, name2 = topic(64, { cursors = 1 })
    assert(t2:subscribe({ name = "a" })):close()
    assert.same(failure(nil, name2 .. ": no room for another named subscription (1 taken)",
      lxshm.FULL), { t2:subscribe({ name = "b" }) })
    local t3, name3 = topic(64, { cursors = 0, mode = "0600" })
    assert.same(failure(nil, name3 .. ": no room for another named subscription (0 taken)",
      lxshm.FULL), { t3:subscribe({ name = "a" }) })
    assert(t3:subscribe()) -- anonymous ones need no room
  end)

  it("are forgotten by unsubscribe, and start anew afterwards", function()
    local t, name = topic()
    assert.same(failure(nil, name .. ": no subscription named nope", lxshm.NOT_FOUND),
      { t:unsubscribe("nope") })
    local sub = assert(t:subscribe({ name = "gone", from = "oldest" }))
    assert(t:publish(1))
    assert(sub:next(0))
    sub:close()
    assert.is_true(t:unsubscribe("gone"))
    assert.equal(0, t:stat().subscribers)
    assert(t:publish(2))
    sub = assert(t:subscribe({ name = "gone", from = "oldest" }))
    assert.equal(1, sub:position())
  end)

  it("refuse bad names with INVALID", function()
    local t, name = topic()
    for _, bad in ipairs({ "", "a/b", ".x", string.rep("n", 65), "a\0b" }) do
      local s, err, code = t:subscribe({ name = bad })
      assert.is_nil(s)
      assert.equal(lxshm.INVALID, code)
      assert.equal(name .. ": invalid subscription name: use 1-64 characters from "
        .. "A-Z a-z 0-9 . _ -, not starting with . or -", err)
      assert.same({ nil, err, code }, { t:unsubscribe(bad) })
    end
  end)
end)

describe("topic handles and subscriptions", function()
  it("raise on any method after close; a subscription outlives its closed topic's mapping",
    function()
      local t, name = topic()
      local named = assert(t:subscribe({ name = "kept" }))
      local sub = t:subscribe()
      assert(t:publish(1))
      t:close()
      t:close()
      assert.equal("lxshm.topic: " .. name .. " (closed)", tostring(t))
      for _, m in ipairs({ "last", "size", "stat", "name", "subscribe" }) do
        assert.has_error(function() t[m](t) end, "attempt to use a closed lxshm topic")
      end
      assert.has_error(function() t:publish(1) end, "attempt to use a closed lxshm topic")
      for _, m in ipairs({ "next", "position", "name" }) do
        assert.has_error(function() sub[m](sub) end, "attempt to use a closed lxshm topic")
      end
      assert.has_error(function() sub:next_many(1) end, "attempt to use a closed lxshm topic")
      assert.equal("lxshm.subscription: " .. name .. " (closed)", tostring(sub))
      sub:close()
      named:close() -- lets go of its name: another handle can take it
      local again = assert(lxshm.open_topic(name))
      assert(again:subscribe({ name = "kept" })):close()
      again:close()
      assert.has_error(function() sub:next() end, "attempt to use a closed lxshm subscription")
      assert.has_error(function() sub:position() end,
        "attempt to use a closed lxshm subscription")
    end)

  it("close with __close and __gc; a collected subscription lets go of its name", function()
    local t = topic()
    do
      local sub = assert(t:subscribe({ name = "gc" }))
      assert.equal("lxshm.subscription", getmetatable(sub).__name)
      sub = nil -- luacheck: ignore 311
    end
    collectgarbage()
    collectgarbage()
    local sub = assert(t:subscribe({ name = "gc" }))
    local close = getmetatable(sub).__close
    close(sub)
    assert(t:subscribe({ name = "gc" })):close()
  end)

  it("share the namespace: EXISTS, INVALID for the other kinds, remove", function()
    local _, name = topic(64)
    assert.same(failure(nil, name .. ": already exists", lxshm.EXISTS),
      { lxshm.create_topic(name, 64) })
    assert.same(failure(nil, name .. ": is a topic, not a segment (use open_topic)",
      lxshm.INVALID), { lxshm.open(name) })
    assert.same(failure(nil, name .. ": is a topic, not a queue (use open_topic)", lxshm.INVALID),
      { lxshm.open_queue(name) })
    local q, qname = util.queue(64)
    assert(q)
    assert.same(failure(nil, qname .. ": is a queue, not a topic (use open_queue)", lxshm.INVALID),
      { lxshm.open_topic(qname) })
    local other = assert(lxshm.attach_topic(name, 999))
    assert.equal(64, other:size())
    other:close()
    assert.is_true(lxshm.remove(name))
    assert.same(failure(nil, name .. ": does not exist", lxshm.NOT_FOUND),
      { lxshm.open_topic(name) })
    local made = assert(lxshm.attach_topic(name, 128, { cursors = 2 }))
    assert.equal(128, made:size())
    made:close()
  end)

  it("opened read-only, follow the topic but refuse to publish or hold a name", function()
    local t, name = topic()
    local ro = assert(lxshm.open_topic(name, { readonly = true }))
    util.defer(function() ro:close() end)
    local sub = ro:subscribe()
    assert(t:publish("seen"))
    assert.same({ "seen", 1, 0 }, { sub:next(1) })
    assert.same(failure(nil, name .. ": opened read-only", lxshm.PERMISSION), { ro:publish(1) })
    assert.same(failure(nil, name .. ": opened read-only", lxshm.PERMISSION),
      { ro:publish_many({ 1 }) })
    assert.same(failure(nil, name .. ": opened read-only: named subscriptions write their "
      .. "position", lxshm.PERMISSION), { ro:subscribe({ name = "x" }) })
  end)

  it("refuse bad names and sizes like the other kinds, and raise on bad options", function()
    assert.same(failure(nil, "\"a/b\": invalid name: use 1-64 characters from A-Z a-z 0-9 . _ -, "
      .. "not starting with . or -", lxshm.INVALID), { lxshm.create_topic("a/b", 64) })
    for _, size in ipairs({ 0, -8, 1.5, 0 / 0, 2 ^ 41 }) do
      local _, _, code = lxshm.create_topic(util.name("ts"), size)
      assert.equal(lxshm.INVALID_SIZE, code)
    end
    local name = util.name("ts")
    assert.has_error(function() lxshm.create_topic(name, {}) end,
      "bad argument #2 to 'create_topic' (number expected, got table)")
    assert.has_error(function() lxshm.create_topic(name, 64, { bad = 1 }) end,
      "bad argument #3 to 'create_topic' (unknown option 'bad')")
    for _, n in ipairs({ -1, 1.5, 1025, "4", true }) do
      assert.has_error(function() lxshm.create_topic(name, 64, { cursors = n }) end,
        "bad argument #3 to 'create_topic' (option 'cursors' must be an integer from 0 to 1024)")
    end
    assert.has_error(function() lxshm.attach_topic(name, 64, { cursors = -1 }) end,
      "bad argument #3 to 'attach_topic' (option 'cursors' must be an integer from 0 to 1024)")
    assert.has_error(function() lxshm.open_topic(name, { cursors = 4 }) end,
      "bad argument #2 to 'open_topic' (unknown option 'cursors')")
    assert.has_error(function() lxshm.create(name, 64, { cursors = 4 }) end,
      "bad argument #3 to 'create' (unknown option 'cursors')")
    assert.has_error(function() lxshm.create_queue(name, 64, { cursors = 4 }) end,
      "bad argument #3 to 'create_queue' (unknown option 'cursors')")
    assert.same(failure(nil, name .. ": does not exist", lxshm.NOT_FOUND), { lxshm.remove(name) })
  end)

  it("raise on every bad argument of every method", function()
    local t = topic()
    local sub = t:subscribe()
    local from = "bad argument #1 to 'subscribe' (from must be \"new\", \"oldest\" or a sequence "
      .. "number >= 1)"
    local cases = {
      { function() t:publish() end, "bad argument #1 to 'publish' (value expected)" },
      { function() t:publish(1, -1) end,
        "bad argument #2 to 'publish' (timeout must be a number of seconds >= 0)" },
      { function() t:publish(1, "x") end,
        "bad argument #2 to 'publish' (number expected, got string)" },
      { function() t:publish_many() end,
        "bad argument #1 to 'publish_many' (table expected, got no value)" },
      { function() t:publish_many("x") end,
        "bad argument #1 to 'publish_many' (table expected, got string)" },
      { function() t:publish_many({ 1 }, -1) end,
        "bad argument #2 to 'publish_many' (timeout must be a number of seconds >= 0)" },
      { function() t:publish_many(setmetatable({}, { __index = function() return 1 end })) end,
        "bad argument #1 to 'publish_many' (a list with __len or __index: pass a plain table)" },
      { function() t:subscribe("newest") end, from },
      { function() t:subscribe(0) end, from },
      { function() t:subscribe(-3) end, from },
      { function() t:subscribe(1.5) end, from },
      { function() t:subscribe(0 / 0) end, from },
      { function() t:subscribe(true) end, from },
      { function() t:subscribe({ from = "oldest" }) end,
        "bad argument #1 to 'subscribe' (a named subscription needs a name)" },
      { function() t:subscribe({ name = 5 }) end,
        "bad argument #1 to 'subscribe' (name must be a string)" },
      { function() t:subscribe({ name = "a", from = "x" }) end, from },
      { function() t:subscribe({ name = "a", form = 1 }) end,
        "bad argument #1 to 'subscribe' (unknown option 'form')" },
      { function() t:unsubscribe() end,
        "bad argument #1 to 'unsubscribe' (string expected, got no value)" },
      { function() t:unsubscribe({}) end,
        "bad argument #1 to 'unsubscribe' (string expected, got table)" },
      { function() sub:next(-1) end,
        "bad argument #1 to 'next' (timeout must be a number of seconds >= 0)" },
      { function() sub:next(0 / 0) end,
        "bad argument #1 to 'next' (timeout must be a number of seconds >= 0)" },
      { function() sub:next("soon") end,
        "bad argument #1 to 'next' (number expected, got string)" },
      { function() sub:next_many() end,
        "bad argument #1 to 'next_many' (number expected, got no value)" },
      { function() sub:next_many(0) end, "bad argument #1 to 'next_many' (must be at least 1)" },
      { function() sub:next_many(1.5) end,
        "bad argument #1 to 'next_many' (number has no integer representation)" },
      { function() sub:next_many(2, -1) end,
        "bad argument #2 to 'next_many' (timeout must be a number of seconds >= 0)" },
      { function() t.publish("x", 1) end,
        "bad argument #1 to 'publish' (lxshm.topic expected, got string)" },
      { function() sub.next(t) end, -- a userdata is named by its __name from 5.3 on
        "bad argument #1 to 'next' (lxshm.subscription expected, got "
        .. (_VERSION >= "Lua 5.3" and "lxshm.topic" or "userdata") .. ")" },
      { function() sub.position({}) end,
        "bad argument #1 to 'position' (lxshm.subscription expected, got table)" },
    }
    for _, case in ipairs(cases) do
      assert.has_error(case[1], case[2])
    end
    assert.equal(0, t:last())
    assert.equal(0, t:stat().subscribers)
  end)
end)

describe("a topic across processes", function()
  it("gives 4 subscriber processes all 100,000 messages of a publisher, in order, whole",
    function()
      local _, name = topic(8 * 1024 * 1024)
      local subs = {}
      for i = 1, 4 do
        subs[i] = child("follow", name, "oldest", 100000, 1)
      end
      for i = 1, 4 do
        subs[i]:await("subscribed")
      end
      child("publish", name, 1, 100000, 24):finish(120)
      for i = 1, 4 do
        assert.equal("subscribed\ngot 100000 lost 0 first 1", subs[i]:finish(120))
      end
    end)

  it("makes a slow subscriber's lost count account exactly for what it missed, nothing torn",
    function()
      local _, name = topic(4096)
      local slow = child("follow", name, 1, 20000, 1, 0.002)
      local fast = child("follow_many", name, 20000, 50)
      slow:await("subscribed")
      fast:await("subscribed")
      child("publish", name, 1, 20000, 40):finish(60)
      -- The child checks every seq = previous + 1 + lost and every message whole.
      local got, lost, first = slow:finish(60):match("got (%d+) lost (%d+) first (%d+)")
      assert.equal(1, tonumber(first))
      assert.equal(20000, tonumber(got) + tonumber(lost))
      assert.is_true(tonumber(lost) > 0, "the slow subscriber lost nothing")
      got, lost = fast:finish(60):match("got (%d+) lost (%d+)")
      assert.equal(20000, tonumber(got) + tonumber(lost))
    end)

  it("orders the messages of 3 publishers at once the same way for every subscriber", function()
    local t, name = topic(8 * 1024 * 1024)
    local gate = util.gate()
    local subs = { child("follow", name, "oldest", 60000, 3), child("follow", name, 1, 60000, 3) }
    for _, s in ipairs(subs) do
      s:await("subscribed")
    end
    local pubs = {}
    for p = 1, 3 do
      pubs[p] = child("publish", name, p, 20000, 24, p == 2 and 7 or 1, gate)
      pubs[p]:await("ready")
    end
    util.open_gate(gate)
    for p = 1, 3 do
      pubs[p]:finish(60)
    end
    assert.equal(60000, t:last())
    for _, s in ipairs(subs) do
      assert.equal("subscribed\ngot 60000 lost 0 first 1", s:finish(60))
    end
    -- The same order for all: a third subscriber reads the whole log, and so does this one.
    local mine, seen = t:subscribe(1), {}
    for seq = 1, 60000 do
      local v, s = mine:next(0)
      assert.equal(seq, s)
      seen[#seen + 1] = v.id * 100000 + v.n
    end
    local again, k = t:subscribe(1), 0
    repeat
      local values, n, first = again:next_many(60000, 0)
      assert.equal(k + 1, first)
      for i = 1, n do
        assert.equal(seen[k + i], values[i].id * 100000 + values[i].n)
      end
      k = k + n
    until k == 60000
  end)

  it("wakes a subscriber blocked in next when another process publishes", function()
    local t, name = topic()
    local c = child("next", name, "new", "")
    c:await("waiting")
    util.eventually(function() return t:stat().waiters == 1 end, 10, "a blocked next")
    assert.equal(1, t:publish("hello"))
    assert.equal("waiting\nhello 1 0", c:finish())
    assert.equal(0, t:stat().waiters)
  end)

  -- The traceback names the C method "method 'next'" from 5.3 on, "function 'next'" on 5.1,
  -- 5.2 and LuaJIT.
  it("ends a next blocked in the " .. util.INTERPRETER .. " interpreter with \"interrupted!\" "
    .. "on Ctrl-C (SIGINT), leaving no waiter counted", function()
    local t, name = topic()
    local c = child("next", name, "new", "")
    c:await("waiting")
    util.eventually(function() return t:stat().waiters == 1 end, 10, "a blocked next")
    c:kill("INT")
    assert.same({ "exit", 1 }, { c:wait(5) })
    assert.matches(": interrupted!\nstack traceback:\n\t[C]: in "
      .. (_VERSION >= "Lua 5.3" and "method" or "function") .. " 'next'", c:stderr(), 1, true)
    assert.equal(0, t:stat().waiters)
  end)

  it("times a subscriber in another process out after its timeout", function()
    local _, name = topic()
    assert.equal("waiting\nnil " .. lxshm.TIMEOUT, child("next", name, "new", 0.05):finish())
  end)

  it("resumes a named subscription after its holder is killed, where it stopped", function()
    local t, name = topic()
    for i = 1, 4 do
      assert(t:publish(i))
    end
    local c = child("durable", name, "dur", 4)
    c:await("read 4")
    util.eventually(function() return t:stat().waiters == 1 end, 10, "a blocked next")
    assert.same(failure(nil, name .. ": subscription dur is held by process " .. c.pid,
      lxshm.EXISTS), { t:subscribe({ name = "dur" }) })
    c:kill()
    c:wait()
    assert(t:publish(5))
    local sub = assert(t:subscribe({ name = "dur" }))
    assert.equal(5, sub:position())
    assert.same({ 5, 5, 0 }, { sub:next(0) })
  end)

  it("frees a name held by a killed process, and refuses one held by a living one", function()
    local t, name = topic()
    local c = child("hold", name, "held")
    c:await("holding")
    assert.same(failure(nil, name .. ": subscription held is held by process " .. c.pid,
      lxshm.EXISTS), { t:unsubscribe("held") })
    c:kill()
    c:wait()
    assert.is_true(t:unsubscribe("held"))
  end)
end)

describe("a topic shared with a C host", function()
  local peer

  --- The C sources of the core and its POSIX platform, as mk/sources.mk lists them.
  local function core_sources()
    local text = util.slurp("mk/sources.mk"):gsub("\\\n", " ")
    local list = {}
    for _, var in ipairs({ "CORE_SRC", "POSIX_SRC" }) do
      local words = assert(text:match("\n" .. var .. "%s*=([^\n]*)"), var)
      for word in words:gmatch("%S+") do
        list[#list + 1] = word
      end
    end
    return table.concat(list, " ")
  end

  -- Commands run with LD_PRELOAD cleared: under `make asan` it holds libasan.
  local function sh(cmd)
    local out = os.tmpname()
    local ok = util.execute("LD_PRELOAD= " .. cmd .. " > " .. out .. " 2>&1")
    local text = util.slurp(out)
    os.remove(out)
    assert(ok, cmd .. ": " .. text)
    return text
  end

  lazy_setup(function()
    peer = os.tmpname()
    sh(("${CC:-cc} -std=c11 -D_GNU_SOURCE -Isrc -o %s spec/helpers/topic_peer.c %s"):format(peer,
      core_sources()))
  end)

  lazy_teardown(function()
    os.remove(peer)
  end)

  it("reads what a C host publishes as strings, and hands it the MessagePack of Lua values",
    function()
      local t, name = topic()
      local sub = t:subscribe()
      assert.equal("2\n", sh(peer .. " publish " .. name .. " 'raw bytes' ''"))
      assert.same({ "raw bytes", 1, 0 }, { sub:next(0) })
      assert.same({ "", 2, 0 }, { sub:next(0) })
      local values = { { hp = 85, tags = { "a" } }, "text", 2.5 }
      assert.equal(5, t:publish_many(values))
      local lines = {}
      for seq, lost, hex in sh(peer .. " read " .. name .. " 1 5"):gmatch("(%d+) (%d+) (%x*)\n") do
        lines[#lines + 1] = { tonumber(seq), tonumber(lost), hex }
      end
      local function hex(s)
        return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
      end
      assert.same({ 1, 0, hex("raw bytes") }, lines[1])
      assert.same({ 2, 0, "" }, lines[2])
      for i, v in ipairs(values) do
        assert.same({ 2 + i, 0, hex(lxshm.encode(v)) }, lines[2 + i])
      end
    end)
end)
