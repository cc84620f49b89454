-- GET one fixed URL (headers from -H); only adds the JSON report.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
