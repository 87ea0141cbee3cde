"""A Racetrack 2.x job calling another job (v2-chain-callee) with call_job."""

import logging

from racetrack_job_wrapper.call import call_job

logger = logging.getLogger("racetrack")


class JobEntrypoint:
    def perform(self, numbers: list) -> float:
        """
        Add up numbers, two at a time, by calling the v2-chain-callee job.
        :param numbers: The numbers to add.
        :return: Their sum.
        """
        total = 0.0
        for number in numbers:
            # POST {PUB_URL}/job/v2-chain-callee/latest/api/v1/perform with this job's AUTH_TOKEN and
            # the request's tracing id and caller; RuntimeError if the call fails.
            total = call_job(self, "v2-chain-callee", payload={"x": total, "y": number})
        logger.info("added %d numbers through v2-chain-callee", len(numbers))
        return total

    def docs_input_example(self) -> dict:
        return {"numbers": [40, 1, 1]}
