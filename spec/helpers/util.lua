--- Helpers shared by the specs: unique segment names, real child processes under deadlines, and
-- the few things that differ between the Lua runtimes the suite runs on (5.1, 5.2, 5.3, 5.4 and
-- LuaJIT 2.1, SPEC §11). Children run `LXSHM_TEST_LUA spec/helpers/child.lua COMMAND ARGS...`
-- with this process's package paths, so an ASan run's children load the ASan build too.
-- Written in Lua 5.1 syntax, as every spec is: each runtime must be able to load it.
local proc = require("test.proc")

local util = { proc = proc }

-- ---- runtimes ----------------------------------------------------------------------------

local jit = rawget(_G, "jit") -- LuaJIT's module; nil elsewhere

--- The runtime running this file, as its users name it: "Lua 5.4", "LuaJIT 2.1.0-beta3".
util.RUNTIME = type(jit) == "table" and jit.version or _VERSION
util.LUAJIT = type(jit) == "table"
--- True where numbers have an integer subtype (math.type): Lua 5.3 and 5.4. Elsewhere every
-- number is a double (doc/FORMAT.md, "Lua runtimes").
util.HAS_INT = rawget(math, "type") ~= nil
--- The interpreter's usual name: lua5.1 ... lua5.4, luajit.
util.INTERPRETER = util.LUAJIT and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))

