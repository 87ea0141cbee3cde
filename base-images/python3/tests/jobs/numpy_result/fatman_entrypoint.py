import dataclasses
import datetime
import decimal
import enum
import pathlib
import uuid
from typing import Any, Dict

import numpy as np
import pydantic


@dataclasses.dataclass
class Point:
    x: float
    when: datetime.date


class Reading(pydantic.BaseModel):
    sensor: str
    taken_at: datetime.datetime


class Color(enum.Enum):
    RED = "red"


class NumpyEntrypoint:
    def perform(self, size: int = 3) -> Any:
        return np.arange(size, dtype=np.float64) * 1.5

    def auxiliary_endpoints(self):
        return {"/everything": self.everything, "/unencodable": self.unencodable}

    def everything(self) -> Dict[str, Any]:
        return {
            "matrix": np.eye(2, dtype=np.int64),
            "scalar": np.float32(0.5),
            "integer": np.int64(7),
            "flag": np.bool_(True),
            "date": datetime.date(2024, 1, 2),
            "datetime": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
            "point": Point(1.0, datetime.date(2024, 5, 6)),
            "reading": Reading(sensor="s1", taken_at=datetime.datetime(2024, 1, 1, 12, 0)),
            "set": {3, 1, 2},
            "path": pathlib.Path("/data/model.pkl"),
            "decimal": decimal.Decimal("1.25"),
            "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "color": Color.RED,
            "delta": datetime.timedelta(minutes=1),
        }

    def unencodable(self) -> Any:
        return {"lock": object()}
