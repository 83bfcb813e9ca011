-- wrk script: POST {"x":1,"y":2} as post.lua does, and print the p99.9 latency, which
-- wrk's --latency table leaves out (bench/run.sh, isolation phase).
wrk.method = "POST"
wrk.body   = '{"x":1,"y":2}'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  io.write(string.format("p99.9 latency: %dus\n", latency:percentile(99.9)))
end
