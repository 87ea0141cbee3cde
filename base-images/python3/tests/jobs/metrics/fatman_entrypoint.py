class MetricsEntrypoint:
    def __init__(self) -> None:
        self.calls = 0

    def perform(self, x: float) -> float:
        self.calls += 1
        return x

    def metrics(self):
        return [
            {
                "name": "fatman_is_crazy",
                "description": "Whether your fatman is crazy or not",
                "value": 0.25,
                "labels": {"color": "blue"},
            },
            {"name": "fatman_is_crazy", "value": 0.75, "labels": {"color": "red"}},
            {
                "name": "fatman_perform_calls_seen",
                "description": "perform calls in this worker",
                "value": self.calls,
            },
        ]
