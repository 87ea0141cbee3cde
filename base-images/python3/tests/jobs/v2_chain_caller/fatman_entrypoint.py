"""The calling job of a chain: call_job (and call_job_coroutine) to the job named "callee"."""

from racetrack_job_wrapper.call import call_job, call_job_coroutine


class JobEntrypoint:
    def perform(self, x: float, y: float, version: str = "1.0.0"):
        return {"callee": call_job(self, "callee", payload={"x": x, "y": y}, version=version)}

    def auxiliary_endpoints(self):
        return {"/coroutine": self.coroutine}

    async def coroutine(self, x: float, y: float):
        return {"callee": await call_job_coroutine(self, "callee", payload={"x": x, "y": y}, version="1.0.0")}
