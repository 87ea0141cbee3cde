"""A job that misbehaves on request: slow, raising, leaking nothing, or killing its worker."""

import ctypes
import os
import time
from typing import Callable, Dict


class FaultsEntrypoint:
    def perform(self, mode: str = "ok", seconds: float = 0.0, x: float = 1.0) -> Dict[str, object]:
        """
        Answer, after misbehaving as asked.
        :param mode: ok, sleep, raise, exit (os._exit(1): the worker dies) or segfault.
        :param seconds: How long sleep takes.
        :param x: A number echoed back.
        """
        if mode == "sleep":
            time.sleep(seconds)
        elif mode == "raise":
            raise ValueError(f"asked to raise with x={x}")
        elif mode == "exit":
            os._exit(1)
        elif mode == "segfault":
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        return {"mode": mode, "x": x, "pid": os.getpid()}

    def auxiliary_endpoints(self) -> Dict[str, Callable]:
        return {"/pid": self.pid}

    def pid(self) -> int:
        """The worker process that answered."""
        return os.getpid()
