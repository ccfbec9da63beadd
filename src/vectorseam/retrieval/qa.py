"""Question answering over a collection: retrieve, pack passages into a token budget, answer with citations.

* Passages are numbered ``[1]``, ``[2]``... in retrieval order; an answer's ``[n]`` is mapped back to
  the record id of passage n, and numbers that match no passage are reported, not hidden.
* With an LLM configured (any OpenAI-compatible chat endpoint), the prompt follows the OpenAI
  Cookbook's: answer only from the passages, else write exactly "I could not find an answer.", and
  cite passages by number.
* Without one (the offline default), the answer is *extractive*: the retrieved sentences closest to
  the question by embedding similarity, each with its citation, labelled as extracted. When no
  sentence is close enough it abstains with the same sentence as the prompt asks of a model.
* Token counts are estimated without the model's tokenizer (:data:`vectorseam.embedding.ESTIMATE`: pieces
  of at most four letters, each punctuation mark one), which over-counts English a little against BPE
  tokenizers: a budget is never exceeded.
* Passages come from the one query path (:class:`~vectorseam.retrieval.engine.QueryRunner`), so the
  collection's tuned profile applies to them as to a search.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from vectorseam.embedding import ESTIMATE, Embedder
from vectorseam.errors import ValidationError
from vectorseam.filters import FilterLike
from vectorseam.query import Answer, Passage, query_of
from vectorseam.retrieval.engine import QueryRunner
from vectorseam.retrieval.llm import ChatLLM, ChatMessage
from vectorseam.types import Hit

ABSTAIN = "I could not find an answer."
EXTRACTED_LABEL = "Extracted from the retrieved passages (no language model configured):"
SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages you are given. After each statement, cite "
    "the passage it comes from by its number in square brackets, for example [1] or [2]. "
    f'If the answer cannot be found in the passages, write "{ABSTAIN}"'
)
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")
PROMPT_OVERHEAD = 120  # the system prompt, the framing lines and the chat template, estimated


def estimate_tokens(text: str) -> int:
    return ESTIMATE.count(text)


def check_question(question: object, budget: int) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ValidationError("the question is empty; ask something, e.g. vectorseam ask \"what is ...?\"")
    need = estimate_tokens(question) + PROMPT_OVERHEAD
    if need >= budget:
        raise ValidationError(
            f"the question is about {estimate_tokens(question)} tokens, which with the prompt leaves no room "
            f"for passages in the budget of {budget} tokens; shorten the question or raise --budget"
        )
    return question.strip()


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def _truncate(text: str, budget: int) -> str:
    """The longest run of whole sentences (else words) from the start of ``text`` within ``budget``."""
    out: list[str] = []
    used = 0
    for sentence in split_sentences(text):
        cost = estimate_tokens(sentence) + 1
        if used + cost > budget:
            break
        out.append(sentence)
        used += cost
    if out:
        return " ".join(out)
    words: list[str] = []
    for word in text.split():
        cost = estimate_tokens(word)
        if used + cost > budget:
            break
        words.append(word)
        used += cost
    return " ".join(words)


def pack_passages(question: str, hits: list[Hit], budget: int) -> list[Passage]:
    """Best-first hits that fit in ``budget`` tokens with the question; the first is cut to fit if need be."""
    remaining = budget - estimate_tokens(question) - PROMPT_OVERHEAD
    passages: list[Passage] = []
    for hit in hits:
        if not hit.text.strip():
            continue
        cost = estimate_tokens(hit.text) + 4  # "[n] " and the newline
        text = hit.text
        if cost > remaining:
            if passages:
                continue  # a later, shorter passage may still fit
            text = _truncate(hit.text, remaining - 4)
            if not text:
                break
            cost = estimate_tokens(text) + 4
        passages.append(Passage(len(passages) + 1, hit.id, text, hit.score, hit.metadata))
        remaining -= cost
    return passages


def build_messages(question: str, passages: list[Passage]) -> list[ChatMessage]:
    context = "\n\n".join(f"[{p.number}] {p.text}" for p in passages)
    user = f"Passages:\n{context}\n\nQuestion: {question}\nAnswer (cite passages as [n]):"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def parse_citations(text: str, passages: list[Passage]) -> tuple[list[Passage], list[int]]:
    """Passages cited as ``[n]`` or ``[n, m]``, in order of first mention, and numbers matching none."""
    by_number = {p.number: p for p in passages}
    cited: dict[int, Passage] = {}
    unknown: dict[int, None] = {}
    for group in _CITATION.findall(text):
        for part in group.split(","):
            n = int(part)
            if n in by_number:
                cited.setdefault(n, by_number[n])
            else:
                unknown[n] = None
    return list(cited.values()), list(unknown)


def finish(question: str, text: str, passages: list[Passage], extractive: bool = False) -> Answer:
    cited, unknown = parse_citations(text, passages)
    abstained = ABSTAIN.lower().rstrip(".") in text.lower()
    return Answer(question, text.strip(), passages, cited, unknown, extractive, abstained)


class AnswerStream:
    """Iterate for the answer's text as the model writes it; ``answer`` is complete afterwards."""

    def __init__(self, question: str, passages: list[Passage], chunks: Iterator[str]) -> None:
        self.question = question
        self.passages = passages
        self._chunks = chunks
        self._parts: list[str] = []
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        for chunk in self._chunks:
            self._parts.append(chunk)
            yield chunk
        self.answer = finish(self.question, "".join(self._parts), self.passages)


