import time


class CpuBurnEntrypoint:
    """Burns a fixed amount of CPU time per call (benchmarks/wrapper_servers.py's CPU-bound job)."""

    def perform(self, milliseconds: float = 50.0) -> float:
        """
        Spin on the CPU until this thread has used the given CPU time.
        :param milliseconds: CPU time to use, in milliseconds.
        :return: the CPU time used, in milliseconds.
        """
        start = time.thread_time()
        end = start + milliseconds / 1000.0
        spins = 0
        while time.thread_time() < end:
            spins += 1
        return (time.thread_time() - start) * 1000.0

    def docs_input_example(self):
        return {"milliseconds": 50}
