-- wrk script: POST the adder's arguments as JSON (used by wrapper_throughput.py).
wrk.method = "POST"
wrk.body = '{"x": 20, "y": 5}'
wrk.headers["Content-Type"] = "application/json"
