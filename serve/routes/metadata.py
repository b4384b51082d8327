"""/metadata: which model, which deployment, which configuration (credentials redacted)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from serve.deps import ModelDep, SettingsDep
from serve.schemas import ErrorBody

router = APIRouter(tags=["metadata"])


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


@router.get("/metadata", responses={503: {"model": ErrorBody}})
async def metadata(request: Request, model: ModelDep, settings: SettingsDep) -> dict[str, Any]:
    """The served model (name, version, alias, run, metrics, signature, contract) and the
    deployment, and the online feature store's current snapshot when by-id is on."""
    features = request.app.state.features
    if features is not None and features.current is None:
        await features.check()  # the first look names the snapshot without waiting for a request
    return {
        "model": {
            "name": model.name,
            "version": model.version,
            "alias": model.alias,
            # Pinned: this process serves this version whatever the alias says (ECS tasks).
            "pinned": settings.model_version is not None and model.source == "registry",
            "source": model.source,
            "uri": model.uri,
            "run_id": model.run_id,
            "flavor": model.flavor,
            "metrics": model.metrics,
            "signature": model.signature,
            "contract": {"source": model.contract_source, **model.contract.to_dict()},
            "loaded_at": _iso(model.loaded_at),
        },
        "deployment": {
            "git_commit": settings.git_commit,
            "image_tag": settings.image_tag,
            "started_at": _iso(request.app.state.started_at),
        },
        "config": settings.redacted(),
        "features": features.describe() if features is not None else None,
    }
