"""2D maps of a collection: a PNG (matplotlib, Agg) and a self-contained interactive HTML page.

The HTML page is one file with inline SVG and a few lines of inline script, no CDN and no external
file, so it opens offline and can be mailed around. Every point is an SVG ``<circle>`` carrying its
record id and a ``<title>`` with its text, so the hover text works even with scripts disabled; the
script only adds a richer tooltip and legend toggling.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ConfigError, ValidationError
from vectorseam.extras import require

Projection: TypeAlias = Literal["tsne", "pca", "umap"]
PROJECTIONS: tuple[Projection, ...] = ("tsne", "pca", "umap")
MAX_COLOURS = 20  # beyond this, the rarest categories share the colour "other" (and say so in the legend)
HOVER_CHARS = 1000
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#dbdb8d", "#9edae5", "#393b79",
]
OTHER_COLOUR = "#c7c7c7"


def project(vectors: npt.NDArray[np.float32], method: Projection = "tsne", seed: int = 0) -> npt.NDArray[np.float64]:
    """Vectors (n, d) to 2D coordinates (n, 2), reproducibly for a given seed."""
    n = len(vectors)
    if method not in PROJECTIONS:
        raise ValidationError(f"unknown projection {method!r}; use one of {', '.join(PROJECTIONS)}")
    if n < 3:
        raise ValidationError(f"a map needs at least 3 records, the collection holds {n}")
    x = np.asarray(vectors, dtype=np.float64)
    if method in ("pca", "tsne"):
        require("analysis", f"the {method} projection of a map", ("sklearn",))
    if method == "pca":
        from sklearn.decomposition import PCA

        return np.asarray(PCA(n_components=2, random_state=seed).fit_transform(x), dtype=np.float64)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(1.0, (n - 1) / 3.0)))
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric="cosine")
        return np.asarray(tsne.fit_transform(x), dtype=np.float64)
    try:
        import umap
    except ImportError:
        raise ConfigError(
            "the umap projection needs the umap-learn package: `pip install umap-learn`, or use tsne or pca"
        ) from None
    reducer = umap.UMAP(n_components=2, random_state=seed, metric="cosine", n_neighbors=min(15, n - 1))
    return np.asarray(reducer.fit_transform(x), dtype=np.float64)


def colour_groups(categories: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Each point's legend entry and each entry's colour; the most frequent categories get colours."""
    counts = Counter(categories)
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    kept = set(ranked[:MAX_COLOURS - 1]) if len(ranked) > MAX_COLOURS else set(ranked)
    other = f"other ({len(ranked) - len(kept)} values)"
    entries = [c if c in kept else other for c in categories]
    ordered = sorted(kept, key=_natural) + ([other] if len(kept) < len(ranked) else [])
    colours = {e: (PALETTE[i % len(PALETTE)] if e != other else OTHER_COLOUR) for i, e in enumerate(ordered)}
    return entries, colours


def _natural(value: str) -> tuple[int, float, str]:
    head = value.split(":", 1)[0]
    try:
        return (0, float(head), value)
    except ValueError:
        return (1, 0.0, value)


def write_png(path: Path, coords: npt.NDArray[np.float64], categories: Sequence[str], title: str) -> Path:
    require("analysis", "a PNG map", ("matplotlib",))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries, colours = colour_groups(categories)
    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    size = 14 if len(coords) <= 2000 else 5
    for entry, colour in colours.items():
        mask = np.array([e == entry for e in entries])
        ax.scatter(coords[mask, 0], coords[mask, 1], s=size, c=colour, alpha=0.75, linewidths=0,
                   label=f"{entry} ({int(mask.sum())})")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False, markerscale=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


