"""A Racetrack 2.x job: the library's base class, request_context, request_extra, the racetrack logger."""

import logging
import threading

from racetrack_job_wrapper.entrypoint import JobEntrypoint as BaseEntrypoint

logger = logging.getLogger("racetrack")


class JobEntrypoint(BaseEntrypoint):
    def __init__(self):
        # Set only after __init__, as in Racetrack 2.x.
        self.had_context_in_init = hasattr(self, "request_context")

    def perform(self, x: float = 1.0):
        request = self.request_context.get()
        extra = self.request_extra.get()
        extra["x"] = x
        logger.info("perform called with x=%s", x)
        return {
            "x": x,
            "tracing_id": request.headers.get("x-request-tracing-id"),
            "caller": request.headers.get("X-Caller-Name"),
            "method": request.method,
            "query": dict(request.query_params),
            "client": request.client.host if request.client else None,
            "extra": extra,
            "thread": threading.current_thread().name,
            "had_context_in_init": self.had_context_in_init,
        }

    def auxiliary_endpoints(self):
        return {"/fail": self.fail, "/outside": self.outside}

    def fail(self):
        raise RuntimeError("the model is gone")

    def outside(self):
        """request_context.get() in a thread of the job's own: not in a request."""
        found = {}

        def look():
            try:
                self.request_context.get()
                found["outside"] = "request"
            except LookupError:
                found["outside"] = "LookupError"

        thread = threading.Thread(target=look)
        thread.start()
        thread.join()
        return found
