"""engine_lock: builds of one shared image on one engine wait for each other (real file locks)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from racetrack_builder import engine_lock as locks
from racetrack_builder.reporting import reporting_to
from tests.reporter import Recorded


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    return tmp_path / "cache"


def test_a_second_holder_waits_until_the_first_is_done(cache_home: Path) -> None:
    order: list[str] = []
    held = threading.Event()

    def first() -> None:
        with locks.engine_lock("racetrack/python3:latest"):
            order.append("first in")
            held.set()
            time.sleep(0.5)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(5)
    with reporting_to(Recorded()) as said:
        assert isinstance(said, Recorded)
        with locks.engine_lock("racetrack/python3:latest"):
            order.append("second in")
    thread.join(5)
    assert order == ["first in", "first out", "second in"]
    assert said.messages == ["waiting for another build of racetrack/python3:latest on this engine to finish"]
    assert list((cache_home / "racetrack-build" / "locks").glob("*.lock"))


def test_other_images_and_other_engines_do_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    with locks.engine_lock("racetrack/python3:latest"):
        with reporting_to(Recorded()) as said:
            assert isinstance(said, Recorded)
            with locks.engine_lock("racetrack/python3:latest-py3.9"):
                pass
            monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")
            with locks.engine_lock("racetrack/python3:latest"):
                pass
        assert said.messages == []


def test_without_a_writable_cache_folder_the_build_goes_on_unlocked(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_home.parent.mkdir(parents=True, exist_ok=True)
    cache_home.write_text("a file where the folder would be")
    ran = []
    with locks.engine_lock("racetrack/python3:latest"):
        ran.append(True)
    assert ran == [True]
