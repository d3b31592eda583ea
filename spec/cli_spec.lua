--- The lxshm command (bin/lxshm), run for real in child processes: every command on every kind
-- of object this build has, its output formats, its refusals, and what it does with values
-- that look like code. The objects are made and checked through the module itself.
local lxshm = require("lxshm")
local util = require("util")
local cli = require("cli_run")
local proc = util.proc

after_each(util.cleanup)

-- Lua 5.1 syntax and globals, as bin/lxshm: the suite runs on every runtime (SPEC §11).
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")
local math_type = rawget(math, "type") -- nil where numbers have no integer subtype
local NEG_ZERO = tonumber("-0.0") -- 5.1's compiler may fold a -0.0 literal into 0
local is_root = io.popen("id -u"):read("*l") == "0"
local NOBODY = 65534

local function shm_path(name)
  return "/dev/shm/lxshm." .. name
end

local function poke(name, offset, bytes)
  local f = assert(io.open(shm_path(name), "r+b"))
  f:seek("set", offset)
  f:write(bytes)
  f:close()
end

--- A name for an object the command creates; removed when the test ends.
local function fresh(tag)
  local name = util.name(tag)
  util.defer(function() lxshm.remove(name) end)
  return name
end

--- A file under the lxshm prefix that is not an lxshm object; removed when the test ends.
local function junk(tag, bytes)
  local name = util.name(tag)
  local f = assert(io.open(shm_path(name), "wb"))
  f:write(bytes)
  f:close()
  util.defer(function() os.remove(shm_path(name)) end)
  return name
end

