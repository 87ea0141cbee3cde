class FirstModel:
    def perform(self) -> str:
        return "first"


class SecondModel:
    def perform(self) -> str:
        return "second"
