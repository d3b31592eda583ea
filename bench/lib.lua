--- Shared benchmark harness: repetitions alternated between contenders, medians, and ratios
-- taken repetition by repetition (this 2-core machine is noisy: quote medians and ratios from
-- one run, never absolute times across runs). Figures print as
--   name: value unit  # min=... max=...
-- No thresholds: benchmarks report, they never pass or fail.
-- The scripts run on Lua 5.4 and on LuaJIT (make bench runs both): written in Lua 5.1 syntax.
local clock = require("bench.clock")

local lib = { clock = clock }

--- The interpreter running this script; children are started with the same one.
lib.LUA = arg and arg[-1] or "lua5.4"
--- The runtime running this script, as its users name it: "Lua 5.4", "LuaJIT 2.1.0-beta3".
local jit = rawget(_G, "jit")
lib.RUNTIME = type(jit) == "table" and jit.version or _VERSION

--- os.execute's result as 5.2 and later give it (true | nil, "exit"|"signal", code), also on
-- 5.1 and LuaJIT, whose os.execute returns the wait status as a number.
function lib.execute(cmd)
  local ok, how, code = os.execute(cmd)
  if type(ok) == "number" then
    if ok % 256 == 0 then
      how, code = "exit", math.floor(ok / 256)
    else
      how, code = "signal", ok % 128
    end
    ok = (how == "exit" and code == 0) or nil
  end
  return ok, how, code
end

