import dataclasses
from collections import OrderedDict  # noqa: F401 - an imported class must not be a candidate

import pydantic
from helper_models_lib import ImportedEntrypoint  # noqa: F401 - imported, so not a candidate


@dataclasses.dataclass
class Options:
    depth: int = 1


class Answer(pydantic.BaseModel):
    value: float


class HelpedEntrypoint:
    def perform(self, x: float) -> Answer:
        return Answer(value=x * Options().depth)
