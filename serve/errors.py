"""One exception hierarchy for serving, mapped once to HTTP status in `serve.app`."""

from __future__ import annotations


class ServeError(Exception):
    """Base class: every expected failure of the service; `status` is its HTTP status."""

    status: int = 500
    code: str = "internal_error"


class NotReadyError(ServeError):
    """No model is loaded yet."""

    status = 503
    code = "not_ready"


class UnauthorizedError(ServeError):
    """Missing or wrong bearer token."""

    status = 401
    code = "unauthorized"


class PayloadTooLargeError(ServeError):
    """The request body is larger than SERVE_MAX_BODY_BYTES."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(ServeError):
    """The request body is declared as something other than JSON."""

    status = 415
    code = "unsupported_media_type"


class ModelLoadError(ServeError):
    """A model could not be downloaded, parsed or warmed; the old one keeps serving."""

    status = 503
    code = "model_load_failed"


class RegistryUnavailableError(ModelLoadError):
    """The MLflow registry did not answer."""

    code = "registry_unavailable"


class InvalidInputError(ServeError):
    """The body does not fit the model's signature or contract.

    `detail` lists the first errors (each names its field), `count` says how many there were in
    all: the response stays small whatever the body (serve.request_parser.MAX_ERRORS).
    """

    status = 422
    code = "validation_error"

    def __init__(self, message: str, detail: list[dict[str, object]], count: int) -> None:
        super().__init__(message)
        self.detail = detail
        self.count = count


class FeaturesDisabledError(ServeError):
    """`/predict/by-id` needs the online feature store, and SERVE_FEATURES_REDIS_URL is unset."""

    status = 404
    code = "feature_store_disabled"


class FeatureStoreUnavailableError(ServeError):
    """Redis did not answer, or holds no current snapshot: by-id cannot score, /predict can."""

    status = 503
    code = "feature_store_unavailable"


class UnknownIdError(ServeError):
    """An applicant id is not in the current snapshot; `detail` names the snapshot and ids."""

    status = 404
    code = "unknown_id"

    def __init__(self, message: str, detail: dict[str, object]) -> None:
        super().__init__(message)
        self.detail = detail


class FeaturesIncompatibleError(ServeError):
    """The snapshot's vectors do not fit the served version (features it lacks, values outside
    the version's contract): the caller cannot fix it, the feature pipeline must."""

    status = 409
    code = "features_incompatible"
