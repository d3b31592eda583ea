--- A deterministic workload of dictionary changes, and a model of what they leave, shared by
-- the crash spec (which replays the model) and its child (which applies the changes). Works on
-- every runtime: only whole numbers below 2^53, no integer operators.
local M = {}

M.KEYS = 40     -- keys "k0".."k39": values set, added, replaced, deleted, swapped, updated
M.COUNTERS = 4  -- keys "c0".."c3": counters, only incremented
M.KINDS = { "set", "add", "replace", "delete", "cas", "incr", "expire", "update", "update",
  "safe_set" }

local function pick(i, salt, n)
  return ((i * 2654435761 + salt * 40503 + 12345) % 4294967291) % n
end

--- Operation i: its kind, its key, and the value it stores (if any).
function M.op(i)
  local kind = M.KINDS[pick(i, 1, #M.KINDS) + 1]
  if kind == "incr" then
    return kind, "c" .. pick(i, 2, M.COUNTERS)
  end
  local key = "k" .. pick(i, 2, M.KEYS)
  local value
  local shape = pick(i, 3, 4)
  if shape == 0 then
    value = { op = i, key = key, list = { i, i + 1, i + 2 }, flag = i % 2 == 0 }
  elseif shape == 1 then
    value = i -- a number
  else
    value = ("%s/%d/"):format(key, i) .. string.rep(string.char(65 + i % 26), pick(i, 4, 900))
  end
  return kind, key, value
end

--- A new model: every key absent, every counter at 0 (the spec creates them so).
function M.new()
  local m = { values = {}, counters = {} }
  for c = 0, M.COUNTERS - 1 do
    m.counters["c" .. c] = 0
  end
  return m
end

function M.copy(m)
  local c = M.new()
  for k, v in pairs(m.values) do
    c.values[k] = v
  end
  for k, v in pairs(m.counters) do
    c.counters[k] = v
  end
  return c
end

--- What operation i does to the model.
function M.apply(m, i)
  local kind, key, value = M.op(i)
  if kind == "incr" then
    m.counters[key] = m.counters[key] + 1
  elseif kind == "delete" then
    m.values[key] = nil
  elseif kind == "add" then
    if m.values[key] == nil then
      m.values[key] = value
    end
  elseif kind == "replace" then
    if m.values[key] ~= nil then
      m.values[key] = value
    end
  elseif kind ~= "expire" then -- set, safe_set, cas, update
    m.values[key] = value
  end
end

--- Applies operation i to dictionary d; `spin(key)` is called inside update's function.
function M.run(d, i, spin)
  local kind, key, value = M.op(i)
  local ok, err, code
  if kind == "incr" then
    ok, err = d:incr(key, 1)
  elseif kind == "delete" then
    ok, err = d:delete(key)
  elseif kind == "cas" then
    ok, err = d:cas(key, d:version(key), value)
  elseif kind == "expire" then
    ok, err, code = d:expire(key, 1000)
    if code == 4 then -- NOT_FOUND: the key is absent
      ok = true
    end
  elseif kind == "update" then
    ok = true
    d:update(key, function()
      spin(key)
      return value
    end)
  else
    ok, err, code = d[kind](d, key, value)
    if code == 1 or code == 4 then -- EXISTS, NOT_FOUND: add or replace had nothing to do
      ok = true
    end
  end
  assert(ok, ("operation %d (%s %s): %s"):format(i, kind, key, tostring(err)))
end

--- Whether d holds exactly what model m says; else false and why.
function M.matches(d, m, deep_equal)
  local present = M.COUNTERS
  for k = 0, M.KEYS - 1 do
    local key = "k" .. k
    local v = d:get(key)
    if not deep_equal(v, m.values[key]) then
      return false, ("%s is %s, expected %s"):format(key, tostring(v), tostring(m.values[key]))
    end
    if v ~= nil then
      present = present + 1
    end
  end
  for key, n in pairs(m.counters) do
    if d:get(key) ~= n then
      return false, ("%s is %s, expected %d"):format(key, tostring(d:get(key)), n)
    end
  end
  if d:count() ~= present then
    return false, ("count %d, expected %d"):format(d:count(), present)
  end
  return true
end

return M
