-- wrk script: POST a fixed /v1/completions request (same body as bench/engine_wrk.py's
-- loadgen run). The body is passed in the WRK_BODY environment variable.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("WRK_BODY")