class QuestionAnswerer:
    def __init__(
        self,
        runner: QueryRunner,
        embedder: Embedder,
        llm: ChatLLM | None = None,
        budget: int = 1500,
        k: int = 5,
        mode: str = "dense",
        min_sentence_score: float = 0.4,
        max_sentences: int = 3,
    ) -> None:
        if budget <= PROMPT_OVERHEAD:
            raise ValidationError(f"the token budget must be more than {PROMPT_OVERHEAD}, got {budget}")
        self.runner = runner
        self.embedder = embedder
        self.llm = llm
        self.budget = budget
        self.k = k
        self.mode = mode
        self.min_sentence_score = min_sentence_score
        self.max_sentences = max_sentences

    def retrieve(self, collection: str, question: str, filter: FilterLike = None) -> list[Passage]:
        q = check_question(question, self.budget)
        hits = self.runner.run(collection, query_of(text=q, k=self.k, filter=filter, mode=self.mode)).hits
        return pack_passages(q, hits, self.budget)

    def ask(self, collection: str, question: str, filter: FilterLike = None) -> Answer:
        passages = self.retrieve(collection, question, filter)
        q = question.strip()
        if not passages:
            return Answer(q, ABSTAIN, [], abstained=True, extractive=self.llm is None)
        if self.llm is None:
            return self.extract(q, passages)
        return finish(q, self.llm.complete(build_messages(q, passages)), passages)

    def stream(self, collection: str, question: str, filter: FilterLike = None) -> AnswerStream:
        """Streamed generation; without an LLM the extractive answer arrives as one chunk."""
        passages = self.retrieve(collection, question, filter)
        q = question.strip()
        if not passages:
            return AnswerStream(q, [], iter([ABSTAIN]))
        if self.llm is None:
            answer = self.extract(q, passages)
            stream = AnswerStream(q, passages, iter([answer.text]))
            stream.answer = answer
            return stream
        return AnswerStream(q, passages, self.llm.stream(build_messages(q, passages)))

    def extract(self, question: str, passages: list[Passage]) -> Answer:
        """The passages' sentences closest to the question, each cited; abstains when none is close."""
        sentences = [(p, s) for p in passages for s in split_sentences(p.text) if len(s.split()) >= 3]
        if sentences:
            qvec = self.embedder.embed_query(question).astype(np.float64)
            svecs = self.embedder.embed_documents([s for _, s in sentences]).astype(np.float64)
            qvec /= np.linalg.norm(qvec) or 1.0
            svecs /= np.maximum(np.linalg.norm(svecs, axis=1, keepdims=True), 1e-12)
            sims = svecs @ qvec
            best = [i for i in np.argsort(-sims, kind="stable")[: self.max_sentences]
                    if sims[i] >= self.min_sentence_score]
        else:
            best = []
        if not best:
            answer = Answer(question, ABSTAIN, passages, extractive=True, abstained=True)
            return answer
        lines = [f"- {sentences[i][1]} [{sentences[i][0].number}]" for i in sorted(best)]
        return finish(question, EXTRACTED_LABEL + "\n" + "\n".join(lines), passages, extractive=True)
