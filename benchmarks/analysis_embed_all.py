"""Fill the embedding cache for every analysis benchmark (run once, in the background)."""

from __future__ import annotations

from analysis_common import ag_news, combined, embed_cached, fine_food, mrpc, snli

if __name__ == "__main__":
    rows = fine_food()
    embed_cached("fine_food", [combined(r) for r in rows])
    pairs = [p for p in snli() if p["gold_label"] == "entailment"]  # the Cookbook keeps only these
    embed_cached("snli", [p["sentence1"] for p in pairs] + [p["sentence2"] for p in pairs])
    m = mrpc()
    embed_cached("mrpc", [a for _, a, _ in m] + [b for _, _, b in m])
    texts, _, _ = ag_news()
    embed_cached("ag_news", texts)
