--- One conformance suite, every backend: the specs in spec/conformance/ (segments, queues,
-- dictionaries, topics) run through a namespace from lxshm.connect(URL), against
--   shm:           this machine's shared memory,
--   redis          a throw-away redis-server on a Unix socket,
--   redis cluster  a throw-away three-node Redis Cluster on loopback ports,
-- each server started here and stopped when its block ends. Where a backend differs by design,
-- the specs assert what README says about it (b.redis tells them which). Without the Redis
-- backend (no hiredis at build time), the Redis blocks are replaced by one test asserting what
-- connect says instead: never skipped silently.
local lxshm = require("lxshm")
local util = require("util")
local servers = require("redis_server")

-- Loads spec/conformance/KIND.lua with this file's environment (busted's describe, it, assert).
local function suite(kind)
  local path = "spec/conformance/" .. kind .. ".lua"
  local chunk, err
  if rawget(_G, "setfenv") then -- Lua 5.1, LuaJIT
    chunk, err = loadfile(path)
    if chunk then
      _G.setfenv(chunk, _G.getfenv(1))
    end
  else
    chunk, err = loadfile(path, "t", _ENV) -- luacheck: ignore 113 (5.2+ only, as this branch)
  end
  return assert(chunk, err)()
end

after_each(util.cleanup)

local kinds = { "segment", "queue", "dict", "topic" }

-- The backends: label, whether it is Redis, how to start and stop its server.
local backends = {
  { label = "shm:", start = function() return { url = "shm:", stop = function() end } end },
  { label = "redis", redis = true, start = servers.single },
  { label = "redis cluster", redis = true, cluster = true, start = servers.cluster },
}

local have_redis = servers.backend()

for _, backend in ipairs(backends) do
  describe("on " .. backend.label, function()
    if backend.redis and not have_redis then
      it("connect says how to get the Redis backend", function()
        local ns, msg, code = lxshm.connect("redis://127.0.0.1:6379")
        assert.is_nil(ns)
        assert.equal(lxshm.UNSUPPORTED, code)
        assert.matches("libhiredis%-dev", msg)
      end)
      return
    end
    local b = { label = backend.label, redis = backend.redis or false,
      cluster = backend.cluster or false }

    lazy_setup(function()
      b.server = backend.start()
      b.url = b.server.url
      b.ns = assert(lxshm.connect(b.url))
    end)

    lazy_teardown(function()
      if b.ns then
        b.ns:close()
      end
      if b.server then
        b.server:stop()
      end
    end)

    --- Asserts that a call's results are nil, msg, code: b.refuses(code, msg, call(...)).
    -- msg nil: any message; a string starting with "~": a Lua pattern the message must match.
    function b.refuses(code, msg, ok, err, got)
      assert.is_nil(ok, "expected a failure, got " .. tostring(ok))
      assert.equal(code, got, err)
      if msg and msg:sub(1, 1) == "~" then
        assert.matches(msg:sub(2), err)
      elseif msg then
        assert.equal(msg, err)
      end
    end

    --- The shared corpus, on every runtime (bench/load_corpus.lua).
    b.corpus = util.corpus

    --- Deep equality as the codec keeps values (util.deep_equal: math.type where Lua has it,
    -- NaN, -0.0, shared tables), on every runtime.
    b.same = util.deep_equal

    --- A fresh name, its object removed when the test ends.
    function b.name(tag)
      local name = util.name(tag)
      util.defer(function() b.ns:remove(name) end)
      return name
    end

    --- Starts ns_child.lua COMMAND with this backend's URL; killed when the test ends.
    function b.child(command, ...)
      local c = util.spawn_script("spec/helpers/ns_child.lua", command, b.url, ...)
      util.defer(function() c:cleanup() end)
      return c
    end

    for _, kind in ipairs(kinds) do
      suite(kind)(b)
    end

    -- Found on Redis: a method that ran Lua code (a finalizer while it allocated) which closed
    -- its handle went on with the connections the close had let go of, and crashed; the local
    -- dictionary's keys and update crashed the same way on the mapping. In a child, which would
    -- die of it; the ASan pass reads the rest.
    it("a handle closed by a finalizer inside its own methods: a result or a raise, no crash",
      function()
        for _, kind in ipairs(kinds) do
          local out = b.child("closing_gc", b.name("gc" .. kind), kind, 16):finish(120)
          local returned, raised = out:match("^returned (%d+) raised (%d+)\n$")
          assert.is_truthy(returned, kind .. ": " .. out)
          -- 16 rounds of at least 5 methods, each returning or raising "closed"
          assert.is_true(tonumber(returned) + tonumber(raised) >= 16 * 5, kind .. ": " .. out)
        end
      end)

    -- Redis's constructors and list went on with a namespace that a finalizer had freed.
    it("a namespace closed by a finalizer inside its constructors and list: no crash", function()
      local name = util.name("nsgc")
      for _, suffix in ipairs({ "", "_queue", "_dict", "_topic" }) do
        util.defer(function() b.ns:remove(name .. suffix) end)
      end
      local out = b.child("closing_ns_gc", name, 64):finish(120)
      local returned, raised = out:match("^returned (%d+) raised (%d+)\n$")
      assert.is_truthy(returned, out)
      assert.equal(64, tonumber(returned) + tonumber(raised), out)
    end)

    -- Redis went on after the hook's close with the connections let go of, and crashed.
    it("a handle closed by a hook while its call blocks: the call returns, later calls raise",
      function()
        for _, kind in ipairs(kinds) do
          local out = b.child("hook_close", b.name("hook" .. kind), kind):finish(30)
          local code = out:match("^(%u+) fired true\nattempt to use a closed lxshm " .. kind
            .. "\n$")
          assert.is_truthy(code, kind .. ": " .. out)
          -- shm: the call runs to its timeout; Redis: its next command finds the handle
          -- closed (nil, "closed during the call", INVALID), unless its time was up first
          assert.is_true(code == "TIMEOUT" or b.redis and code == "INVALID", kind .. ": " .. out)
        end
      end)
  end)
end
