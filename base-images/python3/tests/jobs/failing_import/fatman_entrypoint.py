import json

import module_that_does_not_exist_anywhere  # noqa: F401


class BrokenEntrypoint:
    def perform(self) -> str:
        return json.dumps({})
