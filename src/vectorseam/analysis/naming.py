"""Naming clusters with the configured chat model, as the Cookbook names its clusters.

The model gets each cluster's distinctive terms and a few central members and answers with a short
theme. Without a configured model, clusters keep their term-based description: naming is optional,
and it is refused loudly rather than silently skipped when asked for without a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from vectorseam.errors import ConfigError, VectorseamError

if TYPE_CHECKING:
    from vectorseam.config import LLMSettings

MAX_SAMPLE_CHARS = 400


class NamingError(VectorseamError):
    """The chat model could not be reached or gave no usable name."""


def name_prompt(terms: Sequence[str], samples: Sequence[str]) -> str:
    listed = "\n".join(f"- {s[:MAX_SAMPLE_CHARS]}" for s in samples)
    return (
        "These texts belong to one cluster. Its most distinctive terms are: "
        f"{', '.join(terms) or '(none)'}.\nRepresentative texts:\n{listed}\n\n"
        "What do they have in common? Answer with a theme of at most six words, nothing else."
    )


def name_clusters(
    llm: LLMSettings, described: Sequence[tuple[Sequence[str], Sequence[str]]]
) -> list[str]:
    """One short name per (terms, samples) cluster description."""
    if not llm.configured:
        raise ConfigError(
            "naming clusters needs a chat model: set llm.base_url (or llm.api_key) and llm.model, e.g. "
            "VECTORSEAM_LLM__BASE_URL=http://127.0.0.1:8000/v1 VECTORSEAM_LLM__MODEL=..., or leave out --name"
        )
    import openai

    client = openai.OpenAI(
        api_key=llm.api_key.get_secret_value() if llm.api_key else "unset",
        base_url=llm.base_url or "https://api.openai.com/v1",
        timeout=llm.timeout,
        max_retries=llm.max_retries,
    )
    names: list[str] = []
    for i, (terms, samples) in enumerate(described):
        try:
            response = client.chat.completions.create(
                model=str(llm.model),
                messages=[{"role": "user", "content": name_prompt(terms, samples)}],
                temperature=0,
                max_tokens=24,
            )
        except openai.OpenAIError as exc:
            raise NamingError(
                f"cluster {i}: the chat model {llm.model!r} at {llm.base_url or 'api.openai.com'} failed to "
                f"name it ({exc.__class__.__name__}: {exc}); check llm settings or leave out --name"
            ) from None
        content = (response.choices[0].message.content or "").strip() if response.choices else ""
        name = content.splitlines()[0].strip().strip('"').strip() if content else ""
        if not name:
            raise NamingError(f"cluster {i}: the chat model {llm.model!r} answered with an empty name")
        names.append(name[:80])
    return names
