"""``tune --finetune`` end to end on a small collection (the help-portal set of test_tune): the local model
fine-tuned on judged queries, written to the data directory with its own fingerprint, the collection
re-embedded with it behind its alias; a reindex SIGKILLed halfway leaves searches on the base model.

A few training steps on short sequences keep it within seconds; what is checked is the round trip
(model folder, fingerprint, alias, search), not the quality gain, which the SciFact benchmark measures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_tune import PREFIX, make_set
from vectorseam.client import VectorSeam
from vectorseam.config import Settings
from vectorseam.embedders.local import LocalEmbedder
from vectorseam.embedding import FINGERPRINT_KEY
from vectorseam.errors import EmbedderMismatchError
from vectorseam.retrieval.finetune import MODEL_CARD
from vectorseam.retrieval.tune_profile import Fusion, RetrievalProfile
from vectorseam.tune_options import FinetuneOptions

QUERY = f"{PREFIX}: which nurse lives in Oslo?"
QUICK = {"epochs": 1, "batch_size": 8, "max_steps": 2, "max_seq_length": 48, "keep_without_gain": True}

KILLED_REINDEX = """
import os, signal, sys
from vectorseam.client import VectorSeam
from vectorseam.config import Settings
from vectorseam.embedders.local import LocalEmbedder
from vectorseam.ingest.job import JobState
from vectorseam.ingest.reindex import reindex_collection

vs = VectorSeam(settings=Settings(data_dir=sys.argv[1]))
batches = []

def progress(report):
    batches.append(report.written)
    if len(batches) == 2:  # the second batch is written: SIGKILL, no clean-up of any kind
        os.kill(os.getpid(), signal.SIGKILL)

reindex_collection(vs.store, vs.aliases, "portal", LocalEmbedder(sys.argv[2]), JobState.under(vs.data_dir, vs.store_key),
                   batch_size=8, progress=progress)
"""


def test_finetune_then_reindex_behind_the_alias(tmp_path: Path, local_embedder: Any) -> None:
    data = tmp_path / "data"
    root = make_set(tmp_path / "portal")
    vs = VectorSeam(settings=Settings(data_dir=data))
    vs.__dict__["embedder"] = local_embedder
    report, reindexed = vs.finetune_beir(root, "train", collection="portal", reindex=False,
                                         options=FinetuneOptions(**QUICK))
    assert reindexed is None and report.pairs > 0 and len(report.held_out) == 2
    model = Path(report.path)
    assert model.parent == data / "models" and (model / MODEL_CARD).is_file()
    card = json.loads((model / MODEL_CARD).read_text())
    assert card["trained_on"]["split"] == "train" and card["base"] == "sentence-transformers/all-MiniLM-L6-v2"
    tuned = LocalEmbedder(str(model))
    assert tuned.fingerprint == f"local:finetuned/{report.name}:384:normalized" != local_embedder.fingerprint
    before = [h.id for h in vs.retrieve(QUERY, k=5, mode="hybrid", collection="portal")]

    # a reindex killed after its second batch: the alias has not moved, searches stay on the base model
    killed = subprocess.run([sys.executable, "-c", KILLED_REINDEX, str(data), str(model)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    partial = {c.name: c.count for c in vs.collections()}
    target = next(n for n in partial if n.startswith("portal__"))
    assert 0 < partial[target] < partial["portal"] == 46
    assert vs.resolve("portal") == "portal"
    assert [h.id for h in vs.retrieve(QUERY, k=5, mode="hybrid", collection="portal")] == before

    # run again: it resumes, completes and switches; the base collection is kept until dropped, and the
    # base model's tuned profile comes along, reported as not applicable to the new model
    vs.profiles.save("portal", RetrievalProfile(local_embedder.fingerprint, "46:x", Fusion("zscore", 0.8, 60.0, 20)))
    done, fingerprint = vs.reindex("portal", "local", model=str(model))
    assert done.switched and done.skipped > 0 and fingerprint == tuned.fingerprint
    assert "was tuned for embedder" in done.profile and vs.profiles.find(done.target) is not None
    assert vs.resolve("portal") == done.target == target
    assert vs.collection_info("portal").metadata[FINGERPRINT_KEY] == tuned.fingerprint
    assert {c.name for c in vs.collections()} >= {"portal", target}
    with pytest.raises(EmbedderMismatchError):  # the base model no longer searches the alias
        vs.retrieve(QUERY, k=5, collection="portal")
    vs.close()

    # configured with the fine-tuned model (a path in the data directory), search uses it
    again = VectorSeam(settings=Settings(data_dir=data, embedder={"name": "local", "model": str(model)}))
    assert again.embedder.fingerprint == tuned.fingerprint
    hits = again.retrieve(QUERY, k=5, mode="hybrid", collection="portal")
    assert len(hits) == 5 and all(h.id in {r.id for r in again.store.fetch(target, [h.id for h in hits])}
                                  for h in hits)
    note = again.profile_note("portal")  # the carried profile names the base model: said, not applied
    assert note is not None and "not applied" in note
    again.close()