--- Elements i..j of a list, as a new list (table.move is 5.3 and later).
function lib.slice(xs, i, j)
  local s = {}
  for k = i, j do
    s[#s + 1] = xs[k]
  end
  return s
end

lib.REPS = tonumber(os.getenv("LXSHM_BENCH_REPS")) or 9
lib.BATCH = tonumber(os.getenv("LXSHM_BENCH_TIME")) or 0.1 -- seconds per timed batch

--- A string quoted for sh.
function lib.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

lib.TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"

--- Re-runs the calling script with glibc's malloc thresholds pinned, unless they already are:
-- otherwise every 1 MiB buffer is mmap'ed and page-faulted afresh and big figures swing tenfold.
function lib.pin_malloc()
  if os.getenv("GLIBC_TUNABLES") then
    return
  end
  local cmd = "GLIBC_TUNABLES=" .. lib.TUNABLES .. " " .. lib.quote(lib.LUA) .. " "
    .. lib.quote(arg[0])
  for i = 1, #arg do
    cmd = cmd .. " " .. lib.quote(arg[i])
  end
  local ok, how, code = lib.execute(cmd)
  os.exit(how == "exit" and code or (ok and 0 or 1))
end

function lib.median(xs)
  local s = lib.slice(xs, 1, #xs)
  table.sort(s)
  local n = #s
  if n % 2 == 1 then
    return s[(n + 1) / 2]
  end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

function lib.fmt(x)
  if x ~= x or x == math.huge then
    return tostring(x)
  elseif x >= 100 then
    return ("%.0f"):format(x)
  elseif x >= 10 then
    return ("%.1f"):format(x)
  elseif x >= 0.1 then
    return ("%.2f"):format(x)
  end
  return ("%.3g"):format(x)
end

--- Prints one figure line; returns the median.
function lib.figure(name, xs, unit)
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(xs) do
    lo, hi = math.min(lo, x), math.max(hi, x)
  end
  local m = lib.median(xs)
  print(("%s: %s %s  # min=%s max=%s"):format(name, lib.fmt(m), unit, lib.fmt(lo), lib.fmt(hi)))
  return m
end

--- Seconds taken by run(n): its own figure when it returns one (it timed itself, e.g. across
-- processes), else the difference of `timer` (default: the monotonic wall clock) around it.
local function timed(run, n, timer)
  local t0 = timer()
  local own = run(n)
  return own or (timer() - t0)
end

--- How many calls of fn(n) fill about BATCH seconds (of `timer`, default wall time).
function lib.calibrate(fn, timer)
  local n = 1
  timer = timer or clock.now
  while true do
    local t = timed(fn, n, timer)
    if t >= lib.BATCH / 4 then
      return math.max(1, math.floor(n * lib.BATCH / t))
    end
    n = n * 4
  end
end

--- Times contenders side by side. `contenders` is a list of { name = ..., run = function(n) },
-- where run(n) does n operations and returns nothing (or its own elapsed seconds, when it
-- must time itself, e.g. across processes); a contender may fix its own `n`. Repetitions
-- rotate the order. `opts.timer` replaces the wall clock (e.g. clock.cputime for one-process
-- figures on a shared machine). Returns, per name, the list of seconds per operation.
function lib.compare(contenders, opts)
  local timer = opts and opts.timer or clock.now
  local per_op = {}
  for _, c in ipairs(contenders) do
    c.n = c.n or lib.calibrate(c.run, timer)
    per_op[c.name] = {}
  end
  for rep = 1, lib.REPS do
    for k = 0, #contenders - 1 do
      local c = contenders[(rep + k - 1) % #contenders + 1]
      collectgarbage("collect")
      table.insert(per_op[c.name], timed(c.run, c.n, timer) / c.n)
    end
  end
  return per_op
end

--- Ratios a[i] / b[i], repetition by repetition.
function lib.ratios(a, b)
  local r = {}
  for i = 1, math.min(#a, #b) do
    r[i] = a[i] / b[i]
  end
  return r
end

--- Maps a list with fn.
function lib.map(xs, fn)
  local r = {}
  for i, x in ipairs(xs) do
    r[i] = fn(x)
  end
  return r
end

--- Scales a list (e.g. seconds per op to µs: lib.scale(xs, 1e6)).
function lib.scale(xs, k)
  return lib.map(xs, function(x) return x * k end)
end

--- Inverts a list of seconds per operation into operations per second.
function lib.rate(xs)
  return lib.map(xs, function(t) return 1 / t end)
end

--- A name no other run uses at the same time (segments, queues, FIFOs, sockets).
function lib.unique(prefix)
  return ("%s-%d-%d"):format(prefix, clock.pid(), math.random(1, 1e9))
end

--- Starts `lua bench/helpers/<helper>.lua args...` as a separate process, with this script's
-- module paths, and returns the io.popen handle (mode "r": its stdout is ours to read).
-- `prefix` is a command to run it under (e.g. "taskset -c 1").
function lib.spawn(helper, args, mode, prefix)
  local cmd = (prefix and prefix .. " " or "") .. lib.quote(lib.LUA) .. " "
    .. lib.quote("bench/helpers/" .. helper .. ".lua")
  for _, a in ipairs(args or {}) do
    cmd = cmd .. " " .. lib.quote(a)
  end
  return assert(io.popen(cmd, mode or "r"))
end

--- Reads one line from a child, failing loudly if it died instead.
function lib.expect(child, what)
  local line = child:read("*l")
  if line == nil then
    error(("child ended before sending %s"):format(what or "a line"), 2)
  end
  return line
end

--- Debian's lua-messagepack and lua-redis are pure Lua, installed for 5.1, 5.2 and 5.3 (which
-- LuaJIT reads as its own) but not for 5.4: Lua 5.4 takes the 5.3 ones.
function lib.use_lua53_modules()
  if _VERSION == "Lua 5.4" and not package.path:find("/usr/share/lua/5.3/", 1, true) then
    package.path = package.path .. ";/usr/share/lua/5.3/?.lua"
  end
end

--- The shared corpus: LXSHM_CORPUS, else ../shared/bench/corpus.lua, else the copy in bench/;
-- loaded through bench/load_corpus.lua, so that LuaJIT builds the same tables as Lua 5.4.
function lib.load_corpus()
  for _, path in ipairs({ os.getenv("LXSHM_CORPUS") or false, "../shared/bench/corpus.lua",
    "bench/corpus.lua" }) do
    local f = path and io.open(path, "r")
    if f then
      f:close()
      return dofile("bench/load_corpus.lua")(path)
    end
  end
  error("corpus.lua not found: set LXSHM_CORPUS")
end

return lib
