-- wrk script: POST {"x":1,"y":2} as an asynchronous invocation (bench/run.sh's async phase):
-- the server answers 202 once the invocation is synced to disk.
wrk.method = "POST"
wrk.body   = '{"x":1,"y":2}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Invocation-Type"] = "async"
