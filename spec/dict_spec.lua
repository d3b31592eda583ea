--- Dictionaries (SPEC §9): many keys in one object, with versions, expiry, eviction, CAS and
-- waiting, in one process and across real processes.
local lxshm = require("lxshm")
local util = require("util")
local proc = util.proc

after_each(util.cleanup)

--- A new dictionary of `size` bytes under a fresh name, closed and removed when the test ends.
local encodable

local function dict(size, tag)
  local name = util.name(tag or "d")
  local d = assert(lxshm.create_dict(name, size or 65536))
  util.defer(function()
    d:close()
    lxshm.remove(name)
  end)
  return d, name
end

--- A child running spec/helpers/dict_child.lua, cleaned up when the test ends.
local function child(...)
  local c = util.spawn_script("spec/helpers/dict_child.lua", ...)
  util.defer(function() c:cleanup() end)
  return c
end

--- Polls until fn() is true (real time: TTLs are real), at most `seconds` (stretched).
local function eventually(fn, seconds, what)
  return util.eventually(fn, seconds or 5, what)
end

describe("a dictionary", function()
  it("is created with its size rounded up to whole 4 KiB, at least 16 KiB", function()
    local d, name = dict(1000)
    assert.equal(16384, d:capacity())
    assert.equal(0, d:count())
    assert.equal(name, d:name())
    assert.equal("lxshm.dict: " .. name .. " (16384 bytes, 0 keys)", tostring(d))
    assert.equal("lxshm.dict", getmetatable(d).__name)
    local e = dict(100000)
    assert.equal(102400, e:capacity())
    assert(d:set("a", 1))
    assert.equal("lxshm.dict: " .. name .. " (16384 bytes, 1 keys)", tostring(d))
  end)

  it("is opened and attached by name; create of a taken name is EXISTS", function()
    local d, name = dict()
    assert(d:set("k", "v"))
    local o = assert(lxshm.open_dict(name))
    assert.equal("v", o:get("k"))
    o:close()
    local a = assert(lxshm.attach_dict(name, 999999))
    assert.equal(65536, a:capacity())
    a:close()
    local again, err, code = lxshm.create_dict(name, 65536)
    assert.is_nil(again)
    assert.equal(lxshm.EXISTS, code)
    assert.equal(name .. ": already exists", err)
    local missing = util.name("missing")
    again, err, code = lxshm.open_dict(missing)
    assert.is_nil(again)
    assert.equal(lxshm.NOT_FOUND, code)
    assert.equal(missing .. ": does not exist", err)
  end)

  it("is not a segment or a queue, and they are not dictionaries (INVALID)", function()
    local _, name = dict()
    local s, err, code = lxshm.open(name)
    assert.is_nil(s)
    assert.equal(lxshm.INVALID, code)
    assert.equal(name .. ": is a dict, not a segment (use open_dict)", err)
    s, err, code = lxshm.open_queue(name)
    assert.is_nil(s)
    assert.equal(lxshm.INVALID, code)
    assert.equal(name .. ": is a dict, not a queue (use open_dict)", err)
    local _, sname = util.segment(64)
    s, err, code = lxshm.open_dict(sname)
    assert.is_nil(s)
    assert.equal(lxshm.INVALID, code)
    assert.equal(sname .. ": is a segment, not a dict (use open)", err)
    s, _, code = lxshm.attach_dict(sname, 65536)
    assert.is_nil(s)
    assert.equal(lxshm.INVALID, code)
  end)

  it("is removed by lxshm.remove; open handles keep working", function()
    local d, name = dict()
    assert(d:set("k", 1))
    assert(lxshm.remove(name))
    local _, _, code = lxshm.open_dict(name)
    assert.equal(lxshm.NOT_FOUND, code)
    assert.equal(1, d:get("k"))
  end)

  it("refuses sizes above 16 GiB with INVALID_SIZE", function()
    local name = util.name("huge")
    local d, err, code = lxshm.create_dict(name, 2 ^ 34 + 1)
    assert.is_nil(d)
    assert.equal(lxshm.INVALID_SIZE, code)
    assert.equal(name .. ": a dictionary holds at most 17179869184 bytes", err)
  end)
end)

