-- GET /api/v1/orders/{id}, the id drawn at random from a file of ids (one a line).
-- args: ids-file  path-prefix
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
local ids = {}
local prefix = "/api/v1/orders/"

function init(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  if args[2] then prefix = args[2] end
  math.randomseed(os.time() + #ids)
end

function request()
  return wrk.format("GET", prefix .. ids[math.random(#ids)])
end
