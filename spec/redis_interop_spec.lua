--- Values lxshm stores in Redis are the same MessagePack bytes as lxshm.encode makes, readable
-- by another program straight from the keys: Debian's python3-msgpack, through
-- spec/helpers/redis_peer.py (a few lines of RESP). One test per kind, and Python writing a
-- segment's value that lxshm then reads. Missing python3-msgpack or the Redis backend is a
-- failure with a clear message (or, without the backend, the UNSUPPORTED answer), never a skip.
local lxshm = require("lxshm")
local util = require("util")
local servers = require("redis_server")

after_each(util.cleanup)

local PYTHON = os.getenv("LXSHM_TEST_PYTHON") or "/usr/bin/python3"

-- Deep equality as the codec keeps values (integers apart from floats where Lua tells them
-- apart), on every runtime.
local same = util.deep_equal

-- The shared corpus, on every runtime (bench/load_corpus.lua).
local corpus = util.corpus

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

if not servers.backend() then
  describe("Redis interop", function()
    it("needs the Redis backend: connect says how to get it", function()
      local _, msg, code = lxshm.connect("redis+unix:///nonexistent")
      assert.equal(lxshm.UNSUPPORTED, code)
      assert.matches("libhiredis%-dev", msg)
    end)
  end)
  return
end

describe("values in Redis, read by python3-msgpack from the raw keys", function()
  local server, ns

  lazy_setup(function()
    server = servers.single()
    ns = assert(lxshm.connect(server.url))
  end)

  lazy_teardown(function()
    ns:close()
    server:stop()
  end)

  -- Runs the peer; returns a list of { hex = bytes in hex, text = describe() } per value.
  local function peer(...)
    local out = os.tmpname()
    local cmd = "LD_PRELOAD= " .. q(PYTHON) .. " spec/helpers/redis_peer.py " .. q(server.sock)
    for _, a in ipairs({ ... }) do
      cmd = cmd .. " " .. q(a)
    end
    local r, how, code = os.execute(cmd .. " > " .. q(out) .. " 2>&1")
    local text = util.slurp(out)
    os.remove(out)
    if type(r) == "number" then -- Lua 5.1 and LuaJIT: the status alone
      how, code = "exit", r
    end
    if how ~= "exit" or code ~= 0 then
      error(("%s failed (%s %s): %s"):format(cmd, tostring(how), tostring(code), text), 2)
    end
    local list = {}
    for hex, desc in text:gmatch("(%x*)\t([^\n]*)\n") do
      list[#list + 1] = { hex = hex, text = desc }
    end
    return list
  end

  local function hex(s)
    return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
  end

  -- Integers, floats (1.0 stays a float where Lua tells them apart: 5.3 and later; elsewhere it
  -- is the integer 1), -0.0, text, bytes, a table. ("\195\169" is é in UTF-8: Lua 5.1 reads no
  -- \x escapes.)
  local sample = { 1, 1.0, 1.5, util.NEG_ZERO, 4294967296, "h\195\169llo", "\255\000", true,
    { a = 1, [2] = "x" } }
  local sample_text = "[int:1, " .. (util.HAS_INT and "float:1.0" or "int:1")
    .. ", float:1.5, float:-0.0, int:4294967296, str:'héllo', bin:ff00, true, "
    .. "{int:2=str:'x', str:'a'=int:1}]"

  local function named(tag)
    local name = util.name(tag)
    util.defer(function() ns:remove(name) end)
    return name
  end

  it("a segment's value: every corpus item, byte for byte", function()
    local name = named("iseg")
    local seg = assert(ns:create(name, 2097152))
    for _, item in ipairs(corpus()) do
      assert(seg:put(item.value))
      local got = peer("lxshm:" .. name, "segment")
      assert.equal(1, #got)
      assert.equal(hex(lxshm.encode(item.value)), got[1].hex, item.name)
    end
    assert(seg:put(sample))
    assert.equal(sample_text, peer("lxshm:" .. name, "segment")[1].text)
    seg:close()
  end)

  it("a queue's values, oldest first", function()
    local name = named("iq")
    local qu = assert(ns:create_queue(name, 65536))
    assert(qu:push_many({ sample, "second", 3 }))
    local got = peer("lxshm:" .. name, "queue")
    assert.equal(3, #got)
    assert.equal(sample_text, got[1].text)
    assert.equal("str:'second'", got[2].text)
    assert.equal("int:3", got[3].text)
    qu:close()
  end)

  it("a dictionary key's value", function()
    local name = named("id")
    local d = assert(ns:create_dict(name, 65536))
    assert(d:set("cfg", sample))
    assert(d:set(7, "seven"))
    assert.equal(sample_text, peer("lxshm:" .. name, "dict", "s:cfg")[1].text)
    assert.equal("str:'seven'", peer("lxshm:" .. name, "dict", "i:7")[1].text)
    assert.equal(hex(lxshm.encode(sample)), peer("lxshm:" .. name, "dict", "s:cfg")[1].hex)
    d:close()
  end)

  it("a topic's messages", function()
    local name = named("it")
    local t = assert(ns:create_topic(name, 65536))
    assert(t:publish_many({ sample, { n = 2 } }))
    local got = peer("lxshm:" .. name, "topic")
    assert.equal(2, #got)
    assert.equal(sample_text, got[1].text)
    assert.equal("{str:'n'=int:2}", got[2].text)
    t:close()
  end)

  it("lxshm reads what Python writes into a segment, as the next version", function()
    local name = named("iw")
    local seg = assert(ns:create(name, 2097152))
    for _, item in ipairs(corpus()) do
      assert(seg:put(item.value))
      local before = seg:version()
      peer("lxshm:" .. name, "put-segment")
      assert.equal(before + 1, seg:version())
      assert.is_true(same(item.value, seg:get()), item.name)
    end
    seg:close()
  end)

  it("values through Redis are the values through shared memory", function()
    local shm = lxshm.connect("shm:")
    local name = named("both")
    local remote = assert(ns:create(name, 2097152))
    local here = assert(shm:create(name, 2097152))
    util.defer(function()
      here:close()
      lxshm.remove(name)
    end)
    for _, item in ipairs(corpus()) do
      assert(remote:put(item.value))
      assert(here:put(item.value))
      assert.equal(here:read(), remote:read(), item.name)
    end
    remote:close()
  end)
end)