describe("get and set", function()
  it("store any storable value and return it with its version", function()
    local d = dict()
    local values = { "text", "", "with\0zero", 42, -7, 1.5, true, false,
      { 1, 2, { x = "y" } }, { name = "alice", tags = { "a", "b" } }, string.rep("z", 5000) }
    for i, v in ipairs(values) do
      local ok, evicted = d:set("key" .. i, v)
      assert.is_true(ok)
      assert.equal(0, evicted)
    end
    for i, v in ipairs(values) do
      local got, ver = d:get("key" .. i)
      assert.is_true(util.deep_equal(v, got), "key" .. i)
      assert.equal(d:version("key" .. i), ver)
      assert.is_true(ver > 0)
    end
    assert.equal(#values, d:count())
  end)

  it("keep a table shared twice shared, and a cycle cyclic", function()
    local d = dict()
    local shared = { 1 }
    local t = { a = shared, b = shared }
    t.self = t
    assert(d:set("t", t))
    local got = d:get("t")
    assert.equal(got.a, got.b)
    assert.equal(got, got.self)
  end)

  it("return nil alone for an absent key", function()
    local d = dict()
    assert.equal(1, select("#", d:get("nope")))
    assert.is_nil(d:get("nope"))
  end)

  it("delete with a nil value; delete is true whether the key existed or not", function()
    local d = dict()
    assert(d:set("k", "v"))
    assert.same({ true, 0 }, { d:set("k", nil) })
    assert.is_nil(d:get("k"))
    assert(d:set("k", "v"))
    assert.is_true(d:delete("k"))
    assert.is_true(d:delete("k"))
    assert.equal(0, d:count())
  end)

  it("find an integral float under the integer key, as a Lua table does", function()
    local d = dict()
    assert(d:set(1.0, "one"))
    assert.equal("one", d:get(1))
    assert(d:set(2, "two"))
    assert.equal("two", d:get(2.0))
    assert(d:set(-0.0, "zero"))
    assert.equal("zero", d:get(0))
    assert(d:set(1.5, "one and a half"))
    assert.equal("one", d:get(1))
    assert.equal("one and a half", d:get(1.5))
    assert(d:set(true, "yes"))
    assert(d:set(false, "no"))
    assert(d:set("1", "string one"))
    assert.equal("yes", d:get(true))
    assert.equal("no", d:get(false))
    assert.equal("string one", d:get("1"))
    assert.equal(7, d:count())
    assert(d:set(2 ^ 63, "float beyond the integers"))
    assert.equal("float beyond the integers", d:get(2 ^ 63))
  end)

  it("take keys of any bytes, from 1 to 65,535 of them", function()
    local d = dict(1048576)
    local long = string.rep("\0\255", 32767) .. "x"
    assert.equal(65535, #long)
    assert(d:set(long, "long"))
    assert(d:set("\0", "zero"))
    assert.equal("long", d:get(long))
    assert.equal("zero", d:get("\0"))
  end)

  it("refuse a value that could not fit even an empty dictionary, changing nothing", function()
    local d, name = dict(16384)
    assert(d:set("k", "kept"))
    local ok, err, code = d:set("k", string.rep("x", 20000))
    assert.is_nil(ok)
    assert.equal(lxshm.INVALID_SIZE, code)
    assert.equal(name .. ": encoded value exceeds the limit of 15679 bytes", err)
    assert.equal("kept", d:get("k"))
    assert.same({ nil, name .. ": value at .f is a function", lxshm.UNSUPPORTED },
      { d:set("k", { f = print }) })
    assert.equal("kept", d:get("k"))
  end)
end)

describe("add, replace, cas", function()
  it("add only an absent key: else EXISTS", function()
    local d, name = dict()
    assert.same({ true, 0 }, { d:add("k", 1) })
    assert.same({ nil, name .. ": key exists", lxshm.EXISTS }, { d:add("k", 2) })
    assert.same({ nil, name .. ": key exists", lxshm.EXISTS }, { d:safe_add("k", 2) })
    assert.equal(1, d:get("k"))
    assert.same({ true, 0 }, { d:safe_add("j", 3) })
  end)

  it("replace only a present key: else NOT_FOUND", function()
    local d, name = dict()
    assert.same({ nil, name .. ": no such key", lxshm.NOT_FOUND }, { d:replace("k", 1) })
    assert.is_nil(d:get("k"))
    assert(d:set("k", 1))
    assert.same({ true, 0 }, { d:replace("k", 2) })
    assert.equal(2, d:get("k"))
  end)

  it("cas only the version given (0: absent) and return the new one: else CONFLICT", function()
    local d, name = dict()
    local ok, v1 = d:cas("k", 0, "first")
    assert.is_true(ok)
    assert.equal(d:version("k"), v1)
    local _, err, code = d:cas("k", 0, "again")
    assert.equal(lxshm.CONFLICT, code)
    assert.equal(("%s: the key's version is %d, not 0"):format(name, v1), err)
    local _, v2 = assert(d:cas("k", v1, "second"))
    assert.is_true(v2 ~= v1)
    _, _, code = d:cas("k", v1, "stale")
    assert.equal(lxshm.CONFLICT, code)
    assert.equal("second", d:get("k"))
    assert.same({ true, 0 }, { d:cas("k", v2, nil) }) -- deletes
    assert.is_nil(d:get("k"))
  end)

  it("give every change a new version, never used before, even after a delete", function()
    local d = dict()
    local seen = {}
    for i = 1, 50 do
      assert(d:set("k" .. i % 3, i))
      local v = d:version("k" .. i % 3)
      assert.is_nil(seen[v])
      seen[v] = true
      if i % 7 == 0 then
        assert(d:delete("k" .. i % 3))
        assert.equal(0, d:version("k" .. i % 3))
      end
    end
    local before = d:stat().version
    assert(d:set("other", 1))
    assert.is_true(d:stat().version > before)
  end)
end)

describe("incr", function()
  it("adds to a number; an absent key is NOT_FOUND without init", function()
    local d, name = dict()
    assert.same({ nil, name .. ": no such key", lxshm.NOT_FOUND }, { d:incr("n", 1) })
    assert.equal(11, d:incr("n", 1, 10))
    assert.equal(8, d:incr("n", -3))
    assert.equal(8, d:get("n"))
  end)

  it("keeps integers integers, wrapping as Lua does; anything else is a float", function()
    local d = dict()
    assert(d:set("i", 5))
    assert.equal(7, d:incr("i", 2))
    assert.equal(7.5, d:incr("i", 0.5))
    if util.HAS_INT then -- 5.3, 5.4: integers wrap around, as Lua's own do
      assert(d:set("big", math.maxinteger))
      assert.equal(math.mininteger, d:incr("big", 1))
      assert.equal("integer", math.type(d:incr("i2", 1, 0)))
      assert.equal("float", math.type(d:incr("f", 1, 0.0)))
    else -- 5.1, 5.2, LuaJIT: the dict still counts in 64-bit integers; Lua sees the nearest
      assert(d:set("big", 2 ^ 53)) -- double (doc/FORMAT.md, "Lua runtimes")
      assert.equal(2 ^ 53, d:incr("big", 1)) -- 2^53 + 1 is stored, 2^53 is what a double holds
      assert.equal(2 ^ 53 + 2, d:incr("big", 1)) -- exact again: the dict did not round
      assert.equal(1, d:incr("i2", 1, 0))
    end
  end)

  it("refuses a value that is not a number with INVALID, changing nothing", function()
    local d, name = dict()
    assert(d:set("s", "10"))
    assert(d:set("t", { 1 }))
    assert.same({ nil, name .. ": value is not a number", lxshm.INVALID }, { d:incr("s", 1) })
    assert.same({ nil, name .. ": value is not a number", lxshm.INVALID }, { d:incr("t", 1, 0) })
    assert.equal("10", d:get("s"))
  end)

  it("gives a key it creates the expiry init_ttl, and keeps an existing key's expiry", function()
    local d = dict()
    assert.equal(1, d:incr("n", 1, 0, 100))
    assert.is_true(d:ttl("n") > 99 and d:ttl("n") <= 100)
    assert.equal(2, d:incr("n", 1, 0))
    assert.is_true(d:ttl("n") > 99)
    assert.equal(1, d:incr("m", 1, 0))
    assert.equal(math.huge, d:ttl("m"))
  end)
end)

describe("update", function()
  it("stores and returns what fn returns from the current value (nil when absent)", function()
    local d = dict()
    local seen = {}
    assert.equal(1, d:update("n", function(v)
      seen[#seen + 1] = tostring(v)
      return (v or 0) + 1
    end))
    assert.equal(2, d:update("n", function(v)
      seen[#seen + 1] = tostring(v)
      return v + 1
    end))
    assert.same({ "nil", "1" }, seen)
    assert.equal(2, d:get("n"))
    assert.same({ a = 1 }, d:update("t", function() return { a = 1 } end))
  end)

  it("deletes the key when fn returns nil", function()
    local d = dict()
    assert(d:set("k", 1))
    assert.is_nil(d:update("k", function() return nil end))
    assert.is_nil(d:get("k"))
    assert.equal(0, d:count())
  end)

  it("changes nothing when fn raises, releases the lock and lets the error through", function()
    local d = dict()
    assert(d:set("k", "old"))
    assert.has_error(function()
      d:update("k", function() error("boom", 0) end)
    end, "boom")
    assert.equal("old", d:get("k"))
    assert(d:set("k", "next")) -- the lock is free
    assert.equal("next", d:get("k"))
  end)

  it("applies the ttl given to what it stores", function()
    local d = dict()
    d:update("k", function() return 1 end, 100)
    assert.is_true(d:ttl("k") > 99)
    d:update("k", function(v) return v + 1 end)
    assert.equal(math.huge, d:ttl("k"))
  end)

  it("raises for a change of the same dictionary from inside fn, through any handle", function()
    local d, name = dict()
    local other = assert(lxshm.open_dict(name))
    util.defer(function() other:close() end)
    assert(d:set("k", 1))
    assert(d:set("j", 1))
    local inside = name .. ": dict is locked by its own update in progress"
    local through = name .. ": cannot change a dictionary inside its own update"
    d:update("k", function(v)
      assert.equal(1, d:get("j")) -- reading is allowed
      assert.equal(1, other:get("k"))
      assert.has_error(function() d:set("j", 2) end, inside)
      assert.has_error(function() d:incr("j", 1) end, inside)
      assert.has_error(function() d:update("j", function() end) end, inside)
      assert.has_error(function() d:flush_all() end, inside)
      assert.has_error(function() d:close() end,
        name .. ": cannot close a dict inside its own update")
      assert.has_error(function() other:set("j", 2) end, through)
      assert.has_error(function() other:delete("j") end, through)
      return v + 1
    end)
    assert.equal(2, d:get("k"))
    assert.equal(1, d:get("j"))
    assert(other:set("j", 3)) -- allowed again once fn has returned
  end)

  it("lets fn change another dictionary", function()
    local d = dict()
    local e = dict()
    d:update("k", function()
      assert(e:set("k", "from inside"))
      return 1
    end)
    assert.equal("from inside", e:get("k"))
  end)
end)

describe("expiry", function()
  it("gives ttl() the seconds left, math.huge without expiry, NOT_FOUND when absent", function()
    local d, name = dict()
    assert(d:set("k", 1, 100))
    local left = d:ttl("k")
    assert.is_true(left > 99 and left <= 100)
    assert(d:set("n", 1))
    assert.equal(math.huge, d:ttl("n"))
    assert.same({ nil, name .. ": no such key", lxshm.NOT_FOUND }, { d:ttl("absent") })
  end)

  it("sets and removes a present key's expiry with expire(); NOT_FOUND when absent", function()
    local d, name = dict()
    assert(d:set("k", 1))
    assert.is_true(d:expire("k", 50))
    assert.is_true(d:ttl("k") <= 50)
    assert.is_true(d:expire("k", 0))
    assert.equal(math.huge, d:ttl("k"))
    assert(d:expire("k", 50))
    assert.is_true(d:expire("k"))
    assert.equal(math.huge, d:ttl("k"))
    assert.same({ nil, name .. ": no such key", lxshm.NOT_FOUND }, { d:expire("absent", 1) })
  end)

  it("makes an expired key absent to every method at once", function()
    local d = dict()
    local t0 = proc.now()
    assert(d:set("k", "short", 0.05))
    assert(d:set("long", "stays"))
    if proc.now() - t0 < 0.04 then -- the clock has not passed the TTL yet
      assert.equal("short", d:get("k"))
    end
    eventually(function() return d:get("k") == nil end, 5, "the key to expire")
    assert.is_true(proc.now() - t0 >= 0.05)
    assert.equal(0, d:version("k"))
    assert.equal(lxshm.NOT_FOUND, select(3, d:ttl("k")))
    assert.equal(lxshm.NOT_FOUND, select(3, d:replace("k", 1)))
    assert.equal(lxshm.NOT_FOUND, select(3, d:incr("k", 1)))
    assert.equal(lxshm.NOT_FOUND, select(3, d:expire("k", 1)))
    assert.equal(1, d:count())
    assert.same({ "long" }, d:keys())
    for k in d:pairs() do
      assert.equal("long", k)
    end
    assert.is_nil(d:update("k", function(v) return v end))
    assert.same({ true, 0 }, { d:add("k", "again") })
    assert.equal("again", d:get("k"))
  end)

  it("reclaims expired keys in flush_expired(max), up to max", function()
    local d = dict()
    for i = 1, 6 do
      assert(d:set("e" .. i, i, 0.01))
    end
    assert(d:set("live", 1))
    eventually(function() return d:count() == 1 end, 5, "the keys to expire")
    assert.equal(1, d:flush_expired(1))
    assert.equal(5, d:flush_expired())
    assert.equal(0, d:flush_expired())
    assert.equal(6, d:stat().expirations)
    assert.equal(1, d:count())
  end)

  it("wakes a wait on a key when the key expires", function()
    local d = dict()
    assert(d:set("k", 1, 0.05))
    local v = d:version("k")
    local t0 = proc.now()
    assert.equal(0, d:wait("k", v, 5 * util.SLOW))
    assert.is_true(proc.now() - t0 < 2 * util.SLOW)
  end)
end)

describe("memory", function()
  it("evicts the least recently used live keys when full, and says how many", function()
    local d = dict(65536)
    local value = string.rep("v", 1000)
    local n = 0
    while d:free_space() > 1100 do
      n = n + 1
      assert.same({ true, 0 }, { d:safe_set("k" .. n, value) })
    end
    for i = 2, n, 2 do -- read every other key
      assert.equal(value, d:get("k" .. i))
    end
    local evicted = 0
    for i = 1, math.floor(n / 4) do
      local ok, ev = d:set("new" .. i, value)
      assert.is_true(ok)
      evicted = evicted + ev
    end
    assert.is_true(evicted >= math.floor(n / 4) - 1)
    assert.equal(evicted, d:stat().evictions)
    for i = 2, n, 2 do
      assert.is_true(d:version("k" .. i) ~= 0, "k" .. i .. " was read, yet evicted")
    end
    assert.is_true(d:check())
  end)

  it("reclaims expired keys before it evicts a live one", function()
    local d = dict(65536)
    local value = string.rep("v", 1000)
    local n = 0
    while d:free_space() > 1100 do
      n = n + 1
      assert(d:safe_set("k" .. n, value))
    end
    for i = 3, n, 3 do -- after the fill: free_space() reclaims expired keys
      assert(d:expire("k" .. i, 0.01))
    end
    eventually(function()
      for i = 3, n, 3 do
        if d:version("k" .. i) ~= 0 then
          return false
        end
      end
      return true
    end, 5, "every short TTL to run out")
    for i = 1, math.floor(n / 3) do
      assert.same({ true, 0 }, { d:set("new" .. i, value) })
    end
    for i = 1, n do
      if i % 3 ~= 0 then
        assert.is_true(d:version("k" .. i) ~= 0, "live key k" .. i .. " evicted")
      end
    end
    assert.equal(0, d:stat().evictions)
  end)

  it("refuses with FULL, in safe_set and safe_add, to evict a live key", function()
    local d, name = dict(16384)
    local n = 0
    while d:free_space() > 600 do
      n = n + 1
      assert(d:safe_set("k" .. n, string.rep("v", 500)))
    end
    local ok, err, code = d:safe_set("more", string.rep("v", 1000))
    assert.is_nil(ok)
    assert.equal(lxshm.FULL, code)
    assert.equal(name .. ": no room for a key and value of 1007 bytes without evicting", err)
    assert.equal(lxshm.FULL, select(3, d:safe_add("more", string.rep("v", 1000))))
    assert.is_nil(d:get("more"))
    assert.equal(n, d:count())
  end)

  it("tells the truth in free_space(): a key and value of that size fit without evicting",
    function()
      local d = dict(262144)
      local keys = {}
      for i = 1, 150 do -- fill with values of many sizes
        keys[i] = "fill" .. i
        assert(d:safe_set(keys[i], string.rep("x", (i * 997) % 1500)))
      end
      for i = 1, 100 do
        local victim = (i * 37) % #keys + 1
        assert(d:delete(keys[victim]))
        local free = d:free_space()
        local key = ("fit%05d"):format(i)
        keys[victim] = key
        if free > #key + 1 then
          assert.same({ true, 0 }, { d:safe_set(key, string.rep("y", encodable(free - #key))) })
          assert.is_true(d:free_space() < free)
        end
      end
      assert.is_true(d:check())
    end)

  it("gives all its memory back in flush_all()", function()
    local d, name = dict(262144)
    local fresh = d:free_space()
    for i = 1, 500 do
      assert(d:set(i, string.rep("x", i)))
    end
    assert.is_true(d:free_space() < fresh)
    assert.is_true(d:flush_all())
    assert.equal(0, d:count())
    assert.equal(fresh, d:free_space())
    local st = d:stat()
    assert.equal(name, st.name)
    assert.equal(262144, st.capacity)
    assert.is_true(d:check())
  end)

  it("reports its state in stat()", function()
    local d, name = dict(65536)
    assert(d:set("a", 1))
    assert(d:set("b", 2))
    local st = d:stat()
    assert.equal(name, st.name)
    assert.equal(65536, st.capacity)
    assert.equal(2, st.count)
    assert.equal(0, st.evictions)
    assert.equal(0, st.expirations)
    assert.equal(2, st.version)
    assert.equal(0, st.waiters)
    assert.equal(d:free_space(), st.free)
    assert.is_true(st.used > 0 and st.used < 65536)
  end)
end)

--- The longest string that encodes in at most n bytes (str8/16/32 headers of 2, 3, 5 bytes).
encodable = function(n)
  for _, h in ipairs({ 5, 3, 2, 1 }) do
    local len = n - h
    local need = len < 32 and 1 or len < 256 and 2 or len < 65536 and 3 or 5
    if need == h then
      return len
    end
  end
  return 0
end

describe("walking", function()
  it("lists the present keys in keys(), up to max", function()
    local d = dict()
    local want = {}
    for i = 1, 100 do
      assert(d:set("k" .. i, i))
      want["k" .. i] = true
    end
    local got = {}
    for _, k in ipairs(d:keys()) do
      assert.is_true(want[k])
      assert.is_nil(got[k])
      got[k] = true
    end
    assert.equal(100, #d:keys())
    assert.equal(10, #d:keys(10))
    assert.equal(0, #d:keys(0))
  end)

  it("walks every pair once with pairs(), values decoded, keys of every type", function()
    local d = dict(1048576)
    local want = { [1] = "one", [2.5] = "two and a half", [true] = "yes", s = { t = 1 } }
    for i = 1, 3000 do
      want["k" .. i] = i
    end
    for k, v in pairs(want) do
      assert(d:set(k, v))
    end
    local got, n = {}, 0
    for k, v in d:pairs() do
      assert.is_nil(got[k], tostring(k))
      got[k] = v
      n = n + 1
    end
    assert.equal(3004, n)
    assert.is_true(util.deep_equal(want, got))
  end)

  it("returns keys present and unchanged throughout a walk exactly once, while others change",
    function()
      local d = dict(1048576)
      for i = 1, 2000 do
        assert(d:set("stable" .. i, i))
      end
      local got, n = {}, 0
      for k in d:pairs() do
        n = n + 1
        assert.is_nil(got[k], k)
        got[k] = true
        assert(d:set("churn" .. n, n)) -- the walk goes on while the dictionary changes
        if n % 5 == 0 then
          assert(d:delete("churn" .. (n - 3)))
        end
      end
      for i = 1, 2000 do
        assert.is_true(got["stable" .. i], "stable" .. i)
      end
    end)

  it("ends a walk whose handle was closed with an error", function()
    local d = dict()
    for i = 1, 10 do
      assert(d:set(i, i))
    end
    local iter = d:pairs()
    d:close()
    assert.has_error(function() iter() end, "attempt to use a closed lxshm dict")
  end)
end)

describe("handles", function()
  it("close idempotently; a closed handle raises", function()
    local name = util.name("close")
    local d = assert(lxshm.create_dict(name, 16384))
    util.defer(function() lxshm.remove(name) end)
    d:close()
    d:close()
    assert.equal("lxshm.dict: " .. name .. " (closed)", tostring(d))
    for _, call in ipairs({
      function() return d:get("k") end, function() return d:set("k", 1) end,
      function() return d:count() end, function() return d:stat() end,
      function() return d:pairs() end, function() return d:check() end,
    }) do
      assert.has_error(call, "attempt to use a closed lxshm dict")
    end
  end)

  it("are closed by <close> on Lua 5.4", function()
    if _VERSION ~= "Lua 5.4" then
      return
    end
    local name = util.name("close")
    util.defer(function() lxshm.remove(name) end)
    local escaped = load([[
      local lxshm, name = ...
      local d <close> = assert(lxshm.create_dict(name, 16384))
      return d
    ]])(lxshm, name)
    assert.equal("lxshm.dict: " .. name .. " (closed)", tostring(escaped))
  end)

  it("read, but cannot change, when opened read-only", function()
    local d, name = dict()
    assert(d:set("k", "v"))
    local ro = assert(lxshm.open_dict(name, { readonly = true }))
    util.defer(function() ro:close() end)
    assert.equal("v", ro:get("k"))
    assert.equal(1, ro:count())
    assert.same({ "k" }, ro:keys())
    local ok, err, code = ro:set("k", "w")
    assert.is_nil(ok)
    assert.equal(lxshm.PERMISSION, code)
    assert.equal(name .. ": opened read-only", err)
    assert.equal(lxshm.PERMISSION, select(3, ro:check()))
    assert.equal("v", d:get("k"))
  end)
end)

describe("bad input", function()
  -- No tail calls below: LuaJIT cannot name a function called in a tail call.
  local function methods_with_key(d)
    return {
      get = function(k) local r = { d:get(k) } return r[1], r[2], r[3] end,
      set = function(k) local r = { d:set(k, 1) } return r[1], r[2], r[3] end,
      safe_set = function(k) local r = { d:safe_set(k, 1) } return r[1], r[2], r[3] end,
      add = function(k) local r = { d:add(k, 1) } return r[1], r[2], r[3] end,
      safe_add = function(k) local r = { d:safe_add(k, 1) } return r[1], r[2], r[3] end,
      replace = function(k) local r = { d:replace(k, 1) } return r[1], r[2], r[3] end,
      cas = function(k) local r = { d:cas(k, 0, 1) } return r[1], r[2], r[3] end,
      delete = function(k) local r = { d:delete(k) } return r[1], r[2], r[3] end,
      incr = function(k) local r = { d:incr(k, 1, 0) } return r[1], r[2], r[3] end,
      update = function(k)
        local r = { d:update(k, function() return 1 end) }
        return r[1], r[2], r[3]
      end,
      version = function(k) local r = { d:version(k) } return r[1], r[2], r[3] end,
      wait = function(k) local r = { d:wait(k, 0, 0) } return r[1], r[2], r[3] end,
      ttl = function(k) local r = { d:ttl(k) } return r[1], r[2], r[3] end,
      expire = function(k) local r = { d:expire(k, 1) } return r[1], r[2], r[3] end,
    }
  end

  it("raises for nil, NaN and keys of other types, in every method, changing nothing", function()
    local d = dict()
    assert(d:set("k", "kept"))
    for method, call in pairs(methods_with_key(d)) do
      local prefix = "bad argument #1 to '" .. method .. "' "
      assert.has_error(function() call(nil) end,
        prefix .. "(key expected (string, number or boolean), got nil)")
      assert.has_error(function() call(0 / 0) end, prefix .. "(key is NaN)")
      assert.has_error(function() call({}) end,
        prefix .. "(key expected (string, number or boolean), got table)")
      assert.has_error(function() call(print) end,
        prefix .. "(key expected (string, number or boolean), got function)")
    end
    assert.equal("kept", d:get("k"))
    assert.equal(1, d:count())
  end)

  it("refuses empty keys and keys of 65,536 bytes with INVALID_SIZE, in every method", function()
    local d, name = dict(1048576)
    for method, call in pairs(methods_with_key(d)) do
      for _, key in ipairs({ "", string.rep("k", 65536) }) do
        local r, err, code = call(key)
        assert.is_nil(r, method)
        assert.equal(lxshm.INVALID_SIZE, code, method)
        assert.equal(("%s: key of %d bytes: keys are 1 to 65535 bytes"):format(name, #key), err)
      end
    end
    assert.equal(0, d:count())
  end)

  it("raises for a negative or NaN ttl, and a ttl that is not a number", function()
    local d = dict()
    for _, case in ipairs({
      { "set", function(t) local r = { d:set("k", 1, t) } return r[1] end, 3 },
      { "safe_set", function(t) local r = { d:safe_set("k", 1, t) } return r[1] end, 3 },
      { "add", function(t) local r = { d:add("k", 1, t) } return r[1] end, 3 },
      { "safe_add", function(t) local r = { d:safe_add("k", 1, t) } return r[1] end, 3 },
      { "replace", function(t) local r = { d:replace("k", 1, t) } return r[1] end, 3 },
      { "cas", function(t) local r = { d:cas("k", 0, 1, t) } return r[1] end, 4 },
      { "incr", function(t) local r = { d:incr("k", 1, 0, t) } return r[1] end, 4 },
      { "update", function(t)
        local r = { d:update("k", function() return 1 end, t) }
        return r[1]
      end, 3 },
      { "expire", function(t) local r = { d:expire("k", t) } return r[1] end, 2 },
    }) do
      local prefix = ("bad argument #%d to '%s' "):format(case[3], case[1])
      assert.has_error(function() case[2](-1) end,
        prefix .. "(ttl must be a number of seconds >= 0)")
      assert.has_error(function() case[2](0 / 0) end,
        prefix .. "(ttl must be a number of seconds >= 0)")
      assert.has_error(function() case[2]({}) end, prefix .. "(number expected, got table)")
    end
    assert.equal(0, d:count())
  end)

  it("raises for arguments of the wrong type in the other methods", function()
    local d = dict()
    assert.has_error(function() d:incr("k", "x") end,
      "bad argument #2 to 'incr' (number expected, got string)")
    assert.has_error(function() d:incr("k", 1, {}) end,
      "bad argument #3 to 'incr' (number expected, got table)")
    assert.has_error(function() d:cas("k", "v", 1) end,
      "bad argument #2 to 'cas' (number expected, got string)")
    assert.has_error(function() d:cas("k", -1, 1) end,
      "bad argument #2 to 'cas' (version must be >= 0)")
    assert.has_error(function() d:wait("k") end,
      "bad argument #2 to 'wait' (number expected, got no value)")
    assert.has_error(function() d:wait("k", 0, -1) end,
      "bad argument #3 to 'wait' (timeout must be a number of seconds >= 0)")
    assert.has_error(function() d:update("k", 1) end,
      "bad argument #2 to 'update' (function expected, got number)")
    assert.has_error(function() d:keys("x") end,
      "bad argument #1 to 'keys' (number expected, got string)")
    assert.has_error(function() d:flush_expired(-1) end,
      "bad argument #1 to 'flush_expired' (must be >= 0)")
  end)

  it("refuses an object of another kind as self", function()
    local seg = util.segment(64)
    local methods = getmetatable(dict()).__index
    for _, m in ipairs({ "get", "set", "count", "pairs", "stat", "check" }) do
      assert.has_error(function() methods[m](seg, "k", 1) end,
        "bad argument #1 to '?' (lxshm.dict expected, got "
        .. (_VERSION >= "Lua 5.3" and "lxshm.segment" or "userdata") .. ")") -- __name: 5.3+
    end
  end)
end)

describe("across processes", function()
  it("lets another process read what one stored, and see it change", function()
    local d, name = dict()
    assert(d:set("t", { a = 1, b = "two" }))
    assert.equal("a=1,b=two", child("get", name, "t"):finish())
    child("set", name, "s", "from the child"):finish()
    assert.equal("from the child", d:get("s"))
  end)

  it("counts exactly 4,000 from 4 processes incrementing 1,000 times each", function()
    local d, name = dict()
    local gate = util.gate()
    local kids = {}
    for i = 1, 4 do
      kids[i] = child("incr", name, "n", 1000, gate)
    end
    for _, c in ipairs(kids) do
      c:await("ready")
    end
    util.open_gate(gate)
    for _, c in ipairs(kids) do
      c:finish(60)
    end
    assert.equal(4000, d:get("n"))
  end)

  it("loses no update in a compare-and-set race between 4 processes", function()
    local d, name = dict()
    local gate = util.gate()
    local kids = {}
    for i = 1, 4 do
      kids[i] = child("cas", name, "c", 300, gate)
    end
    for _, c in ipairs(kids) do
      c:await("ready")
    end
    util.open_gate(gate)
    local conflicts = 0
    for _, c in ipairs(kids) do
      conflicts = conflicts + tonumber(c:finish(60):match("(%d+)$"))
    end
    assert.equal(1200, d:get("c"))
    assert.is_true(d:check())
    assert.is_true(conflicts >= 0)
  end)

  it("creates the dictionary exactly once when processes attach at once", function()
    local name = util.name("attach")
    util.defer(function() lxshm.remove(name) end)
    local gate = util.gate()
    local kids = {}
    for i = 1, 4 do
      kids[i] = child("attach", name, 16384 * i, gate)
    end
    for _, c in ipairs(kids) do
      c:await("ready")
    end
    util.open_gate(gate)
    local sizes, distinct = {}, 0
    for _, c in ipairs(kids) do
      local size = c:finish()
      if not sizes[size] then
        sizes[size] = true
        distinct = distinct + 1
      end
    end
    assert.equal(1, distinct) -- one creator's size, seen by all
    local d = assert(lxshm.open_dict(name))
    assert.equal(4, d:count())
    d:close()
  end)

  it("wakes a waiter for a change of its key, not for good for other keys", function()
    local d, name = dict(16384) -- one stripe: every change wakes the waiter
    assert(d:set("w", 0))
    local v = d:version("w")
    local waiter = child("wait", name, "w", v, 30)
    waiter:await("waiting")
    eventually(function() return d:stat().waiters == 1 end, 10, "the waiter to sleep")
    for i = 1, 50 do
      assert(d:set("other" .. i, i))
    end
    proc.sleep(0.05) -- time for a wrong wake-up to end the wait
    assert.is_nil(proc.wait(waiter.pid, 0), "the waiter returned on another key's change")
    assert(d:set("w", 1))
    assert.equal("waiting\n" .. d:version("w"), waiter:finish(10))
  end)

  it("times a wait out with TIMEOUT", function()
    local d, name = dict()
    assert(d:set("w", 0))
    local ok, err, code = d:wait("w", d:version("w"), 0.02)
    assert.is_nil(ok)
    assert.equal(lxshm.TIMEOUT, code)
    assert.equal(name .. ": no new version within 0.02 s", err)
    assert.equal(d:version("w"), d:wait("w", 12345, 0))
  end)

  it("makes a change of the key in update wait until fn returns", function()
    local d, name = dict(16384)
    local gate = util.gate()
    local holder = child("update_gate", name, "k", gate)
    holder:await("locked")
    local setter = child("set_after", name, "k", "from set")
    setter:await("setting")
    proc.sleep(0.05) -- time for a wrong set to get through
    assert.is_false(setter:said("set"))
    util.open_gate(gate)
    holder:finish(10)
    setter:finish(10)
    assert.equal("from set", d:get("k"))
  end)

  it("lets others go on when a process is killed inside update's fn: the key is unchanged",
    function()
      local d, name = dict()
      assert(d:set("k", "old"))
      local holder = child("update_hold", name, "k")
      holder:await("locked")
      holder:kill()
      holder:wait()
      assert.equal("old", d:get("k"))
      assert(d:set("k", "new"))
      assert.equal("new", d:get("k"))
      assert.is_true(d:check())
    end)
end)
