-- wrk script: POST the cpu_burn job's argument (used by wrapper_servers.py).
wrk.method = "POST"
wrk.body = '{"milliseconds": 50}'
wrk.headers["Content-Type"] = "application/json"
