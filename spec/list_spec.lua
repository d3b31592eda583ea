--- lxshm.list and lxshm.open_any: finding the objects of this machine and opening one without
-- knowing its kind (what the lxshm command does).
local lxshm = require("lxshm")
local util = require("util")

after_each(util.cleanup)

local function contains(list, name)
  for _, n in ipairs(list) do
    if n == name then
      return true
    end
  end
  return false
end

describe("lxshm.list", function()
  it("names every object of this machine, sorted, whatever its kind or state", function()
    local _, seg = util.segment(64)
    local _, q = util.queue(64)
    local junk = util.name("junk") -- not an lxshm object at all: listed, it holds that name
    local f = assert(io.open("/dev/shm/lxshm." .. junk, "wb"))
    f:write("not a header")
    f:close()
    util.defer(function() os.remove("/dev/shm/lxshm." .. junk) end)
    local names = assert(lxshm.list())
    assert.is_true(contains(names, seg))
    assert.is_true(contains(names, q))
    assert.is_true(contains(names, junk))
    for i = 2, #names do
      assert.is_true(names[i - 1] < names[i])
    end
  end)

  it("leaves out files under the prefix whose names lxshm would refuse", function()
    local bad = "lxshm..hidden" .. util.name("x")
    local f = assert(io.open("/dev/shm/" .. bad, "wb"))
    f:close()
    util.defer(function() os.remove("/dev/shm/" .. bad) end)
    for _, n in ipairs(assert(lxshm.list())) do
      assert.is_nil(n:find("^%."))
    end
  end)
end)

describe("lxshm.open_any", function()
  it("opens a segment as a segment and a queue as a queue", function()
    local seg, sname = util.segment(64)
    assert(seg:write("v"))
    local q, qname = util.queue(64)
    assert(q:push("w"))
    local s2 = assert(lxshm.open_any(sname))
    util.defer(function() s2:close() end)
    assert.equal("lxshm.segment", getmetatable(s2).__name)
    assert.equal("v", s2:read())
    local q2 = assert(lxshm.open_any(qname, { readonly = true }))
    util.defer(function() q2:close() end)
    assert.equal("lxshm.queue", getmetatable(q2).__name)
    assert.equal(1, q2:count())
  end)

  it("returns what open returns for a missing, foreign or bad name", function()
    local missing = util.name("none")
    assert.same({ nil, missing .. ": does not exist", lxshm.NOT_FOUND },
      { lxshm.open_any(missing) })
    local junk = util.name("junk")
    local f = assert(io.open("/dev/shm/lxshm." .. junk, "wb"))
    f:write(string.rep("x", 2048))
    f:close()
    util.defer(function() os.remove("/dev/shm/lxshm." .. junk) end)
    assert.same({ nil, junk .. ": not an lxshm object", lxshm.INVALID }, { lxshm.open_any(junk) })
    local _, _, code = lxshm.open_any("bad/name")
    assert.equal(lxshm.INVALID, code)
    assert.has_error(function() lxshm.open_any(1, { mode = "0600" }) end,
      "bad argument #2 to 'open_any' (unknown option 'mode')")
  end)
end)
