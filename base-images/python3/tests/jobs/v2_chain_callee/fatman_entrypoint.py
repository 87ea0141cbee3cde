"""The called job of a chain: adds, and says which headers the call brought."""


class JobEntrypoint:
    def perform(self, x: float, y: float):
        headers = self.request_context.get().headers
        return {
            "sum": x + y,
            "tracing_id": headers.get("X-Request-Tracing-Id"),
            "caller": headers.get("X-Caller-Name"),
            "auth": headers.get("X-Racetrack-Auth"),
        }