_SCRIPT = """
(function(){
  var tip=document.getElementById('tip');
  document.querySelectorAll('circle.pt').forEach(function(c){
    c.addEventListener('mouseenter',function(e){
      tip.textContent='';
      var h=document.createElement('b');h.textContent=c.dataset.id+' \\u2014 '+c.dataset.cat;tip.appendChild(h);
      var p=document.createElement('div');p.textContent=c.querySelector('title').textContent;tip.appendChild(p);
      tip.style.display='block';});
    c.addEventListener('mousemove',function(e){tip.style.left=(e.pageX+12)+'px';tip.style.top=(e.pageY+12)+'px';});
    c.addEventListener('mouseleave',function(){tip.style.display='none';});
  });
  document.querySelectorAll('li[data-cat]').forEach(function(li){
    li.addEventListener('click',function(){
      li.classList.toggle('off');var off=li.classList.contains('off');
      document.querySelectorAll('circle.pt').forEach(function(c){
        if(c.dataset.cat===li.dataset.cat){c.style.display=off?'none':'';}});
    });
  });
})();
"""


def write_html(
    path: Path,
    coords: npt.NDArray[np.float64],
    categories: Sequence[str],
    ids: Sequence[str],
    texts: Sequence[str],
    title: str,
) -> Path:
    entries, colours = colour_groups(categories)
    width, height, pad = 900.0, 700.0, 20.0
    lo = coords.min(axis=0)
    span = np.maximum(coords.max(axis=0) - lo, 1e-9)
    xs = pad + (coords[:, 0] - lo[0]) / span[0] * (width - 2 * pad)
    ys = height - pad - (coords[:, 1] - lo[1]) / span[1] * (height - 2 * pad)
    radius = 4 if len(coords) <= 2000 else 2.5
    esc = html.escape
    circles = []
    for i in range(len(coords)):
        text = texts[i] if len(texts[i]) <= HOVER_CHARS else texts[i][:HOVER_CHARS] + "..."
        circles.append(
            f'<circle class="pt" cx="{xs[i]:.1f}" cy="{ys[i]:.1f}" r="{radius}" fill="{colours[entries[i]]}" '
            f'data-id="{esc(ids[i])}" data-cat="{esc(entries[i])}"><title>{esc(text)}</title></circle>'
        )
    counts = Counter(entries)
    legend = "".join(
        f'<li data-cat="{esc(e)}"><span style="background:{c}"></span>{esc(e)} ({counts[e]})</li>'
        for e, c in colours.items()
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:16px;color:#222}}
#wrap{{display:flex;gap:16px;align-items:flex-start}}
svg{{border:1px solid #ddd;background:#fff}} circle.pt{{fill-opacity:.75}}
circle.pt:hover{{stroke:#000;stroke-width:1.5}}
ul{{list-style:none;padding:0;margin:0;font-size:13px}} li{{cursor:pointer;margin:3px 0}} li.off{{opacity:.35}}
li span{{display:inline-block;width:11px;height:11px;margin-right:6px;border-radius:50%}}
#tip{{position:absolute;display:none;max-width:420px;background:#fffff0;border:1px solid #999;padding:6px 8px;
font-size:12px;box-shadow:2px 2px 6px rgba(0,0,0,.2);pointer-events:none}}
</style></head><body>
<h2>{esc(title)}</h2>
<p>{len(coords)} points. Hover a point for its text; click a legend entry to hide or show it.</p>
<div id="wrap"><svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}"
 viewBox="0 0 {width:.0f} {height:.0f}">
{chr(10).join(circles)}
</svg><ul>{legend}</ul></div><div id="tip"></div>
<script type="application/json" id="meta">{esc(json.dumps({"points": len(coords), "title": title}))}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def write_map(
    prefix: Path,
    vectors: npt.NDArray[np.float32],
    ids: Sequence[str],
    texts: Sequence[str],
    categories: Sequence[str],
    method: Projection = "tsne",
    title: str = "collection map",
    seed: int = 0,
) -> tuple[Path, Path]:
    """Project and write ``<prefix>.png`` and ``<prefix>.html``; returns both paths."""
    if not (len(vectors) == len(ids) == len(texts) == len(categories)):
        raise ValidationError("map: vectors, ids, texts and categories must have the same length")
    coords = project(vectors, method, seed)
    base = prefix.with_suffix("") if prefix.suffix.lower() in (".png", ".html") else prefix
    png = write_png(base.with_name(base.name + ".png"), coords, categories, f"{title} ({method})")
    page = write_html(base.with_name(base.name + ".html"), coords, categories, ids, texts, f"{title} ({method})")
    return png, page
