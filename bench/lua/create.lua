-- POST /api/v1/orders with a fixed JSON body (args[1]); headers (auth, content type) from -H.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
local body

function init(args)
  body = args[1]
end

function request()
  return wrk.format("POST", "/api/v1/orders", nil, body)
end
