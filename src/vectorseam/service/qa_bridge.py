"""The /ask route's link to the question-answering layer (vectorseam.retrieval.qa), kept in one place.

Streaming protocol (server-sent events), in order: ``passages`` (the numbered passages, sent before
generation so a page can show sources at once), any number of ``token`` (text deltas), then
``answer`` (the complete AskResponse, with citations parsed from the finished text), or ``error``
(``{"message": ...}``) if generation fails midway: by then the 200 status has been sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vectorseam.errors import VectorseamError
from vectorseam.retrieval.llm import ChatLLM
from vectorseam.retrieval.qa import Answer, Passage, QuestionAnswerer
from vectorseam.service.logs import get_logger
from vectorseam.service.models import AskRequest, AskResponse, Citation
from vectorseam.service.state import ServiceState
from vectorseam.types import Metadata


def _answerer(state: ServiceState, body: AskRequest) -> QuestionAnswerer:
    llm_settings = state.client.settings.llm
    llm = ChatLLM(llm_settings) if llm_settings.configured else None
    return QuestionAnswerer(state.retrieval, state.client.embedder, llm, k=body.k, mode=body.mode)


def _metadata(state: ServiceState, collection: str, passages: list[Passage]) -> dict[str, Metadata]:
    if not passages:
        return {}
    records = state.store.fetch(collection, [p.id for p in passages], include_vectors=False)
    return {r.id: r.metadata for r in records}


def _citation(p: Passage, meta: dict[str, Metadata]) -> Citation:
    return Citation(number=p.number, id=p.id, score=float(p.score), text=p.text, metadata=meta.get(p.id, {}))


def to_response(answer: Answer, meta: dict[str, Metadata], llm: bool) -> AskResponse:
    return AskResponse(
        question=answer.question, answer=answer.text,
        citations=[_citation(p, meta) for p in answer.citations],
        passages=[_citation(p, meta) for p in answer.passages],
        unknown_citations=answer.unknown_citations,
        method="llm" if llm and not answer.extractive else "extractive",
        abstained=answer.abstained,
    )


def answer_question(state: ServiceState, collection: str, body: AskRequest) -> AskResponse:
    answerer = _answerer(state, body)
    answer = answerer.ask(collection, body.question, body.filter)
    return to_response(answer, _metadata(state, collection, answer.passages), answerer.llm is not None)


def stream_answer(state: ServiceState, collection: str, body: AskRequest) -> Iterator[tuple[str, Any]]:
    """Retrieval happens here, before the response starts, so its errors are still a proper 4xx."""
    answerer = _answerer(state, body)
    stream = answerer.stream(collection, body.question, body.filter)
    meta = _metadata(state, collection, stream.passages)

    def events() -> Iterator[tuple[str, Any]]:
        yield "passages", [_citation(p, meta).model_dump() for p in stream.passages]
        try:
            for chunk in stream:
                yield "token", chunk
        except VectorseamError as exc:
            yield "error", {"message": str(exc)}
            return
        except Exception as exc:  # the status line is gone: report in-band, log the traceback
            get_logger().error("answer stream failed", exc_info=exc)
            yield "error", {"message": f"internal error while answering ({type(exc).__name__})"}
            return
        if stream.answer is not None:
            yield "answer", to_response(stream.answer, meta, answerer.llm is not None).model_dump()

    return events()
