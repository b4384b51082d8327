"""`mlops features …`: materialize a snapshot to the online store, roll back, status, skew.

The work is in `ml.feature_store`. Redis comes from ML_FEATURES_REDIS_URL (`rediss://` for TLS)
and its auth token from ML_FEATURES_REDIS_AUTH_TOKEN, never from a flag (a flag shows in `ps`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ml.cli.base import mlops_command

if TYPE_CHECKING:
    from ml.contract import ModelContract
    from ml.feature_store.layout import Keys
    from ml.feature_store.redis_adapter import SyncRedis

features_app = typer.Typer(
    help="The online feature store in Redis: snapshots, pointer switch, rollback, skew check.",
    no_args_is_help=True,
)

DEFAULT_URL = "redis://127.0.0.1:6379/0"
TOKEN_ENV = "ML_FEATURES_REDIS_AUTH_TOKEN"  # noqa: S105 - a variable name, not a secret

UrlOption = Annotated[
    str,
    typer.Option(
        "--redis-url",
        envvar="ML_FEATURES_REDIS_URL",
        help="Redis URL, rediss:// for TLS (ML_FEATURES_REDIS_URL); the auth token comes from "
        f"{TOKEN_ENV}.",
    ),
]
SetOption = Annotated[
    str,
    typer.Option("--feature-set", help="Feature set (key namespace): the model name by default."),
]
ContractOption = Annotated[
    Path | None,
    typer.Option(
        "--contract",
        help="The model version's contract.json (default: the built-in credit-risk contract).",
    ),
]
IdOption = Annotated[str, typer.Option("--id-column", help="The applicant id column.")]
GraceOption = Annotated[
    int,
    typer.Option(
        "--grace",
        min=60,
        help="Seconds the snapshot switched away from keeps its keys (the rollback window).",
    ),
]
VersionOption = Annotated[
    str | None,
    typer.Option(
        "--data-version",
        help="Data version recorded with the snapshot (default: 16 hex digits of the file's "
        "sha256; pass the DVC hash to tie it to dvc.lock).",
    ),
]


def _open(url: str, feature_set: str) -> tuple[SyncRedis, Keys]:
    from ml.errors import ConfigError
    from ml.feature_store.layout import Keys, LayoutError
    from ml.feature_store.redis_adapter import SyncRedis

    try:
        keys = Keys(feature_set)
    except LayoutError as exc:
        raise ConfigError(str(exc)) from exc
    return SyncRedis(url, os.environ.get(TOKEN_ENV) or None), keys


def _contract(path: Path | None) -> ModelContract:
    from ml.contract import load_contract

    if path is None:
        from ml.features import CONTRACT

        return CONTRACT
    return load_contract(path)


@features_app.command("materialize")
@mlops_command
def materialize(
    input_: Annotated[
        str,
        typer.Option("--input", help="Features file, CSV or Parquet: a path or s3://bucket/key."),
    ],
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            help="Rows refused by the contract, with the reason (default: INPUT's name + "
            ".rejects.parquet in the current folder).",
        ),
    ] = None,
    redis_url: UrlOption = DEFAULT_URL,
    feature_set: SetOption = "credit-risk",
    contract: ContractOption = None,
    id_column: IdOption = "ID",
    data_version: VersionOption = None,
    grace: GraceOption = 7 * 24 * 3600,
    max_rejected: Annotated[
        float,
        typer.Option(
            "--max-rejected",
            min=0.0,
            max=1.0,
            help="Above this fraction of refused rows nothing is switched.",
        ),
    ] = 0.05,
) -> None:
    """Write INPUT as a new snapshot, check it (count and sample), switch the pointer to it."""
    from ml.feature_store.materialize import materialize as run

    r, keys = _open(redis_url, feature_set)
    name = input_.rstrip("/").rsplit("/", 1)[-1]
    target = rejects or Path(f"{name.split('.', 1)[0]}.rejects.parquet")
    try:
        summary = run(
            r, keys, input_, _contract(contract),
            rejects=target, id_column=id_column, data_version=data_version,
            grace_s=grace, max_rejected=max_rejected,
        )  # fmt: skip
    finally:
        r.close()
    typer.echo(summary.to_json())


@features_app.command("rollback")
@mlops_command
def rollback(
    to: Annotated[
        int | None,
        typer.Option("--to", min=1, help="Snapshot to switch to (default: the previous one)."),
    ] = None,
    redis_url: UrlOption = DEFAULT_URL,
    feature_set: SetOption = "credit-risk",
    grace: GraceOption = 7 * 24 * 3600,
) -> None:
    """Switch the pointer back to the previous snapshot (or --to N) while its keys are kept."""
    import json

    from ml.feature_store.snapshots import rollback as run

    r, keys = _open(redis_url, feature_set)
    try:
        result = run(r, keys, to, grace)
    finally:
        r.close()
    typer.echo(json.dumps(result.to_dict(), indent=2))


@features_app.command("status")
@mlops_command
def status(redis_url: UrlOption = DEFAULT_URL, feature_set: SetOption = "credit-risk") -> None:
    """The current snapshot, the history of switches and the snapshots still kept."""
    import json

    from ml.feature_store.snapshots import status as run

    r, keys = _open(redis_url, feature_set)
    try:
        found = run(r, keys)
    finally:
        r.close()
    typer.echo(json.dumps(found.to_dict(), indent=2))


@features_app.command("skew")
@mlops_command
def skew(
    input_: Annotated[
        str,
        typer.Option(
            "--input", help="The file the current snapshot was materialised from (path or s3://)."
        ),
    ],
    sample: Annotated[
        int, typer.Option("--sample", min=1, help="Applicants compared (a uniform sample).")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample.")] = 0,
    redis_url: UrlOption = DEFAULT_URL,
    feature_set: SetOption = "credit-risk",
    contract: ContractOption = None,
    id_column: IdOption = "ID",
    data_version: VersionOption = None,
) -> None:
    """Gate: served vectors must equal their source rows bit for bit (exit 19 otherwise)."""
    from ml.errors import FeatureSkewError
    from ml.feature_store.skew import check

    r, keys = _open(redis_url, feature_set)
    try:
        report = check(
            r, keys, input_, _contract(contract), id_column=id_column, sample=sample,
            seed=seed, data_version=data_version,
        )  # fmt: skip
    finally:
        r.close()
    typer.echo(report.to_json())
    if not report.ok:
        raise FeatureSkewError(
            f"snapshot {report.snapshot}: {report.differing_count} of {report.sampled} sampled "
            f"applicants differ from {input_}, {len(report.missing)} listed missing"
        )
