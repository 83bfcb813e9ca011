-- wrk script: POST {"x":1,"y":2} as JSON (used by bench/run.sh for every server).
wrk.method = "POST"
wrk.body   = '{"x":1,"y":2}'
wrk.headers["Content-Type"] = "application/json"
