-- wrk script for bench/cluster_scaling.py: bench/zipf.lua's requests (MODELS models, Zipf
-- popularity ZIPF_S; 0 is uniform), plus, when wrk is done, one line
--   LATENCY_US <requests> <p0.1> <p0.2> ... <p99.9>
-- (999 latency percentiles in microseconds), so the bench can merge several wrk processes'
-- distributions into one (each percentile stands for a thousandth of that process's requests).
dofile(os.getenv("SHOAL_BENCH_DIR") .. "/zipf.lua")

function done(summary, latency, requests)
  local parts = {"LATENCY_US", tostring(summary.requests)}
  for i = 1, 999 do parts[#parts + 1] = tostring(latency:percentile(i / 10)) end
  io.write(table.concat(parts, " ") .. "\n")
end
