--- make bench: runs every benchmark script, each in its own process.
local scripts = { "bench/segment_bench.lua", "bench/codec_bench.lua" }
local lua = arg[-1] or "lua5.4"
for _, script in ipairs(scripts) do
  print("## " .. script)
  assert(os.execute(lua .. " " .. script), script .. " failed")
end
