class FailingMetricsEntrypoint:
    def perform(self) -> int:
        return 1

    def metrics(self):
        raise RuntimeError("metrics backend is down")
