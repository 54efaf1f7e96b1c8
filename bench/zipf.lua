-- wrk script for bench/density.py: POSTs one-text KServe V2 infer requests to MODELS models
-- named TENANT/PREFIX0 .. TENANT/PREFIX<MODELS-1>, picked at random with Zipf-distributed
-- popularity: model of rank r (1-based) is asked for in proportion to 1 / r^ZIPF_S.
--   MODELS=10000 TENANT=t PREFIX=m ZIPF_S=1.0 wrk -t2 -c32 -d20s --latency -s bench/zipf.lua URL
-- The URL's path is ignored (each request names its model); SEED makes the draws repeatable.

local texts = {"where is my parcel", "cancel my order please", "i want a refund",
               "are you open on sunday", "talk to a human", "hello there"}

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local paths, cdf = {}, {}
local thread_no = 0

function setup(thread)
  thread:set("id", thread_no)
  thread_no = thread_no + 1
end

function init(args)
  local n = tonumber(os.getenv("MODELS") or "10000")
  local s = tonumber(os.getenv("ZIPF_S") or "1.0")
  local tenant = os.getenv("TENANT") or "t"
  local prefix = os.getenv("PREFIX") or "m"
  local total = 0
  for r = 1, n do
    total = total + 1 / (r ^ s)
    cdf[r] = total
    paths[r] = "/v2/models/" .. tenant .. "/" .. prefix .. (r - 1) .. "/infer"
  end
  for r = 1, n do cdf[r] = cdf[r] / total end
  math.randomseed((tonumber(os.getenv("SEED") or "1")) * 1000 + (id or 0))
end

local function pick()
  local u = math.random()
  local lo, hi = 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

function request()
  local r = pick()
  local text = texts[(r % #texts) + 1]
  local body = '{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["' .. text ..
               '"]}]}'
  return wrk.format(nil, paths[r], nil, body)
end
