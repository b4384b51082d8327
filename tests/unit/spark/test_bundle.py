"""The Spark job's code bundle (ml/spark/bundle.py): deterministic, holding the packages, the
entry point and the project files, importable as spark-submit's pyFiles, never a credential,
and uploaded where `mlops spark submit` points the job (moto in-process S3)."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from ml.cli import app
from ml.errors import ConfigError
from ml.spark.bundle import CODE_ZIP, ENTRY, PROJECT_ARCHIVE, build
from ml.spark.submit import SparkJobSettings, job_request
from tests.fixtures.aws_in_process import aws_in_process

ROOT = Path(__file__).resolve().parents[3]
BUCKET = "credit-risk-batch-123456789012"


def small_tree(root: Path) -> Path:
    """A repository-shaped tree of a few files: what the bundle takes from."""
    for name, text in {
        "ml/__init__.py": "",
        "ml/py.typed": "",
        "ml/spark/__init__.py": "",
        "ml/spark/entry.py": "print('entry')\n",
        "serve/__init__.py": "",
        "config/train.yaml": "backend: local\n",
        "data/PROVENANCE.md": "UCI\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_bundle_is_byte_for_byte_the_same_from_the_same_tree(tmp_path: Path) -> None:
    first = build(ROOT, tmp_path / "a")
    second = build(ROOT, tmp_path / "b")

    assert first.digests == second.digests
    for name in (ENTRY, CODE_ZIP, PROJECT_ARCHIVE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_the_bundle_holds_the_packages_the_entry_point_and_the_project(tmp_path: Path) -> None:
    bundle = build(ROOT, tmp_path)

    code = zipfile.ZipFile(tmp_path / CODE_ZIP).namelist()
    assert {"ml/__init__.py", "ml/spark/scoring.py", "ml/scoring.py", "serve/predictor.py"} <= set(
        code
    )
    assert "ml/py.typed" in code
    assert all(n.startswith(("ml/", "serve/")) and "__pycache__" not in n for n in code)
    with tarfile.open(tmp_path / PROJECT_ARCHIVE) as archive:
        project = archive.getnames()
        assert {"config/train.yaml", "config/gates.yaml", "data/uci_credit_card.csv.gz"} <= set(
            project
        )
        assert all(m.mtime == 0 and m.uid == 0 for m in archive.getmembers())
    assert all(n.startswith(("config/", "data/")) for n in project)
    assert (tmp_path / ENTRY).read_bytes() == (ROOT / "ml/spark/entry.py").read_bytes()
    assert [p.name for p in bundle.paths][-1] == ENTRY


def test_the_code_zip_is_importable_as_spark_submit_py_files(tmp_path: Path) -> None:
    build(ROOT, tmp_path)
    # A fresh interpreter outside the repository, the zip first on its path (as pyFiles puts it)
    probe = "import ml.spark.entry as e, ml.scoring as s; print(e.__file__); print(s.__file__)"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path / CODE_ZIP)!r}); " + probe,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.splitlines() == [
        str(tmp_path / CODE_ZIP / "ml/spark/entry.py"),
        str(tmp_path / CODE_ZIP / "ml/scoring.py"),
    ]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("config/deploy.yaml", "key: |\n  -----BEGIN RSA PRIVATE KEY-----\n  MIIE\n"),
        ("ml/settings_local.py", "AWS_ACCESS_KEY_ID = 'AKIAABCDEFGHIJKLMNOP'\n"),
        ("data/token.json", '{"token": "ghp_' + "a" * 36 + '"}'),
    ],
)
def test_a_file_holding_a_credential_stops_the_build(tmp_path: Path, name: str, text: str) -> None:
    tree = small_tree(tmp_path / "repo")
    (tree / name).write_text(text)

    with pytest.raises(ConfigError, match=rf"{name} looks like a credential"):
        build(tree, tmp_path / "out")


def test_files_outside_the_allow_list_are_left_out(tmp_path: Path) -> None:
    tree = small_tree(tmp_path / "repo")
    (tree / "config" / ".env").write_text("MLFLOW_TRACKING_PASSWORD=hunter2\n")
    (tree / "ml" / "notes.txt").write_text("x\n")
    (tree / "data" / "book.parquet").write_bytes(b"PAR1")

    build(tree, tmp_path / "out")

    code = zipfile.ZipFile(tmp_path / "out" / CODE_ZIP).namelist()
    with tarfile.open(tmp_path / "out" / PROJECT_ARCHIVE) as archive:
        project = archive.getnames()
    assert "ml/notes.txt" not in code
    assert project == ["config/train.yaml", "data/PROVENANCE.md"]
    assert b"hunter2" not in (tmp_path / "out" / PROJECT_ARCHIVE).read_bytes()


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    with aws_in_process(monkeypatch):
        boto3.client("s3", region_name="eu-west-1").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield BUCKET


def test_the_verb_uploads_the_bundle_where_submit_points_the_job(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the settings the platform root's `spark` output gives
    code_uri = f"s3://{bucket}/code/"
    monkeypatch.setenv("ML_SPARK_APPLICATION_ID", "00abc")
    monkeypatch.setenv("ML_SPARK_JOB_ROLE_ARN", "arn:aws:iam::123456789012:role/job")
    monkeypatch.setenv("ML_SPARK_CODE_URI", code_uri)
    monkeypatch.chdir(ROOT)

    # When the bundle is built and uploaded
    result = CliRunner().invoke(app, ["spark", "bundle", "--output", str(tmp_path), "--upload"])

    # Then the three files are under code/, each with its digest, and a job request names them
    assert result.exit_code == 0, result.output
    s3 = boto3.client("s3", region_name="eu-west-1")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["code/code.zip", "code/entry.py", "code/project.tar.gz"]
    for name in (CODE_ZIP, PROJECT_ARCHIVE, ENTRY):
        stored = s3.get_object(Bucket=bucket, Key=f"code/{name}")
        assert stored["Body"].read() == (tmp_path / name).read_bytes()
        assert stored["Metadata"]["sha256"] in result.output
    request = job_request(SparkJobSettings(), "score", [])
    assert request.entry_point == f"{code_uri}{ENTRY}"
    assert f"spark.submit.pyFiles={code_uri}{CODE_ZIP}" in request.submit_parameters
    assert f"{code_uri}{PROJECT_ARCHIVE}#project" in request.submit_parameters
    assert zipfile.ZipFile(io.BytesIO((tmp_path / CODE_ZIP).read_bytes())).testzip() is None
