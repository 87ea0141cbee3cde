import os
import time


class SlowInitEntrypoint:
    def __init__(self) -> None:
        # Stands in for loading a large model; FATMAN_TEST_INIT_SECONDS lets a test choose how long.
        time.sleep(float(os.environ.get("FATMAN_TEST_INIT_SECONDS", "1.5")))

    def perform(self, x: int) -> int:
        return x + 1
