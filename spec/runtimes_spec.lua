--- Processes on different Lua runtimes share values (SPEC §11): Lua 5.1, 5.2, 5.3, 5.4 and
-- LuaJIT processes, each running spec/helpers/peer.lua with the module built for it, write the
-- same recipe of values into segments, queues, dictionaries and topics and read back what each
-- of the others wrote;
-- every value must arrive as doc/FORMAT.md, "Lua runtimes", says (equal wherever a double can
-- hold it). This spec builds nothing: `make test-runtimes` builds every runtime's module and runs
-- it with LXSHM_TEST_RUNTIMES=all, which makes a missing runtime a failure. Run otherwise (make
-- test), it exchanges between the runtimes it finds and says on stderr which it could not find.
local lxshm = require("lxshm")
local util = require("util")

after_each(util.cleanup)

local REQUIRED = os.getenv("LXSHM_TEST_RUNTIMES") == "all"
--- True when a C source in src/ changed after `module` was built: such a build would test older
-- sources than this process's.
local function stale(module)
  local p = io.popen("find src -newer " .. module .. " -name '*.[ch]' 2>/dev/null | head -n 1")
  local newer = p:read("*a")
  p:close()
  return newer ~= ""
end
local PATH = "lua/?.lua;spec/helpers/?.lua"

local function exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
  end
  return f ~= nil
end

