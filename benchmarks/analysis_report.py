"""Collect benchmarks/results/analysis_*.json into the Markdown table benchmarks/results/analysis.md."""

from __future__ import annotations

import json
from typing import Any

from analysis_common import RESULTS


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"analysis_{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _pct(a: dict[str, Any]) -> str:
    return f"{100 * a['accuracy']:.1f}% ± {100 * a['ci95']:.1f}%"


def main() -> str:
    lines = ["# Analysis measurements", "",
             "Local model `sentence-transformers/all-MiniLM-L6-v2` (384-d), CPU. Reproduce with "
             "`python benchmarks/analysis_embed_all.py` (fills the embedding cache) and then "
             "`analysis_cluster.py`, `analysis_dedup.py`, `analysis_classify.py`, `analysis_customize.py`, "
             "`analysis_report.py`.", ""]
    cl = _load("cluster")
    if cl:
        lines += ["## Clustering: AG News test (7,600 items, 4 classes)", "",
                  "| k | V-measure | adjusted Rand | homogeneity | completeness | silhouette |", "|---|---|---|---|---|---|"]
        for name in ("k=4", "k by silhouette (2..8)"):
            r = cl.get(name)
            if r:
                label = name if name == "k=4" else f"{name}: k={r['k']}"
                lines.append(f"| {label} | {r['v_measure']:.3f} | {r['adjusted_rand']:.3f} | "
                             f"{r['homogeneity']:.3f} | {r['completeness']:.3f} | {r['silhouette']:.3f} |")
        lines += ["", "Map (t-SNE, coloured by label): `benchmarks/results/analysis_ag_news_map.png`.", ""]
    dd = _load("dedup")
    if dd:
        ff = dd["fine_food"]
        lines += ["## Near-duplicates", "",
                  f"Fine food reviews (1,000 rows, Cookbook text `Title: …; Content: …`): {ff['repeated_texts']} texts "
                  f"appear more than once, {ff['extra_rows']} extra rows, {ff['identical_pairs']} identical pairs.", "",
                  "| threshold | pairs | identical pairs found | near-identical pairs | groups | extra records |",
                  "|---|---|---|---|---|---|"]
        for key in ("threshold_0.999", "threshold_0.98", "threshold_0.95"):
            r = ff[key]
            lines.append(f"| {key.split('_')[1]} | {r['pairs']} | {r['identical_pairs_found']} / {ff['identical_pairs']} "
                         f"| {r['near_identical_pairs']} | {r['groups']} | {r['extra_records']} |")
        m = dd["mrpc"]
        lines += ["", f"MRPC paraphrase pairs ({m['pairs']}, {m['paraphrases']} paraphrases; only the train file is "
                  "available, so it is split 50/50 stratified, seed 123): threshold chosen on one half by F1, "
                  "scored on the other.", "",
                  "| split | threshold | precision | recall | F1 |", "|---|---|---|---|---|"]
        t = m["threshold_chosen_on_tune_half"]
        for name, key, thr in (("tuning half", "tune_half", t), ("held-out half", "held_out_half", t),
                               ("held-out half", "held_out_at_0.95", 0.95),
                               ("held-out, everything a paraphrase (baseline)", "baseline_all_paraphrase_held_out", "-")):
            r = m[key]
            lines.append(f"| {name} | {thr} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} |")
        lines.append("")
    cf = _load("classify")
    if cf:
        lines += ["## Zero-shot classification: fine food reviews", "",
                  f"{cf['records']} reviews (1–2 stars negative, 4–5 positive, 3 dropped; {cf['negatives']} negative).", "",
                  "| labels | accuracy (ours, local model) | Cookbook (OpenAI embeddings) |", "|---|---|---|",
                  f"| bare (`negative`, `positive`) | {cf['bare']['accuracy']:.3f} | {cf['cookbook_openai']['bare']} |",
                  f"| descriptive (`An Amazon review with a … sentiment.`) | {cf['descriptive']['accuracy']:.3f} | "
                  f"{cf['cookbook_openai']['descriptive']} |", ""]
    cu = _load("customize")
    if cu:
        lines += ["## Customized embeddings: SNLI 2k sample", "",
                  f"{cu['positive_pairs']} entailment pairs, stratified 50/50 split (random_state 123), one synthesized "
                  "negative per positive within each split. Test accuracy with a 95% interval.", "",
                  "| run | before (threshold from train) | after (threshold from train) | before (tuned on test) "
                  "| after (tuned on test) |", "|---|---|---|---|---|"]
        for name, r in cu["runs"].items():
            lines.append(f"| {name} | {_pct(r['before'])} | {_pct(r['after'])} | {_pct(r['before_test_tuned'])} | "
                         f"{_pct(r['after_test_tuned'])} |")
        lines += [f"| Cookbook, text-embedding-3-small | – | – | {cu['cookbook_openai']['before']} | "
                  f"{cu['cookbook_openai']['after']} |", "",
                  f"Same seed, same matrix (bit for bit): {cu['same_seed_same_matrix']}.", "",
                  "all-MiniLM-L6-v2 was itself trained on NLI data, so it starts far above the Cookbook's model "
                  "(96.6% vs 88.8%) and the linear matrix does not improve it on held-out pairs: training raises "
                  "train accuracy and lowers test accuracy (overfitting 335 positives). The default (identity start, "
                  "small steps) stays within the interval of the base space.", ""]
    text = "\n".join(lines)
    (RESULTS / "analysis.md").write_text(text)
    return text


if __name__ == "__main__":
    print(main())
