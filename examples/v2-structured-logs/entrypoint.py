"""A Racetrack 2.x job logging JSON lines (LOG_STRUCTURED) with the caller's name (LOG_CALLER_NAME)."""

import logging

logger = logging.getLogger("racetrack")


class JobEntrypoint:
    def perform(self, text: str) -> dict:
        """
        Count the words of a text, and say who asked.
        :param text: The text.
        :return: The word count and the caller's name.
        """
        caller = self.request_context.get().headers.get("X-Caller-Name")
        # A JSON line with the request's tracing_id and caller_name beside msg.
        logger.info("counting words for %s", caller or "an unnamed caller")
        if not text.strip():
            # Logged as JSON with cause and traceback fields; answered 400 {"type": "ValueError", ...}.
            raise ValueError("the text is empty")
        return {"words": len(text.split()), "caller": caller}

    def docs_input_example(self) -> dict:
        return {"text": "one two three"}
