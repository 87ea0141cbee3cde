class FailingInitEntrypoint:
    def __init__(self) -> None:
        raise FileNotFoundError("model.pkl is missing")

    def perform(self) -> int:
        return 1
