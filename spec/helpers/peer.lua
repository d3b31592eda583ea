--- A process of any runtime (Lua 5.1 to 5.4, LuaJIT) exchanging values with processes of the
-- others, for spec/runtimes_spec.lua: `LUA spec/helpers/peer.lua COMMAND ARGS...`. Needs only
-- lxshm (its path is all the parent gives it); written in Lua 5.1 syntax.
--
-- Every writer stores the same recipe, sample(TAG), built from numbers written as text, so each
-- runtime reads the text its own way; every reader checks what it got against the recipe as
-- the value must arrive after the runtimes it passed through (KINDS, a comma-separated list of
-- "int" (5.3, 5.4) and "double" (5.1, 5.2, LuaJIT), from the writer to this reader, following
-- doc/FORMAT.md "Lua runtimes"), and prints "equal" or the first difference.
--   put SEG TAG            store sample(TAG) in segment SEG
--   get SEG TAG KINDS      read SEG and check it
--   push Q TAG             push sample(TAG), then each number of the recipe alone
--   pop Q TAG KINDS        pop them all and check them
--   echo SEG Q KINDS       say "waiting", wait for SEG's first value, check it, push it back on Q
--   send SEG Q TAG KINDS   put sample(TAG) in SEG, pop the echo from Q and check it (KINDS: from
--                          this process to the echo's and back)
--   dset D TAG             in dictionary D: "sample" = sample(TAG), "n<i>" = the i-th number,
--                          and each number of KEYS as a key, its text as the value
--   dget D TAG KINDS       read them all back and check them, the number keys named as this
--                          runtime reads their text
--   subscribe T TAG KINDS  subscribe to topic T from new messages, say "subscribed", then take
--                          sample(TAG) and the numbers (next, next_many) and check them
--   publish T TAG          publish sample(TAG), then the numbers, one message each
local lxshm = require("lxshm")

local jit = rawget(_G, "jit")
local math_type = rawget(math, "type")
local KIND = math_type and "int" or "double"
local RUNTIME = type(jit) == "table" and jit.version or _VERSION
local TIMEOUT = 20 * (tonumber(os.getenv("LXSHM_TEST_SLOW")) or 1)
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

local function say(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

-- ---- numbers ------------------------------------------------------------------------------

-- The recipe's numbers, as text: integers of every width up to and beyond ±2^53, floats with
-- integral values, fractions, the float-only values and the 64-bit extremes.
local NUMBERS = { "0", "3", "-1", "127", "128", "-33", "255", "65536", "4294967296",
  "-2147483649", "9007199254740992", "-9007199254740992", "3.0", "-1.0", "300.0", "0.0", "-0.0",
  "1.5", "0.1", "-2.25", "1e300", "5e-324", "1152921504606846976.0", "9007199254740994.0",
  "inf", "-inf", "nan", "9007199254740993", "9223372036854775807", "-9223372036854775808" }

-- Numbers used as dictionary keys: those every runtime reads as the same key (Lua itself turns an
-- integral float key into an integer key; integers beyond 2^53 would not be one key everywhere).
local KEYS = { "0", "3", "-1", "3.0", "1.5", "-2.25", "0.1", "4294967296", "9007199254740992",
  "1e300", "inf" }

--- The number `text` says, as this runtime reads it.
local function num(text)
  if text == "inf" then
    return 1 / 0
  elseif text == "-inf" then
    return -1 / 0
  elseif text == "nan" then
    return 0 / 0
  end
  return (assert(tonumber(text), text))
end

--- `v` as a double: the nearest one for an integer beyond 2^53 (a no-op without integers).
-- A product, not v + 0.0, which would turn -0.0 into 0.0.
local function to_double(v)
  return v * 1.0
end

--- What the number `text` is when it reaches this process, having been written by a runtime of
-- kinds[1] and read, written again, ... by runtimes of the next kinds (the last one is this
-- process's). The rules of doc/FORMAT.md, "Lua runtimes":
-- - A runtime without integers holds the nearest double; it writes an integral one within ±2^53
--   (-0.0 excepted) as an integer, anything else as a float.
-- - A runtime with integers keeps what it reads: integers as integers, floats as floats.
-- So without integers here, whatever the path, the value is the nearest double of the text.
local function expected_number(text, kinds)
  assert(kinds[#kinds] == KIND, "the last kind must be this runtime's")
  local v = num(text)
  if KIND == "double" then
    return v
  end
  if kinds[1] == "double" then
    v = to_double(v)
  end
  for i = 2, #kinds do
    if kinds[i - 1] == "double" and v == math.floor(v) and v >= -2 ^ 53 and v <= 2 ^ 53
      and not (v == 0 and 1 / v < 0) then
      v = math.floor(v) -- written as an integer: math.floor gives one on 5.3+
    end
    if kinds[i] == "double" then
      v = to_double(v)
    end
  end
  return v
end

--- The number maker for values that came along KINDS ("int,double,..."), to build what they
-- must be here.
local function arrived(kinds_text)
  local kinds = {}
  for k in kinds_text:gmatch("[^,]+") do
    kinds[#kinds + 1] = k
  end
  return function(text)
    return expected_number(text, kinds)
  end
end

--- The recipe's numbers, each made by `number`.
local function numbers_of(number)
  local xs = {}
  for i, text in ipairs(NUMBERS) do
    xs[i] = number(text)
  end
  return xs
end

-- ---- the recipe ---------------------------------------------------------------------------

--- The value every writer stores: a table with every kind of value the codec keeps, shared
-- subtables, a cycle and table keys. `number` makes each number of NUMBERS.
local function sample(tag, number)
  local all = {}
  for b = 0, 255 do
    all[#all + 1] = string.char(b)
  end
  local numbers = numbers_of(number)
  local shared = { "shared", number("1.5") }
  local deep = { "bottom" }
  for _ = 1, 60 do
    deep = { deep }
  end
  local v = {
    tag = tag,
    numbers = numbers,
    strings = { "", "plain", "h\195\169llo w\195\182rld", table.concat(all),
      string.rep("long ", 14000) },
    flags = { true, false },
    keyed = { [number("1.5")] = "float key", [number("-7")] = "negative key",
      [number("3.0")] = "three", [true] = "true key", [""] = "empty key" },
    sparse = { [1] = "one", [3] = "three", [10] = "ten" },
    nested = { a = { b = { c = { "deep" } } } },
    deep = deep,
    first = shared,
    second = shared,
    [{ "a table as key" }] = "table key",
  }
  v.self = v
  return v
end

-- ---- comparison ---------------------------------------------------------------------------

local function show(x)
  if type(x) == "number" then
    local t = math_type and math_type(x) or "number"
    if x ~= x then
      return "nan (" .. t .. ")"
    end
    return ("%.17g (%s)"):format(x, t)
  elseif type(x) == "string" then
    return #x > 40 and ("a string of %d bytes"):format(#x) or ("%q"):format(x)
  end
  return tostring(x)
end

local function same_scalar(a, b)
  if type(a) ~= type(b) then
    return false
  end
  if type(a) == "number" then
    if math_type and math_type(a) ~= math_type(b) then
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

--- nil if `got` equals `want` (math.type, NaN, -0.0, and which tables are the same table), else
-- where and how they first differ. Table keys are matched by content, and must be tables too.
local function differ(got, want, path, seen)
  if type(want) ~= "table" or type(got) ~= "table" then
    if same_scalar(got, want) then
      return nil
    end
    return ("%s: got %s, want %s"):format(path, show(got), show(want))
  end
  if seen.gw[got] ~= nil or seen.wg[want] ~= nil then
    if seen.gw[got] == want then
      return nil
    end
    return path .. ": the sharing of tables differs"
  end
  seen.gw[got], seen.wg[want] = want, got
  for k, w in pairs(want) do
    local kpath = path .. "[" .. show(k) .. "]"
    if type(k) == "table" then
      local match
      for gk, gv in pairs(got) do
        if type(gk) == "table" and differ(gk, k, kpath, seen) == nil then
          match = gv
        end
      end
      if match == nil then
        return kpath .. ": no such table key"
      end
      local d = differ(match, w, kpath, seen)
      if d then
        return d
      end
    else
      local d = differ(rawget(got, k), w, kpath, seen)
      if d then
        return d
      end
    end
  end
  local table_keys = 0
  for k in pairs(want) do
    table_keys = table_keys + (type(k) == "table" and 1 or 0)
  end
  for k in pairs(got) do
    if type(k) == "table" then
      table_keys = table_keys - 1
    elseif rawget(want, k) == nil then
      return path .. "[" .. show(k) .. "]: not expected"
    end
  end
  if table_keys ~= 0 then
    return path .. ": another number of table keys"
  end
  return nil
end

--- Prints "equal" if `got` equals `want`, else where they first differ.
local function check(got, want)
  say(differ(got, want, "value", { gw = {}, wg = {} }) or "equal")
end

-- ---- commands -----------------------------------------------------------------------------

local commands = {}

function commands.put(seg_name, tag)
  local seg = assert(lxshm.open(seg_name))
  assert(seg:put(sample(tag, num)))
  say("put by " .. RUNTIME)
end

function commands.get(seg_name, tag, kinds)
  local seg = assert(lxshm.open(seg_name))
  check(assert(seg:get()), sample(tag, arrived(kinds)))
end

function commands.push(q_name, tag)
  local q = assert(lxshm.open_queue(q_name))
  assert(q:push(sample(tag, num), TIMEOUT))
  assert(q:push_many(numbers_of(num), TIMEOUT)) -- each number a value of its own
  say("pushed by " .. RUNTIME)
end

function commands.pop(q_name, tag, kinds)
  local q = assert(lxshm.open_queue(q_name))
  check(assert(q:pop(TIMEOUT)), sample(tag, arrived(kinds)))
  local numbers, n = assert(q:pop_many(#NUMBERS, TIMEOUT))
  assert(n == #NUMBERS, ("popped %d numbers of %d"):format(n, #NUMBERS))
  check(numbers, numbers_of(arrived(kinds)))
end

function commands.echo(seg_name, q_name, kinds)
  local seg = assert(lxshm.open(seg_name))
  local q = assert(lxshm.open_queue(q_name))
  say("waiting")
  assert(seg:wait(0, TIMEOUT))
  local v = assert(seg:get())
  check(v, sample(v.tag, arrived(kinds)))
  assert(q:push(v, TIMEOUT)) -- back as this runtime writes it
end

function commands.send(seg_name, q_name, tag, kinds)
  local seg = assert(lxshm.open(seg_name))
  local q = assert(lxshm.open_queue(q_name))
  assert(seg:put(sample(tag, num)))
  check(assert(q:pop(TIMEOUT)), sample(tag, arrived(kinds)))
end

function commands.dset(d_name, tag)
  local d = assert(lxshm.open_dict(d_name))
  assert(d:set("sample", sample(tag, num)))
  for i, x in ipairs(numbers_of(num)) do
    assert(d:set("n" .. i, x))
  end
  for _, text in ipairs(KEYS) do
    assert(d:set(num(text), text))
  end
  say("set by " .. RUNTIME)
end

function commands.dget(d_name, tag, kinds)
  local d = assert(lxshm.open_dict(d_name))
  check(d:get("sample"), sample(tag, arrived(kinds)))
  local got = {}
  for i = 1, #NUMBERS do
    got[i] = d:get("n" .. i)
  end
  check(got, numbers_of(arrived(kinds)))
  local texts, want = {}, {}
  for i, text in ipairs(KEYS) do
    texts[i], want[i] = d:get(num(text)), text -- "3.0" and "3" name one key: the last set wins
    if text == "3" then
      want[i] = "3.0"
    end
  end
  check(texts, want)
end

function commands.subscribe(t_name, tag, kinds)
  local t = assert(lxshm.open_topic(t_name))
  local sub = assert(t:subscribe("new"))
  say("subscribed")
  check(assert(sub:next(TIMEOUT)), sample(tag, arrived(kinds)))
  local values, n = assert(sub:next_many(#NUMBERS, TIMEOUT))
  assert(n == #NUMBERS, ("took %d numbers of %d"):format(n, #NUMBERS))
  check(values, numbers_of(arrived(kinds)))
end

function commands.publish(t_name, tag)
  local t = assert(lxshm.open_topic(t_name))
  assert(t:publish(sample(tag, num), TIMEOUT))
  assert(t:publish_many(numbers_of(num), TIMEOUT))
  say("published by " .. RUNTIME)
end

local command = commands[arg[1]]
if not command then
  io.stderr:write("peer.lua: unknown command ", tostring(arg[1]), "\n")
  os.exit(2)
end
command(unpack(arg, 2))
