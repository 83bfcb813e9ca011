-- wrk script: publish {"x":1,"y":2} as a message (bench/run.sh's messages phase); the server
-- answers 202 once every subscriber's delivery is synced to disk.
wrk.method = "POST"
wrk.body   = '{"x":1,"y":2}'
wrk.headers["Content-Type"] = "application/json"
