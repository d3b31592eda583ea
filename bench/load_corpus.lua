--- load_corpus.lua — loads bench/corpus.lua, the shared benchmark corpus, on any Lua runtime:
--   local corpus = dofile("bench/load_corpus.lua")("bench/corpus.lua")
-- The corpus is a byte-identical copy of a shared file and is never edited. It draws its numbers
-- from a 64-bit LCG written with Lua 5.3's integers and bitwise operators, which Lua 5.1, 5.2 and
-- LuaJIT cannot parse. There, this loader replaces just that generator's lines with the same
-- LCG computed on 16-bit limbs held in doubles (exact: no intermediate reaches 2^53), so every
-- runtime builds the same tables; the rest of the file is loaded as it is. On 5.3 and later it
-- is the file itself. spec/codec_spec.lua checks, on 5.3 and 5.4, that both give equal tables.
-- Written in Lua 5.1 syntax.

-- The generator as bench/corpus.lua writes it; it must appear exactly once.
local ORIGINAL = [[
local state = 0x2545F4914F6CDD1D
local function rnd() -- uniform float in [0, 1) from the top 53 bits of a 64-bit LCG
  state = state * 6364136223846793005 + 1442695040888963407
  return ((state >> 11) & 0x1FFFFFFFFFFFFF) / 9007199254740992.0
end
]]

-- The same generator on four 16-bit limbs, most significant first.
local PORTABLE = [[
local state = { 0x2545, 0xF491, 0x4F6C, 0xDD1D }
local MUL = { 0x5851, 0xF42D, 0x4C95, 0x7F2D } -- 6364136223846793005
local INC = { 0x1405, 0x7B7E, 0xF767, 0x814F } -- 1442695040888963407
local function rnd() -- state = state * MUL + INC (mod 2^64); then its top 53 bits / 2^53
  local s, r, carry = state, {}, 0
  for i = 4, 1, -1 do -- limb i of the product takes s[j] * MUL[k] with j + k = i + 4
    local sum = carry + INC[i]
    for j = i, 4 do
      sum = sum + s[j] * MUL[i + 4 - j]
    end
    r[i] = sum % 65536
    carry = (sum - r[i]) / 65536
  end
  state = r
  return (r[1] * 2 ^ 37 + r[2] * 2 ^ 21 + r[3] * 2 ^ 5 + math.floor(r[4] / 2 ^ 11)) / 2 ^ 53
end
]]

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

--- Returns the corpus of the file at `path`; `portable` forces the limb generator (to compare
-- it with the file's own on runtimes that can run both).
return function(path, portable)
  if rawget(math, "type") and not portable then
    return dofile(path)
  end
  local source = read(path)
  local first = source:find(ORIGINAL, 1, true)
  assert(first and not source:find(ORIGINAL, first + 1, true),
    path .. ": the LCG this loader replaces has changed; update bench/load_corpus.lua")
  source = source:sub(1, first - 1) .. PORTABLE .. source:sub(first + #ORIGINAL)
  local chunk = assert((rawget(_G, "loadstring") or load)(source, "@" .. path))
  return chunk()
end
