"""Where serve and run serve a job: their records, and call finding the job through them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from racetrack_builder import serving
from racetrack_builder.call import resolve_target

MANIFEST = ("name: adder\nowner_email: dev@example.com\nversion: 1.2.0\nlang: python3\ngit:\n  remote: https://x/y.git\n"
            "python:\n  entrypoint_path: entrypoint.py\n")


def test_a_record_lasts_as_long_as_its_block() -> None:
    with serving.recorded("adder", "1.2.0", "http://127.0.0.1:7123"):
        assert serving.url_of("adder", "1.2.0") == "http://127.0.0.1:7123"
        assert serving.url_of("adder", "1.3.0") is None  # another version is another job
        assert serving.url_of("other", "1.2.0") is None
    assert serving.url_of("adder", "1.2.0") is None
    assert list(serving.records_dir().iterdir()) == []


def test_a_record_whose_process_is_gone_is_dropped() -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    folder = serving.records_dir()
    folder.mkdir(parents=True)
    stale = folder / "1.json"
    stale.write_text(json.dumps({"name": "adder", "version": "1.2.0", "url": "http://127.0.0.1:9",
                                 "pid": int(dead.stdout)}))
    (folder / "2.json").write_text("{not json")
    assert serving.url_of("adder", "1.2.0") is None
    assert not stale.exists()


def test_call_with_a_manifest_goes_where_the_job_is_served(tmp_path: Path) -> None:
    manifest = tmp_path / "fatman.yaml"
    manifest.write_text(MANIFEST)
    assert resolve_target(str(manifest)).base_url == "http://127.0.0.1:7000"
    with serving.recorded("adder", "1.2.0", "http://127.0.0.1:7123"):
        assert resolve_target(str(manifest)).base_url == "http://127.0.0.1:7123"
        assert resolve_target(str(manifest), port=7001).base_url == "http://127.0.0.1:7001"  # --port wins


def test_an_unwritable_folder_costs_the_record_only(tmp_path: Path, monkeypatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(blocked))  # a file where the folder would go
    with serving.recorded("adder", "1.2.0", "http://127.0.0.1:7123"):
        assert serving.url_of("adder", "1.2.0") is None
    assert os.environ["XDG_RUNTIME_DIR"] == str(blocked)


def test_records_in_a_folder_others_may_write_to_are_neither_read_nor_written(tmp_path: Path) -> None:
    folder = serving.records_dir()
    folder.mkdir(parents=True)
    folder.parent.chmod(0o777)  # as if another user had made it first in a shared /tmp
    (folder / "1.json").write_text(json.dumps({"name": "adder", "version": "1.2.0",
                                               "url": "http://127.0.0.1:7123", "pid": os.getpid()}))
    assert serving.url_of("adder", "1.2.0") is None
    with serving.recorded("adder", "1.2.0", "http://127.0.0.1:7124"):
        assert not (folder / f"{os.getpid()}.json").exists()


def test_only_a_loopback_url_is_taken() -> None:
    folder = serving.records_dir()
    with serving.recorded("adder", "1.2.0", "http://127.0.0.1:7123"):
        pass
    (folder / "1.json").write_text(json.dumps({"name": "adder", "version": "1.2.0",
                                               "url": "http://203.0.113.9:7000", "pid": os.getpid()}))
    assert serving.url_of("adder", "1.2.0") is None
