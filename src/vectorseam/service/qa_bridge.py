"""The /ask route's wire format: the facade's answers (``VectorSeam.ask``) as JSON or server-sent events.

Streaming protocol (server-sent events), in order: ``passages`` (the numbered passages, sent before
generation so a page can show sources at once), any number of ``token`` (text deltas), then
``answer`` (the complete AskResponse, with citations parsed from the finished text), or ``error``
(``{"message": ...}``) if generation fails midway: by then the 200 status has been sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vectorseam.errors import VectorseamError
from vectorseam.query import Answer, Passage
from vectorseam.service.logs import get_logger
from vectorseam.service.models import AskRequest, AskResponse, Citation
from vectorseam.service.state import ServiceState


def _citation(p: Passage) -> Citation:
    return Citation(number=p.number, id=p.id, score=float(p.score), text=p.text, metadata=p.metadata)


def to_response(answer: Answer, llm: bool) -> AskResponse:
    return AskResponse(
        question=answer.question, answer=answer.text,
        citations=[_citation(p) for p in answer.citations],
        passages=[_citation(p) for p in answer.passages],
        unknown_citations=answer.unknown_citations,
        method="llm" if llm and not answer.extractive else "extractive",
        abstained=answer.abstained,
    )


def answer_question(state: ServiceState, collection: str, body: AskRequest) -> AskResponse:
    client = state.client
    answer = client.ask(body.question, k=body.k, mode=body.mode, filter=body.filter, collection=collection)
    return to_response(answer, client.llm_configured)


def stream_answer(state: ServiceState, collection: str, body: AskRequest) -> Iterator[tuple[str, Any]]:
    """Retrieval happens here, before the response starts, so its errors are still a proper 4xx."""
    client = state.client
    stream = client.ask_stream(body.question, k=body.k, mode=body.mode, filter=body.filter, collection=collection)

    def events() -> Iterator[tuple[str, Any]]:
        yield "passages", [_citation(p).model_dump() for p in stream.passages]
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
            yield "answer", to_response(stream.answer, client.llm_configured).model_dump()

    return events()