--- The runtimes, with the interpreter and module path to run each: this process's own runtime
-- with the build it tests (the ASan one under make asan), every other with build/<name>/ (Lua
-- 5.4's is build/). `missing` says why each of the others cannot run.
local found, missing = {}, {}
for _, name in ipairs({ "lua5.1", "lua5.2", "lua5.3", "lua5.4", "luajit" }) do
  local rt = { name = name, kind = (name == "lua5.3" or name == "lua5.4") and "int" or "double" }
  local dir = name == "lua5.4" and "build" or "build/" .. name
  if name == util.INTERPRETER then
    rt.lua, rt.cpath = util.LUA, package.cpath
  elseif not util.execute("command -v " .. name .. " >/dev/null 2>&1") then
    missing[#missing + 1] = name .. " (no " .. name .. " interpreter on the PATH)"
  elseif not exists(dir .. "/lxshm/core.so") then
    missing[#missing + 1] = ("%s (%s/lxshm/core.so is not built: make LUA=%s)"):format(name, dir,
      name)
  elseif stale(dir .. "/lxshm/core.so") then
    missing[#missing + 1] = ("%s (%s/lxshm/core.so is older than src/: make LUA=%s)")
      :format(name, dir, name)
  else
    rt.lua, rt.cpath = name, dir .. "/?.so"
  end
  if rt.lua then
    found[#found + 1] = rt
  end
end

local function names(list)
  local t = {}
  for i, rt in ipairs(list) do
    t[i] = rt.name
  end
  return table.concat(t, ", ")
end

--- Runs peer.lua COMMAND ARGS... on runtime `rt`; returns the child (cleaned up at the end).
local function peer(rt, ...)
  local c = util.spawn_with({ lua = rt.lua, path = PATH, cpath = rt.cpath },
    "spec/helpers/peer.lua", ...)
  util.defer(function() c:cleanup() end)
  return c
end

--- Runs peer.lua to its end on `rt` and returns its stdout.
local function run(rt, ...)
  return peer(rt, ...):finish(60)
end

--- A new object made by lxshm[create](name, bytes), closed and removed when the test ends.
local function object(create, tag)
  local name = util.name(tag)
  local o = assert(lxshm[create](name, 1024 * 1024))
  util.defer(function()
    o:close()
    lxshm.remove(name)
  end)
  return name
end

local function kinds(...)
  local t = {}
  for i, rt in ipairs({ ... }) do
    t[i] = rt.kind
  end
  return table.concat(t, ",")
end

describe("processes on different runtimes", function()
  it("find the runtimes to exchange between" .. (REQUIRED and ", all of them" or ""), function()
    if #missing > 0 then
      io.stderr:write("\n# runtimes_spec: exchanging between ", names(found), " only; not found: ",
        table.concat(missing, "; "), "\n")
    end
    assert.is_true(#found >= 1)
    if REQUIRED then
      assert.same({}, missing)
    end
  end)

  --- Each of `writers` puts the recipe into a segment and every runtime found reads it back;
  -- returns what went wrong, "writer -> reader: what the reader said", and what each put said.
  local function through_segments(writers)
    local wrong, said_put = {}, {}
    for _, w in ipairs(writers) do
      local _, name = util.segment(1024 * 1024, "xrt")
      said_put[w.name] = run(w, "put", name, w.name)
      assert.matches("^put by ", said_put[w.name])
      for _, r in ipairs(found) do
        local said = run(r, "get", name, w.name, kinds(w, r))
        if said ~= "equal\n" then
          wrong[#wrong + 1] = w.name .. " -> " .. r.name .. ": " .. said
        end
      end
    end
    return wrong, said_put
  end

  it("read back through a segment what each wrote (" .. names(found) .. ")", function()
    assert.same({}, (through_segments(found)))
  end)

  it("pop from a queue what each pushed, a table and each number alone (" .. names(found) .. ")",
    function()
      local wrong = {}
      for _, w in ipairs(found) do
        for _, r in ipairs(found) do
          local _, name = util.queue(1024 * 1024, "xrtq")
          assert.matches("^pushed by ", run(w, "push", name, w.name))
          local said = run(r, "pop", name, w.name, kinds(w, r))
          if said ~= "equal\nequal\n" then
            wrong[#wrong + 1] = w.name .. " -> " .. r.name .. ": " .. said
          end
        end
      end
      assert.same({}, wrong)
    end)

  -- Both processes run at once: one blocks in wait until the other puts, checks the table and
  -- pushes it back as its runtime writes it; the first pops it and checks it after the round
  -- trip through the other runtime (a 5.4 float 3.0 that passed through LuaJIT is back as the
  -- integer 3, as doc/FORMAT.md says).
  it("exchange a table live, each pair through a segment one way and a queue back ("
    .. names(found) .. ")", function()
      local wrong = {}
      for _, a in ipairs(found) do
        for _, b in ipairs(found) do
          if a ~= b or #found == 1 then
            local _, seg = util.segment(1024 * 1024, "live")
            local _, q = util.queue(1024 * 1024, "liveq")
            local echo = peer(b, "echo", seg, q, kinds(a, b))
            echo:await("waiting")
            local sent = run(a, "send", seg, q, a.name, kinds(a, b, a))
            local echoed = echo:finish(60)
            if sent ~= "equal\n" or echoed ~= "waiting\nequal\n" then
              wrong[#wrong + 1] = ("%s -> %s -> %s: %s read %q, %s read %q"):format(a.name, b.name,
                a.name, b.name, echoed, a.name, sent)
            end
          end
        end
      end
      assert.same({}, wrong)
    end)

  it("share a dictionary: values, numbers and number keys each wrote (" .. names(found) .. ")",
    function()
      local wrong = {}
      for _, w in ipairs(found) do
        local name = object("create_dict", "xrtd")
        assert.matches("^set by ", run(w, "dset", name, w.name))
        for _, r in ipairs(found) do
          local said = run(r, "dget", name, w.name, kinds(w, r))
          if said ~= "equal\nequal\nequal\n" then
            wrong[#wrong + 1] = w.name .. " -> " .. r.name .. ": " .. said
          end
        end
      end
      assert.same({}, wrong)
    end)

  it("follow a topic live: each subscriber blocks until another runtime publishes ("
    .. names(found) .. ")", function()
      local wrong = {}
      for _, w in ipairs(found) do
        for _, r in ipairs(found) do
          local name = object("create_topic", "xrtt")
          local sub = peer(r, "subscribe", name, w.name, kinds(w, r))
          sub:await("subscribed")
          assert.matches("^published by ", run(w, "publish", name, w.name))
          local said = sub:finish(60)
          if said ~= "subscribed\nequal\nequal\n" then
            wrong[#wrong + 1] = w.name .. " -> " .. r.name .. ": " .. said
          end
        end
      end
      assert.same({}, wrong)
    end)

  -- lua5.1 and LuaJIT look for C modules in the same directories (/usr/local/lib/lua/5.1/...):
  -- the module built against either one's headers is one that both load.
  local cases = { { runs = "luajit", built = "lua5.1" }, { runs = "lua5.1", built = "luajit" } }
  for _, case in ipairs(cases) do
    it(("include a %s process running the module built for %s"):format(case.runs, case.built),
      function()
        local by_name = {}
        for _, rt in ipairs(found) do
          by_name[rt.name] = rt
        end
        local runs, built = by_name[case.runs], by_name[case.built]
        if not (runs and built) then
          assert.is_false(REQUIRED)
          io.stderr:write(("\n# runtimes_spec: needs %s and %s's build: not checked\n")
            :format(case.runs, case.built))
          return
        end
        local mixed = { name = case.runs .. " with " .. case.built .. "'s module", kind = "double",
          lua = runs.lua, cpath = built.cpath }
        local wrong, said_put = through_segments({ runs, mixed })
        assert.same({}, wrong)
        -- the same interpreter, whichever module it loaded
        assert.equal(said_put[runs.name]:match("^put by (%S+)"),
          said_put[mixed.name]:match("^put by (%S+)"))
      end)
  end
end)
