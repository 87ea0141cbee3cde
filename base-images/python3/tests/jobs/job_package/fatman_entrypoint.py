import os

from supersmart.model import just_do_it


class PackageEntrypoint:
    def __init__(self) -> None:
        # A relative path: the spec promises the working directory is the job's root.
        with open("./model.txt") as f:
            self.scale = float(f.read())

    def perform(self, x: float, y: float) -> float:
        return just_do_it(x, y) * self.scale

    def auxiliary_endpoints(self):
        return {"/pid": self.pid}

    def pid(self) -> int:
        """The worker process answering (lets tests see several workers)."""
        return os.getpid()
