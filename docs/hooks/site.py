"""mkdocs hooks that build the generated parts of the site, so they never go stale.

* reference pages generated from the code: configuration (the pydantic settings models), CLI (the typer
  app), HTTP (the service's OpenAPI document) and one Python API page per package (mkdocstrings, from
  the docstrings);
* files kept elsewhere in the repository shown where a page includes them (``<!-- include: PATH -->``,
  see ``includes.py``): benchmark results, the changelog, the store adapters' READMEs;
* the benchmark plots and result JSON published beside them.

Anything that would leave the site incomplete is a warning, which ``mkdocs build --strict`` (``make docs``,
``make docs-check``) turns into a failure: a results table no page includes, a package with no API page.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

sys.path.insert(0, str(Path(__file__).parent))

import includes
import ref_cli
import ref_config
import ref_http

log = logging.getLogger("mkdocs.plugins.vectorseam")

# The Python API reference: one page per package of src/vectorseam, in the order of the layers (top
# first). The modules of each are found on disk, so a new module appears without an edit here; a new
# package without an entry is a warning.
API_PAGES: dict[str, tuple[str, str]] = {
    "client": ("The VectorSeam facade", "The Python API: one object that runs search, recommendations, answers, "
               "ingest and analysis over the configured store and embedder. The CLI and the service call it too."),
    "integrations": ("Framework integrations", "LangChain, LlamaIndex and Haystack over vectorseam."),
    "analysis": ("Analysis", "Clustering, near-duplicates, zero-shot classification, customized embeddings, maps."),
    "retrieval": ("Retrieval", "Dense, BM25 and hybrid search, MMR, recommendations, answers, evaluation, tuning."),
    "ingest": ("Ingest", "Load jobs, sources, chunking, the record manager, the embedding cache, migrate, "
               "reindex, aliases, the Ray engine."),
    "stores": ("Stores", "The embedded memory store, store wrappers and the registry of store plugins."),
    "embedders": ("Embedders", "The embedder protocol, the local model, OpenAI-compatible endpoints, "
                  "customized spaces."),
    "core": ("Core", "Records, errors, filters, the store protocol and its optional abilities, configuration, "
             "the data directory and durable state."),
    "testing": ("Testing kit", "The conformance suite every store passes, and the reference implementation it "
                "checks against: for authors of store adapters."),
    "service": ("HTTP service internals", "The FastAPI application behind `vectorseam serve` (the routes "
                "themselves: [HTTP reference](../http.md))."),
    "cli": ("CLI internals", "The typer application (the commands themselves: [CLI reference](../cli.md))."),
}
SKIP_RESULTS = {"SUMMARY.md"}  # joins the other tables for the README; the site shows each in place
# A place kept for a screenshot (docs/images/, taken by the browser tests): shown once the file exists.
SCREENSHOT = re.compile(r'^<!--\s*screenshot:\s*(?P<path>\S+)\s+"(?P<caption>[^"]*)"\s*-->\s*$', re.MULTILINE)


def _repo(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).parent


def _modules(package_dir: Path, package: str) -> dict[str, list[str]]:
    """Public modules by API page: top-level modules on the core page, each subpackage on its own."""
    pages: dict[str, list[str]] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts) or parts == ["cli", "__main__"]:
            continue
        if not parts:
            continue
        page = parts[0] if (package_dir / parts[0]).is_dir() or parts[0] == "client" else "core"
        pages.setdefault(page, []).append(".".join([package, *parts]))
    return pages


def _api_page(page: str, modules: list[str]) -> str:
    title, intro = API_PAGES[page]
    out = [f"# {title}", "", intro, ""]
    for module in modules:
        out.extend([f"::: {module}", ""])
    return "\n".join(out)


def _http_page() -> tuple[str, str]:
    try:
        from vectorseam.client import VectorSeam
        from vectorseam.config import Settings
        from vectorseam.service.app import create_app
    except ImportError as exc:
        raise RuntimeError(f"the HTTP reference renders the service's OpenAPI document and needs the service "
                           f"installed ({exc}): pip install -e '.[all,docs]'") from exc
    with tempfile.TemporaryDirectory() as data_dir:
        client = VectorSeam(settings=Settings(data_dir=Path(data_dir)))  # type: ignore[call-arg]
        try:
            spec = create_app(client, warm_up=False).openapi()
        finally:
            client.close()
    return ref_http.render(spec), json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def _cli_page() -> str:
    import vectorseam.cli as cli

    cli._register()  # the command modules add themselves to the app on import
    return ref_cli.render(cli.app)


def _config_page() -> str:
    from vectorseam.config import Settings

    return ref_config.render(Settings)


_linker: includes.Linker | None = None


def on_files(files: Files, config: MkDocsConfig) -> Files:
    global _linker
    repo = _repo(config)

    def add(uri: str, content: str | None = None, source: Path | None = None) -> None:
        if files.get_file_from_path(uri) is not None:
            log.warning("generated page %s is also a file in docs/: remove the file", uri)
            return
        if source is not None:
            files.append(File.generated(config, uri, abs_src_path=str(source)))
        else:
            files.append(File.generated(config, uri, content=content or ""))

    add("reference/configuration.md", _config_page())
    add("reference/cli.md", _cli_page())
    http_md, openapi = _http_page()
    add("reference/http.md", http_md)
    add("reference/openapi.json", openapi)

    pages = _modules(repo / "src" / "vectorseam", "vectorseam")
    for page, modules in pages.items():
        if page not in API_PAGES:
            log.warning("package vectorseam.%s has no page in the Python API reference: add it to API_PAGES in "
                        "docs/hooks/site.py and to the nav", page)
            continue
        add(f"reference/python/{page}.md", _api_page(page, modules))

    published: dict[str, str] = {}
    for path in sorted((repo / "benchmarks" / "results").iterdir()):
        if path.suffix in (".png", ".json"):
            uri = f"benchmarks/results/{path.name}"
            add(uri, source=path)
            published[f"benchmarks/results/{path.name}"] = uri

    included: dict[str, str] = {}
    for file in files.documentation_pages():
        if file.generated_by is None and file.abs_src_path:
            for included_path, _level in includes.markers(Path(file.abs_src_path).read_text(encoding="utf-8")):
                included.setdefault(included_path, file.src_uri)
    for result in sorted((repo / "benchmarks" / "results").glob("*.md")):
        rel = f"benchmarks/results/{result.name}"
        if result.name not in SKIP_RESULTS and rel not in included:
            log.warning("benchmark result %s is on no page of the site: include it in a docs/benchmarks page", rel)
    _linker = includes.Linker(repo, included, published)
    return files


def _screenshots(markdown: str, page: Page, files: Files) -> str:
    def show(m: re.Match[str]) -> str:
        if files.get_file_from_path(m["path"]) is None:
            log.info("%s: no screenshot %s yet; the page shows none", page.file.src_uri, m["path"])
            return ""
        url = posixpath.relpath(m["path"], posixpath.dirname(page.file.src_uri) or ".")
        caption = m["caption"]
        return f'<figure markdown="span">\n  ![{caption}]({url})\n  <figcaption>{caption}</figcaption>\n</figure>\n'

    return SCREENSHOT.sub(show, markdown)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files, **kwargs: Any) -> str:
    if _linker is None or page.file.generated_by is not None:
        return markdown
    return _screenshots(_linker.expand(markdown, page.file.src_uri), page, files)
