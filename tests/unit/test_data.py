"""Ingest: checksum verification, empty files, and the three kinds of source."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from ml.data import ingest
from ml.errors import DataError

CSV = b"a,b\n1,2\n3,4\n"
SHA = hashlib.sha256(CSV).hexdigest()


def test_gzip_and_plain_verify_against_the_same_hash(tmp_path: Path) -> None:
    plain = tmp_path / "d.csv"
    plain.write_bytes(CSV)
    packed = tmp_path / "d.csv.gz"
    packed.write_bytes(gzip.compress(CSV))
    for path in (plain, packed):
        frame, snapshot = ingest(str(path), SHA)
        assert frame.shape == (2, 2)
        assert (snapshot.rows, snapshot.sha256, snapshot.source) == (2, SHA, str(path))


def test_checksum_mismatch_names_both_hashes(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(CSV + b"5,6\n")
    with pytest.raises(DataError, match=f"checksum mismatch.*expected sha256 {SHA}"):
        ingest(str(path), SHA)


def test_missing_hash_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(CSV)
    with pytest.raises(DataError, match="--data-sha256"):
        ingest(str(path), None)


@pytest.mark.parametrize(("content", "message"), [(b"", "is empty"), (b"a,b\n", "no rows")])
def test_empty_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        ingest(str(path), hashlib.sha256(content).hexdigest())


def test_missing_file_and_unknown_scheme(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        ingest(str(tmp_path / "nope.csv"), SHA)
    with pytest.raises(DataError, match="unsupported data source scheme 'ftp'"):
        ingest("ftp://example.invalid/d.csv", SHA)


def test_http_source_is_downloaded_and_verified(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes(CSV)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *_args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        frame, snapshot = ingest(f"{base}/d.csv", SHA)
        assert len(frame) == 2
        assert snapshot.source == f"{base}/d.csv"
        with pytest.raises(DataError, match="cannot download"):
            ingest(f"{base}/missing.csv", SHA)
    finally:
        server.shutdown()


def test_s3_source_through_moto_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto in server mode (its threaded server) stands in for S3."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="data")
        s3.put_object(Bucket="data", Key="snap/d.csv.gz", Body=gzip.compress(CSV))
        frame, snapshot = ingest("s3://data/snap/d.csv.gz", SHA)
        assert len(frame) == 2
        assert snapshot.sha256 == SHA
        with pytest.raises(DataError, match=r"cannot download s3://data/other\.csv"):
            ingest("s3://data/other.csv", SHA)
    finally:
        server.stop()


def test_a_cut_short_gzip_names_the_byte_and_the_line(tmp_path: Path) -> None:
    import gzip

    from ml.data import check_gzip, gzip_damage

    text = "".join(f"{i},{i * 2}\n" for i in range(20_000)).encode()
    whole = tmp_path / "whole.csv.gz"
    whole.write_bytes(gzip.compress(text))
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    assert gzip_damage(whole) is None
    damage = gzip_damage(cut)
    assert damage is not None
    assert f"ends at byte {cut.stat().st_size:,}" in damage
    assert "after line " in damage
    with pytest.raises(DataError, match=r"^cut\.csv\.gz: the gzip data is cut short"):
        check_gzip(cut, "cut.csv.gz")


def test_corrupt_gzip_data_names_where(tmp_path: Path) -> None:
    import gzip

    from ml.data import gzip_damage

    data = bytearray(gzip.compress(bytes(range(256)) * 4000))
    data[100:400] = b"\xff" * 300
    bad = tmp_path / "bad.gz"
    bad.write_bytes(bytes(data))

    damage = gzip_damage(bad)

    assert damage is not None
    assert damage.startswith("corrupt gzip data between bytes 0 and ")
