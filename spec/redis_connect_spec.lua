--- lxshm.connect: the URLs it takes, its options, what it raises for and what it returns, the
-- namespace's own methods, and what happens without the Redis backend.
local lxshm = require("lxshm")
local util = require("util")
local servers = require("redis_server")

after_each(util.cleanup)

describe("lxshm.connect", function()
  it("shm: is this machine's namespace, whose methods are the module's constructors", function()
    local ns = lxshm.connect("shm:")
    assert.equal(ns, lxshm.connect("shm:"))
    assert.equal("lxshm.namespace: shm:", tostring(ns))
    assert.equal("shm:", ns:url())
    assert.is_false(ns:cluster())
    local name = util.name("ns")
    local seg = assert(ns:create(name, 16))
    assert.equal("lxshm.segment", getmetatable(seg).__name)
    assert(seg:write("local"))
    assert.equal("local", assert(lxshm.open(name)):read())
    seg:close()
    assert.is_true(ns:remove(name))
    assert.has_error(function() ns:create({}, 1) end,
      "bad argument #1 to 'create' (string expected, got table)")
    assert.has_error(function() ns:open_queue(true) end,
      "bad argument #1 to 'open_queue' (string expected, got boolean)")
  end)

  it("raises for arguments of the wrong type", function()
    for _, case in ipairs({
      { function() lxshm.connect() end,
        "bad argument #1 to 'connect' (string expected, got no value)" },
      { function() lxshm.connect(6379) end,
        "bad argument #1 to 'connect' (string expected, got number)" },
      { function() lxshm.connect("shm:", 5) end,
        "bad argument #2 to 'connect' (table expected, got number)" },
      { function() lxshm.connect("shm:", { prefix = "x" }) end,
        "bad argument #2 to 'connect' (shm: takes no options)" },
    }) do
      assert.has_error(case[1], case[2])
    end
  end)

  it("returns INVALID for a URL it does not know", function()
    for _, url in ipairs({ "", "shm", "http://x", "redis:/x", "unix:///tmp/s" }) do
      local ns, msg, code = lxshm.connect(url)
      assert.is_nil(ns)
      assert.equal(lxshm.INVALID, code)
      assert.equal(("connect: unsupported URL %q: use shm:, redis://HOST:PORT[/DB] or "
        .. "redis+unix:///PATH[?db=N]"):format(url), msg)
    end
  end)

  if not servers.backend() then
    it("without the Redis backend returns UNSUPPORTED, saying how to get it", function()
      local ns, msg, code = lxshm.connect("redis://127.0.0.1:6379")
      assert.is_nil(ns)
      assert.equal(lxshm.UNSUPPORTED, code)
      assert.equal("connect: the Redis backend (lxshm.redis) is not installed: install "
        .. "libhiredis-dev (sudo apt-get install -y libhiredis-dev) and build again (make)", msg)
    end)
    return
  end

  it("without the Redis backend returns UNSUPPORTED, saying how to get it", function()
    -- a child whose package.cpath has lxshm.core but not lxshm.redis
    local dir = os.tmpname()
    os.remove(dir)
    assert(util.execute(("mkdir -p %s/lxshm && cp %s %s/lxshm/"):format(dir,
      util.searchpath("lxshm.core", package.cpath), dir)))
    util.defer(function() os.execute("rm -rf " .. dir) end)
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      package.cpath = ]] .. ("%q"):format(dir .. "/?.so;" .. package.cpath:gsub(
        "[^;]*build[^;]*;?", "")) .. [[
      local lxshm = require("lxshm")
      print((select(2, lxshm.connect("redis://127.0.0.1:6379"))))
      print((select(3, lxshm.connect("redis+unix:///x"))))
    ]])
    f:close()
    util.defer(function() os.remove(script) end)
    local out = util.spawn_script(script)
    util.defer(function() out:cleanup() end)
    local text = out:finish()
    assert.equal("connect: the Redis backend (lxshm.redis) is not installed: install "
      .. "libhiredis-dev (sudo apt-get install -y libhiredis-dev) and build again (make)\n"
      .. lxshm.UNSUPPORTED .. "\n", text)
  end)

  describe("to Redis", function()
    local server

    lazy_setup(function()
      server = servers.single()
    end)

    lazy_teardown(function()
      server:stop()
    end)

    it("returns INVALID for a malformed Redis URL", function()
      for _, url in ipairs({ "redis://", "redis://:1", "redis://h:0", "redis://h:99999",
        "redis://h:x", "redis://h/x", "redis://[::1", "redis+unix://", "redis+unix://rel/path",
        "redis+unix:///p?x=1", "redis+unix:///p?db=" }) do
        local ns, msg, code = lxshm.connect(url)
        assert.is_nil(ns, url)
        assert.equal(lxshm.INVALID, code, url)
        assert.matches("^connect: bad URL", msg)
      end
    end)

    it("raises for bad options, naming them", function()
      local url = server.url
      for _, case in ipairs({
        { { bogus = 1 }, "unknown option 'bogus'" },
        { { password = 1 }, "option 'password' must be a string" },
        { { prefix = 1 }, "option 'prefix' must be a string" },
        { { prefix = "a b" }, "option 'prefix' must be printable, without spaces or braces" },
        { { prefix = "a{b" }, "option 'prefix' must be printable, without spaces or braces" },
        { { prefix = string.rep("p", 65) }, "option 'prefix' is longer than 64 bytes" },
        { { timeout = 0 }, "option 'timeout' must be a number of seconds > 0" },
        { { timeout = -1 }, "option 'timeout' must be a number of seconds > 0" },
        { { timeout = "5" }, "option 'timeout' must be a number of seconds > 0" },
        { { cluster = "yes" }, "option 'cluster' must be a boolean" },
      }) do
        assert.has_error(function() lxshm.connect(url, case[1]) end,
          "bad argument #2 to 'connect' (" .. case[2] .. ")")
      end
    end)

    it("gives a namespace with every constructor, remove, url, cluster and close", function()
      local ns = assert(lxshm.connect(server.url))
      assert.equal("lxshm.namespace: " .. server.url, tostring(ns))
      assert.equal(server.url, ns:url())
      assert.is_false(ns:cluster())
      for _, m in ipairs({ "create", "open", "attach", "remove", "create_queue", "open_queue",
        "attach_queue", "create_dict", "open_dict", "attach_dict", "create_topic", "open_topic",
        "attach_topic" }) do
        assert.equal("function", type(ns[m]), m)
      end
      local seg = assert(ns:create("ns.kept", 64))
      ns:close()
      ns:close() -- idempotent
      assert.has_error(function() ns:create("x", 1) end,
        "attempt to use a closed lxshm namespace")
      assert(seg:write("handles outlive their namespace"))
      assert.equal("handles outlive their namespace", seg:read())
      seg:close()
      assert(lxshm.connect(server.url)):remove("ns.kept")
    end)

    it("keeps prefixes and databases apart", function()
      local a = assert(lxshm.connect(server.url, { prefix = "app-a:" }))
      local b = assert(lxshm.connect(server.url, { prefix = "app-b:" }))
      local db3 = assert(lxshm.connect(server.url .. "?db=3"))
      assert(a:create("shared", 8)):write("a")
      assert(b:create("shared", 8)):write("b")
      assert.equal("a", assert(a:open("shared")):read())
      assert.equal("b", assert(b:open("shared")):read())
      local none, _, code = db3:open("shared")
      assert.is_nil(none)
      assert.equal(lxshm.NOT_FOUND, code)
      assert.equal("1", server:cli("EXISTS", "{app-a:shared}"))
      assert.equal("0", server:cli("EXISTS", "{lxshm:shared}"))
      assert(a:remove("shared"))
      assert(b:remove("shared"))
      for _, ns in ipairs({ a, b, db3 }) do
        ns:close()
      end
    end)

    it("authenticates with opts.password or the URL's; refuses a wrong one with PERMISSION",
      function()
        local locked = servers.single({ "--requirepass", "s3cret" }, { tcp = true })
        util.defer(function() locked:stop() end)
        local port = locked.port
        local ns, msg, code = lxshm.connect(locked.url)
        assert.is_nil(ns)
        assert.equal(lxshm.PERMISSION, code)
        assert.matches("NOAUTH", msg)
        ns, msg, code = lxshm.connect(locked.url, { password = "wrong" })
        assert.is_nil(ns)
        assert.equal(lxshm.PERMISSION, code)
        assert.matches("AUTH", msg)
        ns = assert(lxshm.connect(locked.url, { password = "s3cret" }))
        assert(ns:create("auth", 8)):close()
        ns:close()
        ns = assert(lxshm.connect("redis://:s3cret@127.0.0.1:" .. port .. "/0"))
        assert(ns:open("auth")):close()
        assert(ns:remove("auth"))
        ns:close()
        ns, msg = lxshm.connect("redis://default:s3cret@127.0.0.1:" .. port)
        assert(ns, msg)
        ns:close()
      end)

    it("opts.cluster = true against a server that is not a Cluster is a failure, not a raise",
      function()
        local ns, msg, code = lxshm.connect(server.url, { cluster = true })
        assert.is_nil(ns)
        assert.is_number(code)
        assert.matches("cluster", msg:lower())
      end)
  end)
end)
