"""``POST /v1/embeddings`` and ``GET /v1/models`` in OpenAI's wire format, serving the configured embedder.

Any OpenAI client (``base_url=http://host:8000/v1``) can then use the local model as if it were
OpenAI's. Differences are deliberate and loud: token-id inputs and a ``dimensions`` other than the
model's own are rejected with 400 rather than approximated. The inputs of one request together may
hold at most ``service.max_input_chars`` characters (413), checked before the model runs.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter

from vectorseam.errors import ValidationError
from vectorseam.service.json_route import JSONBodyRoute
from vectorseam.service.models import (
    EmbeddingOut,
    EmbeddingsRequest,
    EmbeddingsResponse,
    ModelOut,
    ModelsResponse,
    Usage,
)
from vectorseam.service.route_params import StateDep, error_responses
from vectorseam.service.state import ServiceState, require

router = APIRouter(prefix="/v1", tags=["openai"], route_class=JSONBodyRoute)
ERRORS = error_responses(400, 401, 403, 404, 413, 422)


def served_models(state: ServiceState) -> list[str]:
    """The configured model's full name and its short name (``all-MiniLM-L6-v2``) both work."""
    name = state.client.model_name
    names = [name]
    short = name.rsplit("/", 1)[-1]
    if short not in names:
        names.append(short)
    return names


@router.post("/embeddings", response_model=EmbeddingsResponse, responses=ERRORS,
             dependencies=[require("read")], summary="Create embeddings (OpenAI wire format)")
def embeddings(body: EmbeddingsRequest, state: StateDep) -> EmbeddingsResponse:
    models = served_models(state)
    if body.model not in models:
        raise ValidationError(f"model {body.model!r} is not served here; use one of {', '.join(models)}")
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    if not texts:
        raise ValidationError("input: give at least one text")
    state.check_batch(len(texts), "inputs")
    for i, text in enumerate(texts):
        if not text.strip():
            raise ValidationError(f"input[{i}]: empty text; every input must contain some text")
        state.check_text(text, f"input[{i}]")
    state.check_input_chars(texts, "input")
    dimension = state.client.embedder.dimension
    if body.dimensions is not None and body.dimensions != dimension:
        raise ValidationError(f"dimensions={body.dimensions}: {body.model} produces {dimension}-dimensional "
                              "vectors and cannot shorten them; omit 'dimensions'")
    matrix = state.client.embed(texts)
    data = [
        EmbeddingOut(index=i, embedding=base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
                     if body.encoding_format == "base64" else [float(x) for x in row])
        for i, row in enumerate(matrix)
    ]
    tokens = state.client.count_tokens(texts)
    return EmbeddingsResponse(data=data, model=body.model,
                              usage=Usage(prompt_tokens=tokens, total_tokens=tokens))


@router.get("/models", response_model=ModelsResponse, responses=ERRORS, dependencies=[require("read")],
            summary="The embedding models this server serves (OpenAI wire format)")
def models(state: StateDep) -> ModelsResponse:
    return ModelsResponse(data=[ModelOut(id=m) for m in served_models(state)])