util.unpack = rawget(table, "unpack") or rawget(_G, "unpack")
--- load for a string chunk on every runtime (5.1's load takes only a function).
util.load_string = rawget(_G, "loadstring") or load
--- True where the `<close>` attribute exists (Lua 5.4): decided by compiling it, not by name.
util.HAS_CLOSE = util.load_string("local x <close> = nil") ~= nil
--- -0.0, made at run time: Lua 5.1's compiler may merge a -0.0 literal with a 0 constant of
-- the same function (they are equal as table keys), silently turning it into 0.
util.NEG_ZERO = tonumber("-0.0")

--- math.type where it exists; on runtimes without an integer subtype, nil.
util.math_type = rawget(math, "type")
--- The extremes of what the codec writes as an integer: math.maxinteger and math.mininteger on
-- 5.3 and 5.4, ±2^53 where numbers are doubles (doc/FORMAT.md).
util.MAX_INTEGER = rawget(math, "maxinteger") or 2 ^ 53
util.MIN_INTEGER = rawget(math, "mininteger") or -2 ^ 53

--- True for what the codec writes as a MessagePack integer: an integer on 5.3 and 5.4, a number
-- with an integral value within ±2^53 (-0.0 excepted) on 5.1, 5.2 and LuaJIT.
function util.is_integer(x)
  if util.HAS_INT then
    return util.math_type(x) == "integer"
  end
  return type(x) == "number" and x == math.floor(x) and x >= -2 ^ 53 and x <= 2 ^ 53
    and not (x == 0 and 1 / x < 0)
end

--- os.execute's result as 5.2 and later give it, on every runtime: true, "exit", 0 on success,
-- else nil, "exit" or "signal", and the code. (5.1 and LuaJIT return the wait status.)
function util.execute(cmd)
  local a, how, code = os.execute(cmd)
  if type(a) == "number" then
    if a % 256 == 0 then
      how, code = "exit", math.floor(a / 256)
    else
      how, code = "signal", a % 128
    end
    a = (how == "exit" and code == 0) or nil
  end
  return a, how, code
end

--- package.searchpath (5.2 and later) on every runtime: the first file `name` resolves to
-- along `path`, or nil.
function util.searchpath(name, path)
  for template in path:gmatch("[^;]+") do
    local file = template:gsub("%?", (name:gsub("%.", "/")))
    local f = io.open(file, "rb")
    if f then
      f:close()
      return file
    end
  end
  return nil
end

--- An object whose collection calls `fn`: a table with __gc where tables have finalizers (5.2
-- and later), a userdata from newproxy on 5.1 and LuaJIT, which run __gc for userdata only.
function util.finalized(fn)
  if _VERSION == "Lua 5.1" then
    local p = rawget(_G, "newproxy")(true)
    getmetatable(p).__gc = fn
    return p
  end
  return setmetatable({}, { __gc = fn })
end

--- The UTF-8 bytes of code point `cp` (utf8.char is 5.3 and later).
function util.utf8_char(cp)
  local char, floor = string.char, math.floor
  if cp < 0x80 then
    return char(cp)
  elseif cp < 0x800 then
    return char(0xc0 + floor(cp / 0x40), 0x80 + cp % 0x40)
  elseif cp < 0x10000 then
    return char(0xe0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xf0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
    0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

--- `n` (a whole number from 0 to 2^53) as 8 little-endian bytes, as string.pack("<I8", n).
function util.u64le(n)
  local bytes = {}
  for i = 1, 8 do
    bytes[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(bytes)
end

--- Bytes written in hex, spaces allowed: util.unhex("d4 4c 00").
function util.unhex(h)
  return (h:gsub("%s", ""):gsub("..", function(b)
    return string.char(tonumber(b, 16))
  end))
end

--- Bytes as hex, without spaces.
function util.hex(s)
  return (s:gsub(".", function(c)
    return ("%02x"):format(c:byte())
  end))
end

-- ---- processes ----------------------------------------------------------------------------

--- Deadlines are multiplied by LXSHM_TEST_SLOW (e.g. 3 under ASan, 4 under valgrind).
util.SLOW = tonumber(os.getenv("LXSHM_TEST_SLOW")) or 1
--- The interpreter children run with: the Makefile sets LXSHM_TEST_LUA to the runtime under
-- test; LXSHM_TEST_LUA=$PWD/spec/helpers/slowlua starts every child 0.3 s late (the specs must
-- pass so, waiting for what children say, never for a time). Without it, this runtime's usual
-- interpreter.
util.LUA = os.getenv("LXSHM_TEST_LUA") or util.INTERPRETER

--- The environment that gives a child these package paths whatever its runtime: LUA_PATH and
-- LUA_CPATH, and the LUA_PATH_5_x and LUA_CPATH_5_x that 5.2 and later read first.
function util.lua_env(path, cpath)
  local env = { LUA_PATH = path, LUA_CPATH = cpath }
  for _, v in ipairs({ "5_2", "5_3", "5_4" }) do
    env["LUA_PATH_" .. v], env["LUA_CPATH_" .. v] = path, cpath
  end
  return env
end

local counter = 0
local deferred = {}

--- Runs `fn` when the current test ends (util.cleanup, installed with after_each). Unlike
-- busted's `finally`, which keeps one function per test, every deferred function runs, last
-- first.
function util.defer(fn)
  deferred[#deferred + 1] = fn
end

--- The names this process's tests left in /dev/shm.
function util.leftovers()
  local prefix, left = ("lxshm.t%d-"):format(proc.pid()), {}
  for _, entry in ipairs(assert(proc.listdir("/dev/shm"))) do
    if entry:sub(1, #prefix) == prefix then
      left[#left + 1] = entry
    end
  end
  return left
end

--- For after_each: runs the deferred functions, then fails the test if it left a segment
-- behind (every test must remove what it creates).
function util.cleanup()
  local fns = deferred
  deferred = {}
  for i = #fns, 1, -1 do
    fns[i]()
  end
  local left = util.leftovers()
  for _, entry in ipairs(left) do
    os.remove("/dev/shm/" .. entry)
  end
  assert(#left == 0, "the test left " .. table.concat(left, ", ") .. " in /dev/shm")
end

--- A segment name no other test or run uses: "t<pid>-<tag>-<n>".
function util.name(tag)
  counter = counter + 1
  return ("t%d-%s-%d"):format(proc.pid(), tag or "x", counter)
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then
    return ""
  end
  local s = f:read("*a")
  f:close()
  return s
end
util.slurp = slurp

--- A value of `size` bytes that proves its own wholeness: an 8-hex-digit counter, then bytes
-- that depend on the counter. A mix of two such values fails `util.whole`.
function util.stamp(i, size)
  local head = ("%08x"):format(i)
  return head .. string.rep(string.char(i % 251), size - #head)
end

--- True if `s` is exactly one value made by util.stamp.
function util.whole(s)
  local i = tonumber(s:sub(1, 8), 16)
  return i ~= nil and s == util.stamp(i, #s)
end

local Child = {}
Child.__index = Child

--- Starts a child: `util.spawn("write", name, "hello")`. Its stdout and stderr go to files.
function util.spawn(...)
  return util.spawn_script("spec/helpers/child.lua", ...)
end

--- Starts any Lua script as a child, e.g. an example.
function util.spawn_script(script, ...)
  return util.spawn_as(nil, script, ...)
end

--- Starts a Lua script as a child running as user `uid` (through setpriv, which needs root), or
-- as this process's user when uid is nil.
function util.spawn_as(uid, script, ...)
  return util.spawn_with({ uid = uid }, script, ...)
end

--- Starts a Lua script as a child, as `opts` say: `lua` (the interpreter, default util.LUA),
-- `path` and `cpath` (its package paths, default this process's), `uid` (see spawn_as).
function util.spawn_with(opts, script, ...)
  local out, err = os.tmpname(), os.tmpname()
  local argv = { opts.lua or util.LUA, script, ... }
  for i = 3, #argv do
    argv[i] = tostring(argv[i])
  end
  if opts.uid then
    argv = { "setpriv", "--reuid=" .. opts.uid, "--regid=" .. opts.uid, "--clear-groups",
      util.unpack(argv) }
  end
  local pid = assert(proc.spawn(argv, {
    stdout = out,
    stderr = err,
    env = util.lua_env(opts.path or package.path, opts.cpath or package.cpath),
  }))
  return setmetatable({ pid = pid, out_path = out, err_path = err, argv = argv }, Child)
end

--- Waits for the child to end, at most `seconds` (stretched by LXSHM_TEST_SLOW). A child still
-- running then is killed and the wait raises: a hang is a failure. Returns how it ended
-- ("exit" or "signal") and the code or signal number.
function Child:wait(seconds)
  if self.how then -- already reaped (by await, which saw it end)
    return self.how, self.code
  end
  local how, code = proc.wait(self.pid, (seconds or 20) * util.SLOW)
  if not how then
    proc.kill(self.pid, "KILL")
    self.how, self.code = proc.wait(self.pid, 5)
    error(("child %s did not finish in time; stderr: %s"):format(
      table.concat(self.argv, " ", 3), self:stderr()), 2)
  end
  self.how, self.code = how, code
  return how, code
end

--- Waits and requires a clean exit (status 0); returns the child's stdout.
function Child:finish(seconds)
  local how, code = self:wait(seconds)
  if how ~= "exit" or code ~= 0 then
    error(("child %s ended by %s %s; stderr: %s"):format(
      table.concat(self.argv, " ", 3), how, code, self:stderr()), 2)
  end
  return self:stdout()
end

--- True if the child's stdout holds `line` as a whole line (the last one may lack its "\n").
function Child:said(line)
  return ("\n" .. self:stdout() .. "\n"):find("\n" .. line .. "\n", 1, true) ~= nil
end

--- Waits until the child has printed `line` on a line of its own, at most `seconds` (stretched
-- by LXSHM_TEST_SLOW). Children print such a line right before they block or spin, so the
-- parent waits for what the child says, never for a fixed time. Raises at once if the child
-- ends without saying it, and at the deadline (killing the child) if it is still silent.
function Child:await(line, seconds)
  local deadline = proc.now() + (seconds or 10) * util.SLOW
  while not self:said(line) do
    local how, code = proc.wait(self.pid, 0)
    if how then
      self.how, self.code = how, code
      if self:said(line) then -- said it, then ended
        return
      end
      error(("child %s ended by %s %s before saying %q; stderr: %s"):format(
        table.concat(self.argv, " ", 3), how, code, line, self:stderr()), 2)
    end
    if proc.now() > deadline then
      proc.kill(self.pid, "KILL")
      self.how, self.code = proc.wait(self.pid, 5)
      error(("child %s did not say %q in time; stdout: %q, stderr: %s"):format(
        table.concat(self.argv, " ", 3), line, self:stdout(), self:stderr()), 2)
    end
    proc.sleep(0.001)
  end
end

--- Sends a signal (default SIGKILL). A child already reaped is left alone: its pid may belong
-- to another process by now.
function Child:kill(sig)
  if self.how then
    return nil, "the child has ended"
  end
  return proc.kill(self.pid, sig or "KILL")
end

function Child:stdout()
  return slurp(self.out_path)
end

--- The last whole line the child printed (nil before any): reads only the file's end, so that
-- polling a child that prints a lot costs the same however much it has printed.
function Child:last_line()
  local f = io.open(self.out_path, "rb")
  if not f then
    return nil
  end
  local size = f:seek("end")
  f:seek("set", size > 256 and size - 256 or 0)
  local tail = f:read(256) or ""
  f:close()
  return tail:match("([^\n]*)\n$")
end

function Child:stderr()
  return slurp(self.err_path)
end

function Child:cleanup()
  if not self.how then
    proc.kill(self.pid, "KILL")
    proc.wait(self.pid, 5)
  end
  os.remove(self.out_path)
  os.remove(self.err_path)
end

--- Spawns a child that is killed (if still running) and cleaned up when the test ends.
function util.child(...)
  local c = util.spawn(...)
  util.defer(function() c:cleanup() end)
  return c
end

--- How many mappings of the object NAME this process has (from /proc/self/maps).
function util.mappings_of(name)
  local n = 0
  for line in io.lines("/proc/self/maps") do
    if line:find("/dev/shm/lxshm." .. name, 1, true) then
      n = n + 1
    end
  end
  return n
end

--- A start line for racing children: returns a path that does not exist yet, removed when the
-- test ends. Children given it say "ready" and spin until the file exists; util.open_gate
-- creates it once every racer has said so, and they all start at once.
function util.gate()
  local path = os.tmpname()
  os.remove(path)
  util.defer(function() os.remove(path) end)
  return path
end

function util.open_gate(path)
  assert(io.open(path, "w")):close()
end

--- A new segment of `size` bytes under a fresh name, closed and removed when the test ends.
-- Returns it and its name.
function util.segment(size, tag)
  local name = util.name(tag or "seg")
  local seg = assert(require("lxshm").create(name, size or 4096))
  util.defer(function()
    seg:close()
    require("lxshm").remove(name)
  end)
  return seg, name
end

--- A new queue, as util.segment.
function util.queue(size, tag)
  local name = util.name(tag or "q")
  local q = assert(require("lxshm").create_queue(name, size or 4096))
  util.defer(function()
    q:close()
    require("lxshm").remove(name)
  end)
  return q, name
end

--- The shared benchmark corpus (bench/corpus.lua, a byte-identical copy of the shared one),
-- loaded on any runtime by bench/load_corpus.lua.
function util.corpus()
  return dofile("bench/load_corpus.lua")("bench/corpus.lua")
end

-- Same value, math.type kept where there is one, NaN equal to NaN, -0.0 different from 0.
local function same_scalar(a, b)
  if type(a) ~= type(b) then
    return false
  end
  if type(a) == "number" then
    if util.HAS_INT and util.math_type(a) ~= util.math_type(b) then
      return false
    end
    if a ~= a then
      return b ~= b
    end
    if a == 0 and b == 0 then
      return 1 / a == 1 / b
    end
  end
  return a == b
end

-- Deep equality that respects identity: tables of `a` must map one-to-one onto tables of `b`,
-- so shared subtables and cycles must be shared and cyclic in the same places. Raw access only.
local function copy(t)
  local c = {}
  for k, v in next, t do
    c[k] = v
  end
  return c
end

local eq
local function eq_tables(a, b, m)
  if m.ab[a] ~= nil or m.ba[b] ~= nil then
    return m.ab[a] == b
  end
  m.ab[a], m.ba[b] = b, a
  local n, akeys = 0, {}
  for k, v in next, a do
    n = n + 1
    if type(k) == "table" then
      akeys[#akeys + 1] = k
    else
      local w = rawget(b, k)
      if w == nil or not eq(v, w, m) then
        return false
      end
    end
  end
  local bkeys = {}
  for k in next, b do
    n = n - 1
    if type(k) == "table" then
      bkeys[#bkeys + 1] = k
    end
  end
  if n ~= 0 then
    return false
  end
  for _, ka in ipairs(akeys) do -- a table key matches a key of b that is the same table
    local found = false
    for _, kb in ipairs(bkeys) do
      if m.ab[ka] == nil and m.ba[kb] == nil or m.ab[ka] == kb then
        local ab, ba = copy(m.ab), copy(m.ba)
        if eq(ka, kb, m) and eq(a[ka], b[kb], m) then
          found = true
          break
        end
        m.ab, m.ba = ab, ba
      end
    end
    if not found then
      return false
    end
  end
  return true
end

eq = function(a, b, m)
  if type(a) == "table" and type(b) == "table" then
    return eq_tables(a, b, m)
  end
  return same_scalar(a, b)
end

--- Deep equality of Lua values as the codec must keep them: math.type kept (on the runtimes that
-- have it), NaN equal to NaN, -0.0 apart from 0.0, and identity respected (shared subtables and
-- cycles must be shared and cyclic in the same places).
function util.deep_equal(a, b)
  return eq(a, b, { ab = {}, ba = {} })
end

--- Runs a child to completion and returns its stdout.
function util.run(...)
  local c = util.spawn(...)
  local ok, out = pcall(Child.finish, c)
  c:cleanup()
  if not ok then
    error(out, 2)
  end
  return out
end

--- Polls `cond` until it returns a true value, at most `seconds` (stretched); returns it or
-- raises with `what`.
function util.eventually(cond, seconds, what)
  local deadline = proc.now() + (seconds or 10) * util.SLOW
  repeat
    local v = cond()
    if v then
      return v
    end
    proc.sleep(0.002)
  until proc.now() > deadline
  error("timed out waiting for " .. (what or "a condition"), 2)
end

return util
