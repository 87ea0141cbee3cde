import dataclasses
import datetime
import enum
from typing import Any, Dict, List, Literal, Optional, Tuple


@dataclasses.dataclass
class Config:
    depth: int
    name: str = "default"


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


class TypedEntrypoint:
    def perform(
        self,
        count: int,
        ratio: float,
        name: str,
        flag: bool,
        tags: List[str],
        weights: Optional[Dict[str, float]] = None,
        pair: Tuple[int, str] = (0, ""),
        kind: Literal["a", "b"] = "a",
        when: Optional[datetime.datetime] = None,
        config: Optional[Config] = None,
        mode: Mode = Mode.FAST,
        anything=None,
    ) -> Dict[str, Any]:
        return {
            "count": [count, type(count).__name__],
            "ratio": [ratio, type(ratio).__name__],
            "name": name,
            "flag": flag,
            "tags": tags,
            "weights": weights,
            "pair": list(pair) + [type(pair).__name__],
            "kind": kind,
            "when": when,
            "config": config,
            "mode": mode.value,
            "anything": anything,
        }

    def auxiliary_endpoints(self):
        return {"/flexible": self.flexible, "/nothing": self.nothing}

    def flexible(self, base: int, **options: float) -> Dict[str, Any]:
        return {"base": base, "options": options}

    def nothing(self) -> str:
        return "ok"
