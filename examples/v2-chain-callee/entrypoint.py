"""A Racetrack 2.x job called by another (v2-chain-caller): adds two numbers."""

import logging

logger = logging.getLogger("racetrack")


class JobEntrypoint:
    def perform(self, x: float, y: float) -> float:
        """
        Return the sum of two numbers.
        :param x: The first number.
        :param y: The second number.
        :return: The sum of x and y.
        """
        # The caller's tracing id is on this line too: the whole chain logs one id.
        logger.info("adding %s and %s", x, y)
        return x + y

    def docs_input_example(self) -> dict:
        return {"x": 40, "y": 2}
