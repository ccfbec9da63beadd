"""Schemathesis on ``POST /v1/embeddings`` with the served model: no input the spec allows causes a 5xx.

The spec's ``model`` is any string (OpenAI clients name their own), so the general run
(tests/test_service_schemathesis.py) mostly meets "model not served here" and never reached the
embedder, where a lone surrogate once caused a 500. Here the spec is narrowed to the served model
before the run, so every generated ``input``, ``encoding_format`` and ``dimensions`` reaches it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import httpx
import pytest

from tests.test_service_schemathesis import ST
from tests.test_service_support import READ_KEY, build_service


@pytest.mark.skipif(not ST.exists() and shutil.which("st") is None,
                    reason="the schemathesis CLI (`st`) is not installed; `pip install -e '.[dev]'` installs it")
def test_embeddings_take_any_input_the_spec_allows_without_a_server_error(local_embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    svc = build_service(local_embedder)
    try:
        spec = httpx.get(f"{svc.url}/openapi.json", headers={"Authorization": f"Bearer {READ_KEY}"}).json()
        spec["paths"] = {"/v1/embeddings": spec["paths"]["/v1/embeddings"]}
        spec["components"]["schemas"]["EmbeddingsRequest"]["properties"]["model"] = {"const": "all-MiniLM-L6-v2"}
        (tmp_path / "embeddings.json").write_text(json.dumps(spec))
        cmd = [str(ST if ST.exists() else shutil.which("st")), "run", str(tmp_path / "embeddings.json"),
               "--url", svc.url,
               "--checks", "not_a_server_error",
               "--phases", "examples,fuzzing",
               "--max-examples", os.environ.get("VECTORSEAM_FUZZ_EXAMPLES", "60"),
               "--seed", "20240603",
               "--request-timeout", "60",
               "--header", f"Authorization: Bearer {READ_KEY}",
               "--generation-allow-x00", "true"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                             env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"})
        embedded = httpx.get(f"{svc.url}/metrics").text
    finally:
        svc.server.stop()
        svc.client.close()
    report = out.stdout[-6000:] + out.stderr[-2000:]
    assert out.returncode == 0, report
    counts = re.search(r"(\d+) generated, (\d+) passed", out.stdout)
    assert counts is not None and int(counts[1]) >= 30 and counts[1] == counts[2], report
    # the generated requests reached the model: some were answered 200
    assert re.search(r'vectorseam_http_requests_total\{method="POST",route="/v1/embeddings",status="200"\} '
                     r"([1-9]\d*)", embedded), embedded[-3000:]