--- A file that must not come to exist: the proof that a VALUE did not run.
local function canary()
  local path = os.tmpname()
  os.remove(path)
  util.defer(function() os.remove(path) end)
  return path
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
  end
  return f ~= nil
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]*") do
    if l ~= "" then
      t[#t + 1] = l
    end
  end
  return t
end

local function has_line(text, line)
  return ("\n" .. text):find("\n" .. line .. "\n", 1, true) ~= nil
end

--- The row of `name` in `lxshm ls` output, split into its cells.
local function ls_row(out, name)
  for _, l in ipairs(lines(out)) do
    local cells = {}
    for c in l:gmatch("%S+") do
      cells[#cells + 1] = c
    end
    if cells[1] == name then
      return cells, l
    end
  end
end

local COMMANDS = { "ls", "stat", "get", "put", "set", "push", "publish", "pop", "watch", "tail",
  "rm", "check", "create" }

describe("lxshm --help", function()
  it("lists every command, and each command has its own help", function()
    local out = cli.ok("--help")
    assert.truthy(out:find("^usage: lxshm COMMAND"))
    for _, c in ipairs(COMMANDS) do
      assert.truthy(out:find("\n  " .. c .. " ", 1, true), c)
      local help = cli.ok(c, "--help")
      assert.truthy(help:find("^usage: lxshm " .. c .. " "), help)
      assert.truthy(help:find("--url URL", 1, true), help)
    end
    local help = cli.ok("watch", "--help")
    assert.equal(help, cli.ok("help", "watch"))
    assert.equal(help, cli.ok("watch", "-h"))
    assert.equal(help, cli.ok("--url", "shm:", "watch", "x", "--count", "0", "--help"))
    assert.equal(out, cli.ok("help"))
    assert.truthy(cli.ok("--version"):find("^lxshm "))
  end)
end)

describe("usage errors", function()
  it("exit with status 2, one message and the usage line, and touch nothing", function()
    local seg, name = util.segment(64)
    assert(seg:put("kept"))
    local cases = {
      { {}, "lxshm: a COMMAND is needed" },
      { { "frob" }, "lxshm: no command 'frob'" },
      { { "--frob", "ls" }, "lxshm: unknown option --frob" },
      { { "help", "frob" }, "lxshm: no command 'frob'" },
      { { "get" }, "lxshm: get: NAME is missing" },
      { { "get", name, "k", "extra" }, "lxshm: get: unexpected argument 'extra'" },
      { { "get", name, "--frob" }, "lxshm: get: unknown option --frob" },
      { { "get", name, "-x" }, "lxshm: get: unknown option -x" },
      { { "get", name, "--json", "--raw" }, "lxshm: get: --json and --raw exclude each other" },
      { { "get", name, "--json=yes" }, "lxshm: get: option --json takes no value" },
      { { "put", name }, "lxshm: put: VALUE is missing (or use --stdin)" },
      { { "put", name, "1", "--stdin" }, "lxshm: put: give VALUE or --stdin, not both" },
      { { "put", name, "1", "--string", "--json" },
        "lxshm: put: --string and --json exclude each other" },
      { { "set", name, "k" }, "lxshm: set: VALUE is missing (or use --stdin)" },
      { { "set", name }, "lxshm: set: KEY is missing" },
      { { "set", name, "", "1" }, "lxshm: set: KEY must not be empty" },
      { { "set", name, "k", "1", "--ttl", "-1" },
        "lxshm: set: --ttl needs a number of seconds >= 0, not '-1'" },
      { { "set", name, "k", "1", "--ttl", "soon" },
        "lxshm: set: --ttl needs a number of seconds >= 0, not 'soon'" },
      { { "set", name, "nil", "1", "--lua-key" },
        "lxshm: set: a KEY is a non-empty string, a number (not NaN) or a boolean" },
      { { "pop", name, "--timeout" }, "lxshm: pop: option --timeout needs a value" },
      { { "pop", name, "--timeout", "nan" },
        "lxshm: pop: --timeout needs a number of seconds >= 0, not 'nan'" },
      { { "push", name, "1", "--timeout", "-0.5" },
        "lxshm: push: --timeout needs a number of seconds >= 0, not '-0.5'" },
      { { "watch", name, "--count", "0" },
        "lxshm: watch: --count needs a whole number >= 1, not '0'" },
      { { "tail", name, "--count", "1.5" },
        "lxshm: tail: --count needs a whole number >= 1, not '1.5'" },
      { { "tail", name, "--from", "newest" },
        "lxshm: tail: --from is new, oldest or a sequence number >= 1, not 'newest'" },
      { { "tail", name, "--from", "0" },
        "lxshm: tail: --from is new, oldest or a sequence number >= 1, not '0'" },
      { { "create", "pipe", name, "64" },
        "lxshm: create: KIND is segment, queue, dict or topic, not 'pipe'" },
      { { "create", "segment", name, "big" }, "lxshm: create: BYTES must be a number, not 'big'" },
      { { "create", "segment", name, "64", "--mode", "rw" },
        "lxshm: create: --mode is octal permission bits such as 0640, not 'rw'" },
      { { "create", "segment", name, "64", "--cursors", "4" },
        "lxshm: create: --cursors is for topics" },
      { { "create", "topic", name, "4096", "--cursors", "0" },
        "lxshm: create: --cursors needs a whole number >= 1, not '0'" },
      { { "ls", "--url" }, "lxshm: ls: option --url needs a value" },
      { { "rm" }, "lxshm: rm: NAME is missing" },
    }
    for _, case in ipairs(cases) do
      local args = case[1]
      local err = cli.misused(unpack(args))
      assert.equal(case[2], err:match("^[^\n]*"), table.concat(args, " "))
    end
    assert.equal("kept", seg:get())
    assert.equal(1, seg:version())
  end)

  it("takes -5, -.5 and -math.huge as values, and anything after -- as an argument", function()
    local seg, name = util.segment(64)
    cli.ok("put", name, "-5")
    assert.equal(-5, seg:get())
    cli.ok("put", name, "-.5")
    assert.equal(-0.5, seg:get())
    cli.ok("put", name, "-math.huge")
    assert.equal(-math.huge, seg:get())
    cli.ok("put", name, "--string", "--", "--json")
    assert.equal("--json", seg:get())
    cli.ok("put", "--string", name, "--", "-x")
    assert.equal("-x", seg:get())
    cli.ok("--url", "shm:", "put", "--url=shm:", name, "1")
    assert.equal(1, seg:get())
  end)
end)

describe("a VALUE", function()
  it("is data: a name, call or operator is refused and never runs", function()
    local seg, name = util.segment(256)
    assert(seg:put("before"))
    local path = canary()
    local touch = ('os.execute("touch %s")'):format(path)
    local attempts = {
      touch,
      "{ x = " .. touch .. " }",
      "{ [" .. touch .. "] = 1 }",
      "{ 1, 2, " .. touch .. " }",
      ('io.open("%s", "w")'):format(path),
      "(function() " .. touch .. " end)()",
      "function() " .. touch .. " end",
      ('require("os").execute("touch %s")'):format(path),
      ('load("os.execute(\'touch %s\')")()'):format(path),
      ('loadstring("os.execute(\'touch %s\')")()'):format(path),
      ('dofile("%s")'):format(path),
      '"a" .. ' .. touch,
      "1 + 2", "2 * 3", "#'abc'", "not true", "1 == 1", "x", "_G", "- x", "- -1", "{ x }",
      "{ math.pi }", "math.huge()", "math.huge.x", "math.hugely", "{ [x] = 1 }",
      "setmetatable({}, { __gc = function() " .. touch .. " end })",
      "1; " .. touch, "1 " .. touch, "return 1", "...", "{ ... }",
    }
    for _, text in ipairs(attempts) do
      local err = cli.misused("put", name, text)
      assert.truthy(err:find("^lxshm: put: VALUE is not a Lua literal: at character %d+"), err)
      assert.is_false(exists(path), text .. " ran")
    end
    for _, cmd in ipairs({ { "push", name }, { "publish", name }, { "set", name, "k" } }) do
      cmd[#cmd + 1] = touch
      cli.misused(unpack(cmd))
      assert.is_false(exists(path), cmd[1] .. " ran its VALUE")
    end
    assert.equal("before", seg:get())
    assert.equal(1, seg:version())
  end)

  it("is read as Lua reads literals: strings, numbers, tables, comments", function()
    local seg, name = util.segment(4096)
    local cases = {
      { "nil", nil }, { "true", true }, { "false", false },
      { "10", 10 }, { "10.0", 10.0 }, { "-7", -7 }, { "- 7", -7 }, { "1e3", 1e3 },
      { "0x10", 16 }, { "-0x10", -16 }, { ".5", 0.5 }, { "5.", 5.0 }, { "3e-2", 0.03 },
      { "math.huge", math.huge }, { "-math.huge", -math.huge }, { "- math.huge", -math.huge },
      { "0/0", 0 / 0 }, { "0 / 0", 0 / 0 }, { "-0.0", NEG_ZERO },
      { [["a\"b"]], 'a"b' },
      { [['it\'s']], "it's" }, { [["\65\066\x43\u{44}\u{e9}\z
            E"]], "ABCD\195\169E" },
      { [["tab\tnew\nline\\"]], "tab\tnew\nline\\" }, { [["\0zero"]], "\0zero" },
      { "[[long\nstring]]", "long\nstring" }, { "[==[a]]b]==]", "a]]b" },
      { "[[\nfirst newline dropped]]", "first newline dropped" },
      { "{}", {} }, { "{ 1, 2, 3, }", { 1, 2, 3 } }, { "{1;2;3}", { 1, 2, 3 } },
      { "{ 1, nil, 3 }", { 1, nil, 3 } },
      { '{hp=10, tags={"a"}}', { hp = 10, tags = { "a" } } },
      { '{ ["end"] = 1, [true] = "t", [2.5] = "f", [-1] = "m" }',
        { ["end"] = 1, [true] = "t", [2.5] = "f", [-1] = "m" } },
      { "{ a = { b = { c = { d = {} } } } }", { a = { b = { c = { d = {} } } } } },
    }
    -- these also stand for a whole VALUE on their own
    local whole = { { "-- a comment\n{ 1, --[[ inline ]] 2 } -- after", { 1, 2 } },
      { "  \t\n 42 \n", 42 }, { "- 7", -7 } }
    for _, case in ipairs(whole) do
      cases[#cases + 1] = case
    end
    if math_type then
      cases[#cases + 1] = { "-9223372036854775808", rawget(math, "mininteger") }
      cases[#cases + 1] = { "9223372036854775807", rawget(math, "maxinteger") }
    else -- doubles only (5.1, 5.2, LuaJIT): the nearest doubles, as Lua reads them
      cases[#cases + 1] = { "-9223372036854775808", -2 ^ 63 }
      cases[#cases + 1] = { "9223372036854775807", 2 ^ 63 }
    end
    -- all of them in one VALUE, each as a field's value (one process instead of forty)...
    local fields = {}
    for i, case in ipairs(cases) do
      fields[i] = "{ v = " .. case[1] .. "\n}"
    end
    cli.ok("put", name, "{\n" .. table.concat(fields, ",\n") .. "\n}")
    local got = seg:get()
    assert.equal(#cases, #got)
    for i, case in ipairs(cases) do
      assert.is_true(util.deep_equal(case[2], got[i].v), case[1] .. " read as "
        .. tostring(got[i].v))
    end
    -- ...and those that stand for a whole VALUE on their own
    for _, case in ipairs(whole) do
      cli.ok("put", name, case[1])
      assert.is_true(util.deep_equal(case[2], seg:get()), case[1])
    end
  end)

  it("refuses malformed literals with where and why", function()
    local _, name = util.segment(64)
    local cases = {
      { '"open', "at character 1 ('\"open'): unfinished string" },
      { "{ 1, 2", "at character 7 (the end): ',' or '}' expected in a table" },
      { "{ end = 1 }", "at character 3 ('end = 1 }'): 'end' is a reserved word" },
      { "{ [nil] = 1 }", "a table key cannot be nil" },
      { "{ [0/0] = 1 }", "a table key cannot be NaN" },
      { "1 2", "at character 3 ('2'): unexpected text after the value" },
      { "0x", "malformed number '0x'" }, { "1e", "malformed number '1e'" },
      { "3abc", "malformed number '3abc'" }, { "3g", "malformed number '3g'" },
      { [['it''s']], "at character 5 (''s''): unexpected text after the value" },
      { [["\q"]], "invalid escape sequence '\\q'" }, { [["\300"]], "decimal escape too large" },
      { [["\xZZ"]], "\\x needs two hexadecimal digits" }, { "[[open", "unfinished long string" },
      { "", "at character 1 (the end): a value was expected" },
      { string.rep("{", 201) .. string.rep("}", 201), "tables nested more than 200 deep" },
    }
    for _, case in ipairs(cases) do
      local err = cli.misused("put", name, case[1])
      assert.truthy(err:find(case[2], 1, true), err)
    end
  end)

  it("comes as a string (--string), as JSON (--json) or from standard input (--stdin)", function()
    local seg, name = util.segment(4096)
    cli.ok("put", name, "--string", '{not = "parsed"}')
    assert.equal('{not = "parsed"}', seg:get())
    cli.ok("put", name, "--json",
      '{"a": [1, 2.0, null, 3], "b": "\\u00e9\\ud83d\\ude00\\n", "c": {"d": false}, "e": -1.5e2}')
    assert.is_true(util.deep_equal({ a = { 1, 2.0, nil, 3 }, b = "\195\169\240\159\152\128\n",
      c = { d = false }, e = -150.0 }, seg:get()))
    cli.ok("put", name, "--json", "null")
    assert.is_nil(seg:get())
    cli.ok("put", name, "--stdin", { stdin = "{ from = 'stdin' }\n" })
    assert.same({ from = "stdin" }, seg:get())
    cli.ok("put", name, "--stdin", "--string", { stdin = "raw\0bytes\n" })
    assert.equal("raw\0bytes\n", seg:get())
    cli.ok("put", name, "--stdin", "--json", { stdin = '[1, "two"]' })
    assert.same({ 1, "two" }, seg:get())
    for _, bad in ipairs({ "{a: 1}", "[1,]", "01", "1.", ".5", "'x'", '"\\x"', "tru", "[1] 2",
      '"\\ud83d"', "NaN", "+1" }) do
      local err = cli.misused("put", name, "--json", bad)
      assert.truthy(err:find("^lxshm: put: VALUE is not JSON: at character %d+"),
        bad .. ": " .. err)
    end
    assert.same({ 1, "two" }, seg:get())
  end)
end)

describe("a segment", function()
  it("put, get, stat and ls through the command, read by the module", function()
    local seg, name = util.segment(256)
    assert.equal("nil\n", cli.ok("get", name))
    cli.ok("put", name, '{hp=10, tags={"a"}}')
    assert.same({ hp = 10, tags = { "a" } }, seg:get())
    assert.equal('{ hp = 10, tags = { "a" } }\n', cli.ok("get", name))
    assert.equal('{"hp":10,"tags":["a"]}\n', cli.ok("get", name, "--json"))
    local stat = cli.ok("stat", name)
    assert.truthy(has_line(stat, "name         " .. name), stat)
    assert.truthy(has_line(stat, "kind         segment"), stat)
    assert.truthy(has_line(stat, "size         256"), stat)
    assert.truthy(has_line(stat, "version      1"), stat)
    assert.truthy(stat:find("\nwriter_pid   %d+\n"), stat)
    assert.truthy(stat:find("\nupdated      %d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%d\n"), stat)
    local json = cli.ok("stat", name, "--json")
    assert.truthy(json:find('"kind":"segment"', 1, true), json)
    assert.truthy(json:find('"version":1', 1, true), json)
    assert.truthy(json:find('"size":256', 1, true), json)
    local row = ls_row(cli.ok("ls"), name)
    assert.same({ name, "segment", "256", tostring(seg:stat().used), "version", "1" },
      { row[1], row[2], row[3], row[4], row[5], row[6] })
    assert.equal(tostring(seg:stat().writer_pid), row[7])
  end)

  it("prints what the module stored, keeping integers, floats, infinities and NaN apart", function()
    local seg, name = util.segment(1024)
    assert(seg:put({ i = 10, f = 10.5, h = math.huge, m = -math.huge, n = 0 / 0, z = NEG_ZERO,
      s = "tab\there \"quoted\" \0 \195\169", list = { 1, 2, { 3 } }, [true] = false,
      [2.5] = "x", ["not an id"] = 1, ["end"] = 2 }))
    local out = cli.ok("get", name)
    -- the printed literal reads back as the same value
    cli.ok("put", name, out)
    local v = seg:get()
    assert.equal(10, v.i)
    assert.equal(10.5, v.f)
    assert.equal(math.huge, v.h)
    assert.equal(-math.huge, v.m)
    assert.is_true(v.n ~= v.n)
    assert.equal(-math.huge, 1 / v.z)
    assert.equal("tab\there \"quoted\" \0 \195\169", v.s)
    assert.is_true(util.deep_equal({ 1, 2, { 3 } }, v.list))
    assert.is_false(v[true])
    assert.equal("x", v[2.5])
    assert.equal(1, v["not an id"])
    assert.equal(2, v["end"])
    assert.truthy(out:find("n = 0/0", 1, true), out)
    assert.truthy(out:find("h = math.huge", 1, true), out)
    assert.truthy(out:find("z = -0.0", 1, true), out)
    assert.truthy(out:find('["end"] = 2', 1, true), out)
    if math_type then
      assert(seg:put({ 1.0, 2 }))
      assert.equal("{ 1.0, 2 }\n", cli.ok("get", name))
      assert.equal("[1.0,2]\n", cli.ok("get", name, "--json"))
      cli.ok("put", name, "--json", "[1.0, 2]")
      assert.equal("float", math_type(seg:get()[1]))
      assert.equal("integer", math_type(seg:get()[2]))
    else -- doubles only: 1.0 is the number 1, stored and shown as an integer
      assert(seg:put({ 1.0, 2 }))
      assert.equal("{ 1, 2 }\n", cli.ok("get", name))
      assert.equal("[1,2]\n", cli.ok("get", name, "--json"))
      cli.ok("put", name, "--json", "[1.0, 2]")
      assert.equal(util.hex(lxshm.encode({ 1, 2 })), util.hex(seg:read()))
    end
  end)

  it("prints a string that is not UTF-8 with escapes, and a cycle as a comment", function()
    local seg, name = util.segment(256)
    assert(seg:put("\255\254 bytes"))
    assert.equal('"\\255\\254 bytes"\n', cli.ok("get", name))
    local t = { name = "loop" }
    t.self = t
    assert(seg:put(t))
    local out = cli.ok("get", name)
    assert.equal('{ name = "loop", self = nil --[[ a cycle: this table contains itself ]] }\n', out)
  end)

  it("breaks a long table over lines, indented", function()
    local seg, name = util.segment(4096)
    local list = {}
    for i = 1, 30 do
      list[i] = "item" .. i
    end
    assert(seg:put({ list = list, n = 1 }))
    local out = cli.ok("get", name)
    assert.truthy(out:find("^{\n  list = {\n    \"item1\",\n    \"item2\",\n"), out)
    assert.truthy(out:find("\n  },\n  n = 1\n}\n$"), out)
  end)

  it("--raw prints a string's bytes as they are, other values as MessagePack", function()
    local seg, name = util.segment(256)
    assert(seg:write("\0binary\255"))
    assert.equal("\0binary\255", cli.ok("get", name, "--raw"))
    assert(seg:put({ 1, "two" }))
    assert.equal(lxshm.encode({ 1, "two" }), cli.ok("get", name, "--raw"))
  end)

  it("--json refuses, with where and why, what JSON cannot hold", function()
    local seg, name = util.segment(1024)
    local t = {}
    t.a = { t }
    local cases = {
      { { a = { [1.5] = 1 } }, "the value at .a has the key 1.5: JSON objects have string keys "
        .. "only, and arrays hold exactly the keys 1..n" },
      { { 1, 2, x = 3 }, "the value has the key 1" },
      { { "ok", { 0 / 0 } }, "the value at [2][1] is 0/0, which JSON cannot hold" },
      { { ["a b"] = math.huge }, 'the value at ["a b"] is math.huge, which JSON cannot hold' },
      { { s = "\255" }, "the value at .s is not UTF-8 text (JSON strings are text)" },
      { t, "the value at .a[1] contains itself (a cycle): JSON cannot say that" },
    }
    for _, case in ipairs(cases) do
      assert(seg:put(case[1]))
      local err = cli.fails("UNSUPPORTED", "get", name, "--json")
      assert.truthy(err:find("lxshm: " .. name .. ": " .. case[2], 1, true), err)
    end
  end)

  it("fails with lxshm: NAME: message (CODE) when the module refuses", function()
    local _, name = util.segment(16)
    local missing = util.name("none")
    assert.equal("lxshm: " .. missing .. ": does not exist (NOT_FOUND)",
      cli.fails("NOT_FOUND", "get", missing))
    assert.equal("lxshm: " .. missing .. ": does not exist (NOT_FOUND)",
      cli.fails("NOT_FOUND", "put", missing, "1"))
    local err = cli.fails("INVALID_SIZE", "put", name, "--string", string.rep("x", 17))
    assert.truthy(err:find("^lxshm: " .. name:gsub("%-", "%%-") .. ": "), err)
    assert.truthy(cli.fails("INVALID", "get", "bad/name"):find('^lxshm: "bad/name": invalid name'))
    assert.truthy(cli.fails("INVALID", "get", name, "key"):find(
      "is a segment, and get NAME KEY works on a dict; a segment takes put, get and watch", 1,
      true))
    for _, cmd in ipairs({ { "push", name, "1" }, { "pop", name }, { "publish", name, "1" },
      { "set", name, "k", "1" }, { "tail", name } }) do
      local e = cli.fails("INVALID", unpack(cmd))
      assert.truthy(e:find("lxshm: " .. name .. ": is a segment, and " .. cmd[1] .. " works on a",
        1, true), e)
    end
  end)

  it("watch prints the current value, then each value another process commits", function()
    local seg, name = util.segment(256)
    local w = cli.start("watch", name, "--count", "3")
    w:await("0\tnil")
    cli.ok("put", name, "1")
    w:await("1\t1")
    cli.ok("put", name, '{ a = "x" }')
    w:await('2\t{ a = "x" }')
    assert.equal(0, w:wait())
    assert.equal('0\tnil\n1\t1\n2\t{ a = "x" }\n', w:stdout())

    local j = cli.start("watch", name, "--json", "--count", "2")
    j:await('{"version":2,"value":{"a":"x"}}')
    cli.ok("put", name, "[[two\nlines]]")
    assert.equal(0, j:wait())
    assert.equal('{"version":2,"value":{"a":"x"}}\n{"version":3,"value":"two\\nlines"}\n',
      j:stdout())
    assert(seg:put(0 / 0))
    local bad = cli.start("watch", name, "--json")
    assert.equal(1, bad:wait())
    assert.equal("lxshm: " .. name .. ": the value is 0/0, which JSON cannot hold (UNSUPPORTED)\n",
      bad:stderr())
  end)

  it("watch and pop end on Ctrl-C with status 130, quietly", function()
    local _, name = util.segment(64)
    local w = cli.start("watch", name)
    w:await("0\tnil")
    w:kill("INT")
    assert.equal(130, w:wait())
    assert.equal("", w:stderr())
    local q, qname = util.queue(256)
    local p = cli.start("pop", qname)
    util.eventually(function() return q:stat().pop_waiters == 1 end, 10, "pop to wait")
    p:kill("INT")
    assert.equal(130, p:wait())
    assert.equal("", p:stderr())
  end)

  it("put through a read-only path is refused by the module, not by a crash", function()
    local seg, name = util.segment(64)
    assert(seg:put("mine"))
    os.execute("chmod 0400 " .. shm_path(name))
    if is_root then -- root ignores the mode: the write goes through
      cli.ok("put", name, "1")
      assert.equal(1, seg:get())
    else
      cli.fails("PERMISSION", "put", name, "1")
      assert.equal("mine", seg:get())
    end
    assert.equal(seg:get() == 1 and "1\n" or '"mine"\n', cli.ok("get", name))
  end)
end)

describe("a queue", function()
  it("push, get (the oldest), stat, ls and pop, in order, across processes", function()
    local q, name = util.queue(1024)
    cli.ok("push", name, "{job = 1}")
    cli.ok("push", name, "--json", '{"job": 2}')
    cli.ok("push", name, "nil")
    assert.equal(3, q:count())
    assert.equal("{ job = 1 }\n", cli.ok("get", name))
    assert.equal(3, q:count())
    local stat = cli.ok("stat", name)
    assert.truthy(has_line(stat, "kind         queue"), stat)
    assert.truthy(has_line(stat, "count        3"), stat)
    assert.truthy(has_line(stat, "pop_waiters  0"), stat)
    local row = ls_row(cli.ok("ls"), name)
    assert.same({ name, "queue", tostring(q:size()), tostring(q:used()), "3", "values", "-", "-",
      "0" }, row)
    assert.equal("{ job = 1 }\n", cli.ok("pop", name))
    assert.equal('{"job":2}\n', cli.ok("pop", name, "--json"))
    assert.equal("nil\n", cli.ok("pop", name))
    assert.equal("lxshm: " .. name .. ": queue is empty (TIMEOUT)",
      cli.fails("TIMEOUT", "pop", name, "--timeout", "0"))
    assert.equal("lxshm: " .. name .. ": queue is empty (TIMEOUT)",
      cli.fails("TIMEOUT", "get", name))
  end)

  it("pop waits for a value another process pushes", function()
    local q, name = util.queue(1024)
    local p = cli.start("pop", name, "--timeout", "30")
    util.eventually(function() return q:stat().pop_waiters == 1 end, 10, "pop to wait")
    cli.ok("push", name, '"wake up"')
    assert.equal(0, p:wait())
    assert.equal('"wake up"\n', p:stdout())
  end)

  it("push waits for room, and times out when there is none", function()
    local q, name = util.queue(64)
    assert(q:push(string.rep("x", 40)))
    local err = cli.fails("TIMEOUT", "push", name, "--string", string.rep("y", 30), "--timeout",
      "0.05")
    assert.truthy(err:find("^lxshm: " .. name:gsub("%-", "%%-") .. ": "), err)
    assert.equal(1, q:count())
    cli.fails("INVALID_SIZE", "push", name, "--string", string.rep("z", 100))
  end)
end)

describe("a dictionary", function()
  --- A new dictionary, closed and removed when the test ends.
  local function dict(bytes)
    local name = util.name("dict")
    local d = assert(lxshm.create_dict(name, bytes or 65536))
    util.defer(function()
      d:close()
      lxshm.remove(name)
    end)
    return d, name
  end

  it("set, get, stat, ls and check through the command, read by the module", function()
    local d, name = dict()
    cli.ok("set", name, "hp", "10")
    cli.ok("set", name, "tags", '{"a", "b"}')
    cli.ok("set", name, "1", '"the integer key"', "--lua-key")
    cli.ok("set", name, "1", '"the string key"')
    cli.ok("set", name, "greeting", "--string", "hello")
    assert.equal(10, d:get("hp"))
    assert.same({ "a", "b" }, d:get("tags"))
    assert.equal("the integer key", d:get(1))
    assert.equal("the integer key", d:get(1.0))
    assert.equal("the string key", d:get("1"))
    assert.equal("hello", d:get("greeting"))
    assert.equal("10\n", cli.ok("get", name, "hp"))
    assert.equal('"the integer key"\n', cli.ok("get", name, "1.0", "--lua-key"))
    assert.equal('"the string key"\n', cli.ok("get", name, "1"))
    assert.equal('["a","b"]\n', cli.ok("get", name, "tags", "--json"))
    assert.equal('{\n  "the integer key",\n  ["1"] = "the string key",\n  greeting = "hello",\n'
      .. '  hp = 10,\n  tags = { "a", "b" }\n}\n', cli.ok("get", name))
    assert.equal("lxshm: " .. name .. ': the value has the key 1: JSON objects have string keys '
      .. "only, and arrays hold exactly the keys 1..n (UNSUPPORTED)",
      cli.fails("UNSUPPORTED", "get", name, "--json"))
    assert.equal("lxshm: " .. name .. '["nope"]: no such key (NOT_FOUND)',
      cli.fails("NOT_FOUND", "get", name, "nope"))
    local stat = cli.ok("stat", name)
    assert.truthy(has_line(stat, "kind         dict"), stat)
    assert.truthy(has_line(stat, "count        5"), stat)
    assert.truthy(has_line(stat, "capacity     " .. d:capacity()), stat)
    local row = ls_row(cli.ok("ls"), name)
    assert.same({ name, "dict", tostring(d:capacity()), tostring(d:stat().used), "5", "keys", "-",
      "-", "0" }, row)
    assert.equal(name .. ": ok (dict: every invariant holds)\n", cli.ok("check", name))
    cli.ok("set", name, "hp", "nil")
    assert.is_nil(d:get("hp"))
    assert.equal(4, d:count())
  end)

  it("set --ttl gives the key an expiry", function()
    local d, name = dict()
    cli.ok("set", name, "session", "{user = 'alice'}", "--ttl", "300")
    local ttl = d:ttl("session")
    assert.is_true(ttl > 250 and ttl <= 300, tostring(ttl))
    cli.ok("set", name, "forever", "1", "--ttl", "0")
    assert.equal(math.huge, d:ttl("forever"))
  end)

  it("set notes on standard error the live keys it evicted for room", function()
    local d, name = dict(8192)
    local i = 0
    while d:free_space() > 600 do
      i = i + 1
      assert(d:safe_set("filler" .. i, string.rep("x", 200)))
    end
    local before = d:count()
    local r = cli.start("set", name, "big", "--string", string.rep("y", 1500))
    assert.equal(0, r:wait())
    local evicted = tonumber(r:stderr():match("^lxshm: " .. name:gsub("%-", "%%-")
      .. ": evicted (%d+) live keys? to make room\n$"))
    assert.is_truthy(evicted and evicted > 0, r:stderr())
    assert.equal(before + 1 - evicted, d:count())
    assert.equal(string.rep("y", 1500), d:get("big"))
  end)

  it("watch KEY prints each version another process commits; a dictionary needs a KEY", function()
    local _, name = dict()
    local w = cli.start("watch", name, "hp", "--count", "3")
    w:await("0\tnil")
    cli.ok("set", name, "other", "1") -- another key: not printed
    cli.ok("set", name, "hp", "10")
    util.eventually(function() return w:stdout():find("\t10\n", 1, true) end, 10, "hp = 10")
    cli.ok("set", name, "hp", "nil")
    assert.equal(0, w:wait())
    local out = lines(w:stdout())
    assert.equal(3, #out)
    assert.truthy(out[2]:find("^%d+\t10$"), out[2])
    assert.equal("0\tnil", out[3])
    assert.equal("lxshm: watch: a dictionary is watched one KEY at a time: lxshm watch " .. name
      .. " KEY", cli.misused("watch", name):match("^[^\n]*"))
  end)

  it("is refused by the commands of other kinds", function()
    local _, name = dict()
    for _, cmd in ipairs({ { "put", name, "1" }, { "push", name, "1" }, { "pop", name },
      { "publish", name, "1" }, { "tail", name } }) do
      local e = cli.fails("INVALID", unpack(cmd))
      assert.truthy(e:find("is a dict, and " .. cmd[1] .. " works on a", 1, true), e)
    end
  end)

  it("is made by create, with the capacity asked for", function()
    local name = fresh("mkd")
    cli.ok("create", "dict", name, "100000")
    assert.is_true(assert(lxshm.open_dict(name)):capacity() >= 100000)
  end)
end)

describe("a topic", function()
  --- A new topic, closed and removed when the test ends.
  local function topic(bytes, opts)
    local name = util.name("topic")
    local t = assert(lxshm.create_topic(name, bytes or 4096, opts))
    util.defer(function()
      t:close()
      lxshm.remove(name)
    end)
    return t, name
  end

  it("publish, get (the last), stat, ls, check and tail through the command", function()
    local t, name = topic()
    assert.equal("lxshm: " .. name .. ": no message published yet (NOT_FOUND)",
      cli.fails("NOT_FOUND", "get", name))
    assert.equal("1\n", cli.ok("publish", name, "{hp = 1}"))
    assert.equal("2\n", cli.ok("publish", name, "--json", '"two"'))
    assert.equal("3\n", cli.ok("publish", name, "nil"))
    assert.equal(3, t:last())
    assert.equal("nil\n", cli.ok("get", name))
    local stat = cli.ok("stat", name)
    assert.truthy(has_line(stat, "kind         topic"), stat)
    assert.truthy(has_line(stat, "last         3"), stat)
    assert.truthy(has_line(stat, "oldest       1"), stat)
    local row = ls_row(cli.ok("ls"), name)
    assert.same({ name, "topic", tostring(t:stat().size), "-", "last", "3", "-", "-", "0" }, row)
    assert.equal(name .. ": ok (topic: 3 messages held, each decodes)\n", cli.ok("check", name))
    assert.equal('1\t{ hp = 1 }\n2\t"two"\n3\tnil\n',
      cli.ok("tail", name, "--from", "oldest", "--count", "3"))
    assert.equal('{"seq":2,"value":"two"}\n{"seq":3,"value":null}\n',
      cli.ok("tail", name, "--from", "2", "--count", "2", "--json"))
    assert.equal("two\n", cli.ok("tail", name, "--from", "2", "--count", "1", "--raw"))
  end)

  it("tail follows what another process publishes, and ends on Ctrl-C", function()
    local t, name = topic()
    local r = cli.start("tail", name, "--from", "1", "--count", "2")
    util.eventually(function() return t:stat().waiters == 1 end, 10, "tail to wait")
    cli.ok("publish", name, '"first"')
    r:await('1\t"first"')
    cli.ok("publish", name, "{ n = 2 }")
    assert.equal(0, r:wait())
    assert.equal('1\t"first"\n2\t{ n = 2 }\n', r:stdout())
    assert.equal("", r:stderr())

    local f = cli.start("tail", name)
    util.eventually(function() return t:stat().waiters == 1 end, 10, "tail to wait")
    cli.ok("publish", name, "3")
    f:await("3\t3")
    f:kill("INT")
    assert.equal(130, f:wait())
    assert.equal("", f:stderr())
  end)

  it("tail reports the messages overwritten before it read them", function()
    local t, name = topic(1024)
    for i = 1, 200 do
      assert(t:publish({ i = i, pad = string.rep("x", 40) }))
    end
    local oldest = t:stat().oldest
    assert.is_true(oldest > 2)
    local r = cli.start("tail", name, "--from", "1", "--count", "1")
    assert.equal(0, r:wait())
    assert.equal(("%d\t{ i = %d, pad = %q }\n"):format(oldest, oldest, string.rep("x", 40)),
      r:stdout())
    assert.equal(("lxshm: %s: lost %d messages (overwritten before they were read)\n")
      :format(name, oldest - 1), r:stderr())
    local j = cli.start("tail", name, "--from", "1", "--count", "1", "--json")
    assert.equal(0, j:wait())
    assert.truthy(j:stdout():find(('^{"seq":%d,"lost":%d,"value":{'):format(oldest, oldest - 1)),
      j:stdout())
  end)

  it("tail --name resumes where that name stopped, even after Ctrl-C", function()
    local t, name = topic(4096, { cursors = 2 })
    for i = 1, 3 do
      assert(t:publish(i))
    end
    assert.equal("1\t1\n", cli.ok("tail", name, "--name", "me", "--from", "oldest", "--count", "1"))
    assert.equal(1, t:stat().subscribers)
    local r = cli.start("tail", name, "--name", "me", "--from", "oldest")
    r:await("3\t3")
    r:kill("INT")
    assert.equal(130, r:wait())
    assert.equal("2\t2\n3\t3\n", r:stdout())
    assert(t:publish(4))
    assert.equal("4\t4\n", cli.ok("tail", name, "--name", "me", "--count", "1"))
    cli.ok("tail", name, "--name", "you", "--count", "1", "--from", "oldest")
    assert.truthy(cli.fails("FULL", "tail", name, "--name", "them", "--count", "1"):find(
      "^lxshm: " .. name:gsub("%-", "%%-") .. ": "))
  end)

  it("is refused by the commands of other kinds, and made by create", function()
    local _, name = topic()
    for _, cmd in ipairs({ { "put", name, "1" }, { "push", name, "1" }, { "pop", name },
      { "set", name, "k", "1" }, { "watch", name } }) do
      local e = cli.fails("INVALID", unpack(cmd))
      assert.truthy(e:find("is a topic, and " .. cmd[1] .. " works on a", 1, true), e)
    end
    local made = fresh("mkt")
    cli.ok("create", "topic", made, "8192", "--cursors", "4")
    assert.equal(8192, assert(lxshm.open_topic(made)):stat().size)
  end)
end)

describe("lxshm ls", function()
  it("lists damaged objects with their status instead of skipping them", function()
    local seg, good = util.segment(64, "good")
    assert(seg:put("fine"))
    local garbage = junk("garbage", string.rep("\222\173\190\239", 512))
    local empty = junk("empty", "")
    local _, damaged = util.segment(64, "damaged")
    poke(damaged, 16, "\0\0\0\0\0\0\1\0") -- the capacity no longer matches the object's size
    local _, newer = util.segment(64, "newer")
    poke(newer, 8, "\7\0\0\0") -- a kind this build does not know
    local out = cli.ok("ls")
    local row = ls_row(out, good)
    assert.equal("segment", row[2])
    local _, line = ls_row(out, garbage)
    assert.truthy(line:find("^" .. garbage:gsub("%-", "%%-") .. " +INVALID +not an lxshm object$"),
      line)
    _, line = ls_row(out, empty)
    assert.truthy(line:find(" CORRUPT +never finished initializing", 1, false), line)
    _, line = ls_row(out, damaged)
    assert.truthy(line:find(" CORRUPT ", 1, true), line)
    _, line = ls_row(out, newer)
    assert.truthy(line:find(" INVALID +made by a newer lxshm"), line)
    -- sorted by name, a header first
    local all = lines(out)
    assert.truthy(all[1]:find("^NAME +KIND +SIZE +USED +STATE +WRITER +UPDATED +WAITERS$"), all[1])
    for i = 3, #all do
      assert.is_true(all[i - 1]:match("^%S+") < all[i]:match("^%S+"))
    end
    local json = cli.ok("ls", "--json")
    assert.truthy(json:find(('{"error":"not an lxshm object","name":"%s","status":"INVALID"}')
      :format(garbage), 1, true), json)
    assert.truthy(json:find(('"name":"%s","size":64,"status":"OK"'):format(good), 1, true), json)
    assert.truthy(json:find('^%[{.*}%]\n$'), json)
  end)

  it("keeps only the names that match a PATTERN", function()
    local _, a = util.segment(64, "pat")
    local _, b = util.queue(64, "pat")
    local _, c = util.segment(64, "other")
    local prefix = "t" .. proc.pid() .. "-pat-"
    local out = cli.ok("ls", prefix .. "*")
    assert.truthy(ls_row(out, a))
    assert.truthy(ls_row(out, b))
    assert.is_nil(ls_row(out, c))
    assert.equal(3, #lines(out))
    assert.equal("", cli.ok("ls", "no-such-name-?"))
    assert.equal("[]\n", cli.ok("ls", "no-such-name-?", "--json"))
    out = cli.ok("ls", a, c:gsub("r%-", "?-"))
    assert.equal(3, #lines(out))
  end)

  it("shows another user's object as theirs, and opens it read-only with --trust", function()
    if not is_root then
      io.stderr:write("\n# cli_spec: not run as root, so another user's object in ls was not "
        .. "checked\n")
      return
    end
    local seg, name = util.segment(64)
    assert(seg:put("theirs"))
    assert(util.execute(("chown %d %s"):format(NOBODY, shm_path(name))))
    local _, line = ls_row(cli.ok("ls"), name)
    assert.truthy(line:find(" PERMISSION +belongs to user nobody %(uid 65534%)"), line)
    assert.equal("segment", ls_row(cli.ok("ls", "--trust"), name)[2])
    assert.truthy(cli.fails("PERMISSION", "get", name):find("belongs to user nobody", 1, true))
    assert.equal('"theirs"\n', cli.ok("get", name, "--trust"))
  end)
end)

describe("lxshm rm", function()
  it("removes every NAME, reports each one missing, and --force ignores those", function()
    local a, b, missing = fresh("rm"), fresh("rm"), util.name("none")
    assert(lxshm.create(a, 64)):close()
    assert(lxshm.create_queue(b, 64)):close()
    local r = cli.start("rm", a, missing, b)
    assert.equal(1, r:wait())
    assert.equal("lxshm: " .. missing .. ": does not exist (NOT_FOUND)\n", r:stderr())
    assert.equal(lxshm.NOT_FOUND, select(3, lxshm.open(a)))
    assert.equal(lxshm.NOT_FOUND, select(3, lxshm.open_queue(b)))
    assert.equal("", cli.ok("rm", "--force", missing))
    cli.fails("INVALID", "rm", "bad/name")
  end)
end)

describe("lxshm check", function()
  it("says ok for sound objects and names the damage of others", function()
    local seg, good = util.segment(4096)
    assert(seg:put({ 1, 2, 3 }))
    local q, qname = util.queue(256)
    assert(q:push("x"))
    assert.equal(good .. ": ok (segment: value decodes)\n" .. qname
      .. ": ok (queue: 1 value, the oldest decodes)\n", cli.ok("check", good, qname))
    poke(good, 1024 + 4096, "\193") -- the stored value's first byte: never valid MessagePack
    local garbage = junk("garbage", string.rep("x", 2048))
    local r = cli.start("check", qname, good, garbage)
    assert.equal(1, r:wait())
    assert.equal(qname .. ": ok (queue: 1 value, the oldest decodes)\n", r:stdout())
    local err = lines(r:stderr())
    assert.equal(2, #err)
    assert.truthy(err[1]:find("^lxshm: " .. good:gsub("%-", "%%-") .. ": .*%(CORRUPT%)$"), err[1])
    assert.equal("lxshm: " .. garbage .. ": not an lxshm object (INVALID)", err[2])
  end)
end)

describe("lxshm create", function()
  it("makes objects of every kind this build has, with a mode", function()
    local s, q = fresh("mk"), fresh("mk")
    assert.equal("", cli.ok("create", "segment", s, "128", "--mode", "0640"))
    assert.equal(128, assert(lxshm.open(s)):size())
    assert.equal(tonumber("640", 8), proc.file_mode(shm_path(s)))
    cli.ok("create", "queue", q, "1000")
    assert.equal(1000, assert(lxshm.open_queue(q)):size())
    assert.equal("lxshm: " .. s .. ": already exists (EXISTS)",
      cli.fails("EXISTS", "create", "queue", s, "64"))
    cli.fails("INVALID_SIZE", "create", "segment", fresh("mk"), "0")
    cli.fails("INVALID_SIZE", "create", "segment", fresh("mk"), "1.5")
  end)
end)

describe("--url", function()
  it("shm: is this machine, as without --url, and LXSHM_URL sets the default", function()
    local seg, name = util.segment(64)
    cli.ok("--url", "shm:", "put", name, "1")
    assert.equal(1, seg:get())
    assert.equal("1\n", cli.ok("get", name, "--url", "shm:"))
    assert.equal("1\n", cli.ok("get", name, { env = { LXSHM_URL = "shm:" } }))
    assert.truthy(ls_row(cli.ok("ls", "--url=shm:"), name))
  end)

  it("an unknown scheme or a missing backend is a failure, not a crash", function()
    local err = cli.fails(lxshm.connect and "INVALID" or "UNSUPPORTED", "ls", "--url",
      "ftp://example.invalid")
    assert.truthy(err:find("^lxshm: ftp://example.invalid: "), err)
  end)
end)

describe("--url on Redis", function()
  local servers = require("redis_server")

  --- A throw-away Redis server, stopped when the test ends.
  local function redis()
    local found = io.popen("command -v redis-server; command -v redis-cli"):read("*a")
    assert(select(2, found:gsub("\n", "")) == 2,
      "redis-server and redis-cli are needed (make test installs them)")
    assert(servers.backend(), "the Redis backend lxshm.redis is not built")
    local server = servers.single()
    util.defer(function() server:stop() end)
    return server
  end

  --- Runs the same session of commands on a backend and returns what each printed.
  local function session(url, name)
    local said = {}
    local function run(...)
      local status, out, err = cli.run("--url", url, ...)
      said[#said + 1] = table.concat({ ... }, " "):sub(1, 60) .. " -> " .. status .. "\n" .. out
        .. err
    end
    run("create", "segment", name .. ".s", "1024")
    run("put", name .. ".s", '{hp = 10, tags = {"a"}, ratio = 0.5}')
    run("get", name .. ".s")
    run("get", name .. ".s", "--json")
    run("put", name .. ".s", "--string", string.rep("x", 2000))
    run("create", "queue", name .. ".q", "1024")
    run("push", name .. ".q", "{job = 1}")
    run("push", name .. ".q", "nil")
    run("get", name .. ".q")
    run("pop", name .. ".q")
    run("pop", name .. ".q")
    run("pop", name .. ".q", "--timeout", "0")
    run("create", "dict", name .. ".d", "65536")
    run("set", name .. ".d", "hp", "10")
    run("set", name .. ".d", "1", "true", "--lua-key")
    run("get", name .. ".d", "hp")
    run("get", name .. ".d")
    run("get", name .. ".d", "missing")
    run("create", "topic", name .. ".t", "65536")
    run("publish", name .. ".t", "{n = 1}")
    run("publish", name .. ".t", '"two"')
    run("get", name .. ".t")
    run("tail", name .. ".t", "--from", "oldest", "--count", "2")
    run("check", name .. ".s", name .. ".q", name .. ".d", name .. ".t")
    run("put", name .. ".q", "1")
    run("create", "segment", name .. ".s", "1024")
    run("rm", name .. ".s", name .. ".q", name .. ".d", name .. ".t", name .. ".none")
    run("get", name .. ".s")
    return said
  end

  it("every command says the same on Redis as on this machine", function()
    local server = redis()
    local name = util.name("same")
    util.defer(function()
      for _, suffix in ipairs({ ".s", ".q", ".d", ".t" }) do
        lxshm.remove(name .. suffix)
      end
    end)
    local here, there = session("shm:", name), session(server.url, name)
    for i = 1, math.max(#here, #there) do
      assert.equal(here[i], there[i])
    end
    assert.equal(here[1], "create segment " .. name .. ".s 1024 -> 0\n")
  end)

  it("watch and tail see what another process commits on Redis", function()
    local server = redis()
    local name = util.name("follow")
    cli.ok("--url", server.url, "create", "segment", name, "256")
    local w = cli.start("--url", server.url, "watch", name, "--count", "2")
    w:await("0\tnil")
    cli.ok("--url", server.url, "put", name, "{ a = 1 }")
    assert.equal(0, w:wait())
    assert.equal("0\tnil\n1\t{ a = 1 }\n", w:stdout())
    cli.ok("--url", server.url, "create", "topic", name .. ".t", "65536")
    local t = cli.start("--url", server.url, "tail", name .. ".t", "--from", "1", "--count", "2")
    cli.ok("--url", server.url, "publish", name .. ".t", '"one"')
    t:await('1\t"one"')
    cli.ok("--url", server.url, "publish", name .. ".t", '"two"')
    assert.equal(0, t:wait())
    assert.equal('1\t"one"\n2\t"two"\n', t:stdout())
  end)

  it("a server that cannot be reached is UNAVAILABLE; ls lists a server's objects", function()
    local server = redis()
    local err = cli.fails("UNAVAILABLE", "get", "x", "--url", "redis+unix://" .. server.dir
      .. "/nobody.sock")
    assert.truthy(err:find("^lxshm: redis%+unix://"), err)
    local name = util.name("ls")
    cli.ok("--url", server.url, "create", "queue", name, "64")
    assert.equal("queue", ls_row(cli.ok("ls", "--url", server.url), name)[2])
  end)
end)

describe("bin/lxshm", function()
  it("is Lua 5.1 syntax, so that every runtime lxshm supports can run it", function()
    local found = {}
    for _, lua in ipairs({ "lua5.1", "lua5.2", "lua5.3", "lua5.4", "luajit" }) do
      if util.execute("command -v " .. lua .. " >/dev/null 2>&1") then
        found[#found + 1] = lua
        local ok = os.execute(lua .. [[ -e 'assert(loadfile("bin/lxshm"))' 2>/dev/null]])
        assert.is_truthy(ok == true or ok == 0, lua .. " cannot load bin/lxshm")
      end
    end
    if #found < 5 then
      io.stderr:write("\n# cli_spec: bin/lxshm was parsed by ", table.concat(found, ", "),
        " only: the others are not installed\n")
    end
  end)
end)

describe("make install", function()
  it("puts the command in BINDIR, for this runtime, and it runs from there", function()
    local runtime = rawget(_G, "jit") and "luajit" or "lua" .. _VERSION:match("%d%.%d")
    local version = runtime == "luajit" and "5.1" or _VERSION:match("%d%.%d")
    local tmp = os.tmpname()
    os.remove(tmp)
    util.defer(function() os.execute("rm -rf '" .. tmp .. "'") end)
    local make = ("env -u MAKEFLAGS -u MAKELEVEL -u LD_PRELOAD make -s install-lua install-bin "
      .. "LUA=%s PREFIX='%s' >/dev/null"):format(runtime, tmp)
    local ok = os.execute(make)
    assert.is_truthy(ok == true or ok == 0, make)
    local f = assert(io.open(tmp .. "/bin/lxshm", "rb"))
    assert.equal("#!/usr/bin/env " .. runtime .. "\n", f:read("*l") .. "\n")
    f:close()
    assert.equal(tonumber("755", 8), proc.file_mode(tmp .. "/bin/lxshm"))
    local seg, name = util.segment(64)
    assert(seg:put({ installed = true }))
    local run = io.popen(("cd / && LUA_PATH='%s/share/lua/%s/?.lua' LUA_CPATH='%s/lib/lua/%s/?.so' "
      .. "'%s/bin/lxshm' get %s 2>&1"):format(tmp, version, tmp, version, tmp, name))
    assert.equal("{ installed = true }\n", run:read("*a"))
    run:close()
    ok = os.execute(make:gsub("install%-lua install%-bin", "uninstall-lua uninstall-bin"))
    assert.is_truthy(ok == true or ok == 0)
    assert.is_nil(io.open(tmp .. "/bin/lxshm", "rb"))
  end)
end)
