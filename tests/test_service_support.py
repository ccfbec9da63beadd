"""Shared set-up for the service tests (no tests here): one real uvicorn server per test process.

The server holds a few dozen short reviews embedded with the real model, four API keys (admin and
read for every collection, and a read and an admin key scoped to one tenant's collections) and
deliberately small limits, so that limit tests need small requests only. It is built once
(the model loads once) and reused by every service, auth, schemathesis and browser test module.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from vectorseam.client import VectorSeam
from vectorseam.config import APIKeySettings, ServiceSettings, Settings, StoreSettings
from vectorseam.service import create_app
from vectorseam.service.auth import hash_key
from vectorseam.service.background import BackgroundServer
from vectorseam.types import Record

ADMIN_KEY = "vs_test-admin-key-0123456789abcdef"
READ_KEY = "vs_test-read-key-0123456789abcdef"
TENANT_READ_KEY = "vs_test-tenant-read-0123456789abcdef"  # collections "tenant-a-*" and "shared"
TENANT_ADMIN_KEY = "vs_test-tenant-admin-0123456789abcdef"  # collections "tenant-a-*"
TENANT_READ_SCOPE = ["tenant-a-*", "shared"]
TENANT_ADMIN_SCOPE = ["tenant-a-*"]
COLLECTION = "reviews"
MAX_K = 50
MAX_BATCH = 64
MAX_BODY = 256 * 1024
MAX_TEXT = 2000

REVIEWS: list[tuple[str, str, int]] = [
    ("coffee", "Rich dark roast coffee with a smooth chocolate finish, my morning favourite.", 5),
    ("coffee", "The espresso beans were stale and the coffee tasted burnt and bitter.", 2),
    ("coffee", "Great value decaf coffee pods, they work in my machine and taste fresh.", 4),
    ("coffee", "Instant coffee that dissolves well but the flavour is flat.", 3),
    ("coffee", "Best cold brew coffee grounds I have bought, strong and never sour.", 5),
    ("beans", "Delicious black beans, perfectly seasoned and great in burritos.", 5),
    ("beans", "These canned kidney beans were mushy and too salty.", 2),
    ("beans", "Jelly beans in every flavour, the kids loved the sour cherry ones.", 4),
    ("beans", "Organic pinto beans cook quickly and taste wonderful in chili.", 5),
    ("pasta", "Whole wheat pasta that holds its shape and tastes nutty.", 4),
    ("pasta", "The spaghetti turned gummy after eight minutes of boiling.", 2),
    ("pasta", "Gluten free penne pasta with a texture just like the real thing.", 5),
    ("pasta", "Fresh egg noodles, silky and quick to cook for a weeknight dinner.", 4),
    ("delivery", "The package arrived two weeks late and the box was crushed.", 1),
    ("delivery", "Delivery was fast and everything arrived well packed.", 5),
    ("delivery", "Half the order was missing when the parcel finally showed up.", 1),
    ("delivery", "Shipping took forever and nobody answered my emails about it.", 1),
    ("spoiled", "The milk powder smelled rancid and had gone off before the date.", 1),
    ("spoiled", "Mouldy bread on arrival, completely spoiled and inedible.", 1),
    ("spoiled", "The nuts were rancid, clearly old stock that had spoilt.", 1),
    ("pets", "My dog goes crazy for these chicken jerky treats.", 5),
    ("pets", "Grain free cat food that finally stopped my cat's upset stomach.", 5),
    ("pets", "The puppy chews fell apart within minutes, not durable.", 2),
    ("pets", "Healthy salmon kibble, my senior dog has a shinier coat now.", 4),
    ("tea", "Fragrant jasmine green tea with a delicate floral aroma.", 5),
    ("tea", "Earl grey tea bags with a strong bergamot taste, very comforting.", 4),
    ("tea", "The herbal tea tasted like dust and had no aroma at all.", 2),
    ("snacks", "Crunchy sea salt potato chips, impossible to stop eating.", 5),
    ("snacks", "Granola bars that are far too sweet and stick to your teeth.", 2),
    ("snacks", "Dark chocolate almonds, a rich and satisfying afternoon snack.", 5),
    ("sauce", "Spicy hot sauce with real habanero heat and a smoky flavour.", 5),
    ("sauce", "The pasta sauce was watery and bland, needs much more basil.", 2),
]


@dataclass
class Service:
    server: BackgroundServer
    client: VectorSeam
    data_dir: Path
    ingest_dir: Path

    @property
    def url(self) -> str:
        return self.server.url

    def http(self, key: str | None = ADMIN_KEY, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kw)


def records(embedder: Any) -> list[Record]:
    vectors = embedder.embed_documents([text for _, text, _ in REVIEWS])
    return [Record(f"r{i:02d}", vectors[i], text, {"category": cat, "Score": score})
            for i, (cat, text, score) in enumerate(REVIEWS)]


@functools.cache
def running_service(embedder: Any) -> Service:
    """Built on the first call and kept for the whole test process (its thread is a daemon)."""
    return build_service(embedder)


def build_service(embedder: Any) -> Service:
    """A new server with its own data directory (stop it with ``service.server.stop()``)."""
    root = Path(tempfile.mkdtemp(prefix="vectorseam-service-test-"))
    ingest_dir = root / "ingest"
    ingest_dir.mkdir()
    settings = Settings(
        data_dir=root / "data",
        store=StoreSettings(name="memory"),
        service=ServiceSettings(
            api_keys=[APIKeySettings(name="ops", hash=hash_key(ADMIN_KEY), scope="admin"),
                      APIKeySettings(name="web", hash=hash_key(READ_KEY), scope="read"),
                      APIKeySettings(name="tenant-a-web", hash=hash_key(TENANT_READ_KEY), scope="read",
                                     collections=TENANT_READ_SCOPE),
                      APIKeySettings(name="tenant-a-ops", hash=hash_key(TENANT_ADMIN_KEY), scope="admin",
                                     collections=TENANT_ADMIN_SCOPE)],
            max_k=MAX_K, max_batch=MAX_BATCH, max_body_bytes=MAX_BODY, max_text_chars=MAX_TEXT,
            ingest_dirs=[ingest_dir], cors_origins=["http://allowed.example"],
        ),
    )
    client = VectorSeam(settings=settings)
    client.embedder = embedder  # the session's already-loaded model instead of a second copy
    from vectorseam.embedding import ensure_collection_for

    ensure_collection_for(client.store, COLLECTION, embedder)
    client.store.upsert(COLLECTION, records(embedder))
    server = BackgroundServer(create_app(client)).start()
    return Service(server, client, root / "data", ingest_dir)
