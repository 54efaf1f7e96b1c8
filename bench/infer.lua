-- wrk script for bench/run_http.sh: POSTs KServe V2 infer requests with one short text each,
-- rotating among a handful of chatbot texts. The URL's path is the infer path, e.g.
--   wrk -t2 -c32 -d10s --latency -s bench/infer.lua http://127.0.0.1:PORT/v2/models/bench/intents/infer
-- Environment: TOP_K (default 1), the parameters.top_k every request asks for; MODELS, a
-- comma-separated list of TENANT/MODEL to rotate among (default: only the URL's model).

local texts = {
  "where is my parcel",
  "cancel my order please",
  "i want a refund",
  "are you open on sunday",
  "talk to a human",
  "hello there",
  "my package has not arrived",
  "thanks bye",
}

local top_k = tonumber(os.getenv("TOP_K") or "1") or 1

local function body_for(text)
  return '{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["' .. text ..
         '"]}],"parameters":{"top_k":' .. top_k .. '}}'
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

-- Requests are formatted once per thread; each thread starts at a different text.
local requests = {}
local n = 0
local thread_no = 0

function setup(thread)
  thread:set("start", thread_no)
  thread_no = thread_no + 1
end

function init(args)
  local models = {}
  for m in string.gmatch(os.getenv("MODELS") or "", "[^,]+") do
    models[#models + 1] = "/v2/models/" .. m .. "/infer"
  end
  if #models == 0 then models[1] = wrk.path end
  for _, path in ipairs(models) do
    for _, text in ipairs(texts) do
      wrk.body = body_for(text)
      requests[#requests + 1] = wrk.format(nil, path)
    end
  end
  n = (start or 0) % #requests
end

function request()
  n = n % #requests + 1
  return requests[n]
end
