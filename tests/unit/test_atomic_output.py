"""Atomic outputs: checked before the work, written to staging, renamed together, nothing left
on failure; a staging folder of a process that is gone is removed by the next run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ml.atomic_output import STAGING_PREFIX, AtomicOutputs, remove_stale, write_text
from ml.errors import OutputError


def test_outputs_appear_together_only_at_commit(tmp_path: Path) -> None:
    scores, rejects = tmp_path / "scores.csv", tmp_path / "rejects.csv"
    rejects.write_text("old rejects\n")

    with AtomicOutputs([scores, rejects]) as out:
        out.temporary(scores).write_text("new scores\n")
        out.temporary(rejects).write_text("new rejects\n")
        assert not scores.exists()
        assert rejects.read_text() == "old rejects\n"
        out.commit()

    assert scores.read_text() == "new scores\n"
    assert rejects.read_text() == "new rejects\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rejects.csv", "scores.csv"]


def test_a_failure_leaves_the_old_outputs_and_no_temporary(tmp_path: Path) -> None:
    scores = tmp_path / "scores.csv"
    scores.write_text("old\n")

    def interrupted_run() -> None:
        with AtomicOutputs([scores]) as out:
            out.temporary(scores).write_text("half")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_run()

    assert scores.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: tmp / "missing" / "x.csv", "does not exist"),
        (lambda tmp: tmp / "file.txt" / "x.csv", "does not exist"),
        (lambda tmp: Path("/sys/x.csv"), "/sys"),  # read-only file system, even for root
        (lambda tmp: tmp, "it is a folder"),
    ],
)
def test_an_unwritable_destination_is_refused_before_any_work(
    tmp_path: Path, make: object, reason: str
) -> None:
    (tmp_path / "file.txt").write_text("x")
    target = make(tmp_path)  # type: ignore[operator]

    with pytest.raises(OutputError) as caught, AtomicOutputs([tmp_path / "ok.csv", target]):
        pytest.fail("the work must not start")

    assert str(target) in str(caught.value)
    assert reason in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_folders_it_creates_go_again_when_nothing_lands(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "report.html"

    with pytest.raises(RuntimeError), AtomicOutputs([target], create_folders=True):
        raise RuntimeError

    assert list(tmp_path.iterdir()) == []


def test_stale_staging_of_an_ended_process_is_removed_and_a_live_ones_kept(
    tmp_path: Path,
) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()
    stale = tmp_path / f"{STAGING_PREFIX}{ended.pid}-0000"
    live = tmp_path / f"{STAGING_PREFIX}{os.getppid()}-0000"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "scores.csv").write_text("half")

    removed = remove_stale(tmp_path)

    assert removed == [stale]
    assert live.exists()


def test_write_text_lands_whole_and_refuses_an_unwritable_path(tmp_path: Path) -> None:
    # Given an old report, When a new one is written into a folder made for it
    target = tmp_path / "reports" / "release.md"
    write_text(target, "old\n")
    write_text(target, "new\n")
    # Then it is whole, and nothing else is left beside it
    assert target.read_text() == "new\n"
    assert [p.name for p in target.parent.iterdir()] == ["release.md"]
    # When the destination cannot be written (/proc is not writable, even as root)
    with pytest.raises(OutputError, match=r"cannot write /proc/report\.md"):
        write_text(Path("/proc/report.md"), "x")
