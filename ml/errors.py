"""One exception hierarchy for the whole package.

The CLI maps these to exit codes in one place (`ml.cli.base.mlops_command`), so every failure a
user can cause ends with a one-line message and a stable exit code instead of a traceback. Each
class states its code (2 config/spec ... 16 interrupted, 17 superseded), its label and whether a
retry can change it (`final`); a subclass shares its parent's code only where the contract
groups them (a spec error is a config error). `exit_codes()` is the table orchestrators read.
"""

from __future__ import annotations


class MlopsError(Exception):
    """Base of every error a user can cause or fix; `exit_code` is what the CLI exits with."""

    exit_code = 1
    label = "unexpected"
    # True when running the same command again cannot change the outcome (bad input, a
    # gate said no, a threshold was crossed): an orchestrator fails at once, not retries.
    final = False


class ConfigError(MlopsError):
    """A settings value or configuration file is wrong."""

    exit_code = 2
    label = "configuration"
    final = True


class OutputError(ConfigError):
    """An output file cannot be written (folder missing or read-only, disk full); nothing of
    the command's outputs was left behind. The message names the path."""

    exit_code = 2


class DataError(MlopsError):
    """The dataset cannot be fetched, does not match its checksum, or cannot be parsed."""

    exit_code = 3
    label = "data"
    final = True


class DataValidationError(DataError):
    """The dataset parsed but failed named validation checks; all failures are listed."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        lines = "\n".join(f"  - {failure}" for failure in failures)
        super().__init__(f"data validation failed ({len(failures)} checks):\n{lines}")


class RegistryError(MlopsError):
    """The MLflow registry is unreachable or does not hold what was asked for."""

    exit_code = 4
    label = "registry"


class UnreachableError(MlopsError):
    """An outside service (S3, an HTTP source) did not answer within the CLI's budget
    (ml/waits.py); the message names it, where, and what to do. Same code as the registry's."""

    exit_code = 4


class SpecError(ConfigError):
    """`promotions.yaml` or `config/gates.yaml` is malformed; the message says file, line, fix."""

    exit_code = 2


class GateError(MlopsError):
    """A promotion gate failed (metric floor, regression, tags, signature, integrity)."""

    exit_code = 5
    label = "gate failed"
    final = True


class DriftError(MlopsError):
    """The registry differs from what git says was applied (changed outside git)."""

    exit_code = 6
    label = "drift"


class ApplyError(MlopsError):
    """`apply` refused (e.g. production before staging) or could not verify its writes."""

    exit_code = 7
    label = "apply"


class RollbackError(MlopsError):
    """No rollback target, or the edit/commit/PR could not be made."""

    exit_code = 8
    label = "rollback"


class DeployError(MlopsError):
    """A deploy failed; the alias and the task definition were reverted and the revert verified."""

    exit_code = 9
    label = "deploy"


class RevertError(MlopsError):
    """A deploy failed AND its revert failed or could not be verified: a human is needed."""

    exit_code = 10
    label = "revert"


class LeaseError(MlopsError):
    """Another live apply or deploy holds the model's lease; the message names the holder."""

    exit_code = 11
    label = "lease"


class GitHubError(MlopsError):
    """A git, `gh` or GitHub API operation failed; the message names the command or call."""

    exit_code = 12
    label = "git/GitHub"


class ImageError(MlopsError):
    """An image build or push failed."""

    exit_code = 13
    label = "image"


class ReleaseError(MlopsError):
    """A release is missing, not verified where required, or inconsistent."""

    exit_code = 14
    label = "release"


class MonitoringBreach(MlopsError):  # noqa: N818 - a finding, not a failure of the tool
    """A drift or data-check threshold was crossed (the report was written)."""

    exit_code = 15
    label = "threshold crossed"
    final = True


class InterruptedOperationError(MlopsError):
    """`status` found an interrupted apply or deploy (a `promotion.<env>.pending` record)."""

    exit_code = 16
    label = "interrupted"


class DeployInterruptedError(InterruptedOperationError):
    """SIGINT/SIGTERM stopped a deploy (a cancelled job): nothing was reverted, the alias did
    not move, and the unfinished deploy record makes the next run resume."""

    exit_code = 16


class SupersededError(MlopsError):
    """A newer release already reached the environment: this older one is not deployed (a
    waiting production run approved after a newer one shipped never steps production back)."""

    exit_code = 17
    label = "superseded"


class SmokeTestError(MlopsError):
    """A service did not answer as the release it should run (`mlops smoke`; inside a deploy
    it triggers the revert and the deploy exits with `DeployError`/`RevertError`)."""


class ContractError(DataError):
    """A model contract (`contract.json`) is malformed or does not fit the model or the input."""


class FeatureStoreError(MlopsError):
    """The online feature store refused or could not finish a write, a switch or a read (the
    pointer readers follow stays where it was)."""

    exit_code = 18
    label = "feature store"


class FeatureStoreUnavailableError(FeatureStoreError):
    """Redis did not answer (down, unreachable, refused the credentials)."""


class FeatureSkewError(MlopsError):
    """Served feature vectors differ from the rows they were materialised from."""

    exit_code = 19
    label = "feature skew"


class SparkJobError(MlopsError):
    """A Spark job on EMR Serverless ended FAILED; the message names the run, its state details
    and where its logs are."""

    exit_code = 21
    label = "Spark job failed"


class SparkJobCancelledError(SparkJobError):
    """A Spark job was cancelled (by a person, or by EMR Serverless) before it finished."""

    exit_code = 22
    label = "Spark job cancelled"
    final = True


class SparkJobTimeoutError(SparkJobError):
    """A Spark job did not finish within the wait budget; it was cancelled so that it stops
    costing, and the message names the run."""

    exit_code = 23
    label = "Spark job timed out (cancelled)"
    final = True


def one_line(text: str, limit: int = 400) -> str:
    """`text` (a command's stderr, an HTTP error body) on one line, cut to `limit` characters,
    for an error message."""
    return " ".join(text.split())[:limit] or "no output"


class NotFoundError(LookupError):
    """A resource an adapter asked for does not exist (HTTP 404 from GitHub or MLflow's admin
    API): control flow for a caller that then creates it, never an error shown to a user."""


def exit_codes() -> dict[int, tuple[str, bool]]:
    """Every exit code with its label and finality (`final`: a retry cannot change it).

    Read from the classes that introduce a code; a subclass sharing its parent's code adds
    nothing. Orchestrators that cannot import this package (the Airflow DAGs) read the same
    table from `exit_codes_json()`'s output, checked in as dags/exit_codes.json.
    """
    table: dict[int, tuple[str, bool]] = {}
    queue: list[type[MlopsError]] = [MlopsError]
    while queue:
        cls = queue.pop(0)
        table.setdefault(cls.exit_code, (cls.label, cls.final))
        queue.extend(cls.__subclasses__())
    return dict(sorted(table.items()))


def exit_codes_json() -> str:
    """`exit_codes()` as the JSON document dags/exit_codes.json holds (`make dags-exit-codes`)."""
    import json

    table = {
        str(code): {"label": label, "final": final} for code, (label, final) in exit_codes().items()
    }
    return json.dumps(table, indent=2) + "\n"
