--- win_smoke.lua — a smoke test of the Lua module on Windows, run under Wine by
-- `make test-windows-lua`: two Lua processes exchange a table through a segment (put, wait,
-- get) and a hundred values through a queue (push, pop).
--
-- Usage: lua.exe spec/win_smoke.lua LUA_EXE             the parent; starts the child with LUA_EXE
--        lua.exe spec/win_smoke.lua LUA_EXE child NAME  the child
-- Prints one line per check and ends with "Windows Lua: N passed, N failed"; exits 0 iff all pass.
local lxshm = require("lxshm")

local lua_exe, role, name = arg[1], arg[2], arg[3]
local passed, failed = 0, 0

local function check(ok, what, ...)
  if ok then
    passed = passed + 1
    print(("ok - %s"):format(what))
  else
    failed = failed + 1
    local details = table.pack(...)
    for i = 1, details.n do
      details[i] = tostring(details[i])
    end
    print(("not ok - %s %s"):format(what, table.concat(details, ", ")))
  end
  return ok
end

--- Fails the whole run at once: what follows depends on it.
local function must(v, msg, code)
  if v == nil then
    error(("%s (code %s)"):format(tostring(msg), tostring(code)), 2)
  end
  return v
end

local VALUES = 100

if role == "child" then
  local seg = must(lxshm.open(name .. ".seg"))
  local q = must(lxshm.open_queue(name .. ".q"))
  local version = must(seg:wait(0, 20))
  local t = seg:get()
  check(version == 1 and type(t) == "table", "child: woken by the parent's put", version, type(t))
  check(t.hello == "from the parent" and #t.list == 3 and t.nested.deep[1] == true
    and math.type(t.list[3]) == "integer" and t.ratio == 0.5, "child: the table arrived whole")
  check(t.self == t, "child: a table that refers to itself is kept")
  local sum = t.list[1] + t.list[2] + t.list[3]
  must(seg:put({ reply = "from the child", sum = sum, got = t.hello }))
  for i = 1, VALUES do
    must(q:push({ i = i, text = ("x"):rep(i) }, 20))
  end
  must(q:push("done", 20))
  print(("child: %d passed, %d failed"):format(passed, failed))
  os.exit(failed == 0 and 0 or 1)
end

-- The parent.
name = ("luasmoke%d.%d"):format(os.time() % 100000, math.random(1, 1 << 30))
local seg = must(lxshm.create(name .. ".seg", 4096))
local q = must(lxshm.create_queue(name .. ".q", 1024)) -- small: the child blocks while it is full
local sent = {
  hello = "from the parent", list = { 1, 2, 3 }, nested = { deep = { true } }, ratio = 0.5,
}
sent.self = sent
must(seg:put(sent))

-- io.popen runs the command through cmd.exe: backslashes, and no quotes (paths have no spaces).
local command = ("%s spec\\win_smoke.lua %s child %s 2>&1"):format(
  lua_exe:gsub("/", "\\"), lua_exe:gsub("/", "\\"), name)
local child = must(io.popen(command, "r"))

local version, msg = seg:wait(1, 30)
check(version == 2, "parent: woken by the child's put", version, msg)
local reply = seg:get()
check(type(reply) == "table" and reply.reply == "from the child" and reply.sum == 6
  and reply.got == "from the parent", "parent: the child's table arrived whole")

local in_order = version == 2 -- else the child failed: do not wait for its values
for i = 1, in_order and VALUES or 0 do
  local v, err = q:pop(30)
  if type(v) ~= "table" or v.i ~= i or v.text ~= ("x"):rep(i) then
    in_order = false
    print(("# value %d: %s %s"):format(i, tostring(v), tostring(err)))
    break
  end
end
check(in_order, "parent: " .. VALUES .. " values popped whole, in order")
check(in_order and q:pop(30) == "done", "parent: the sentinel came last")
check(q:count() == 0, "parent: the queue is empty", q:count())

local output = child:read("a")
local ok, how, code = child:close()
io.write((output:gsub("[^\n]+", "  %0")))
check(ok and code == 0, "child exited 0", how, code)

seg:close()
q:close()
print(("Windows Lua: %d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
