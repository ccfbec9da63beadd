"""pytest is a dev dependency only: the library, its layers and the adapters import without it.

Each check runs in a fresh interpreter where a finder first on ``sys.meta_path`` refuses pytest, as if
it were not installed (this process has long imported pytest itself). ``sys.modules["pytest"] = None``
would block it too, but libraries that probe ``sys.modules`` for pytest (Haystack's telemetry) then
trip over the ``None``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

BLOCK_PYTEST = textwrap.dedent(
    """
    import sys

    class NoPytest:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("pytest", "_pytest"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, NoPytest())
    """
)

# Every module of vectorseam and of the installed adapters, except the pytest code itself: the
# conformance suite and the pgvector adapter's test-server fixtures.
IMPORT_ALL = BLOCK_PYTEST + textwrap.dedent(
    """
    import importlib
    import importlib.util
    import pkgutil

    PYTEST_CODE = ("vectorseam.testing.conformance", "vectorseam_pgvector.testing")
    roots = ["vectorseam"] + [a for a in {adapters} if importlib.util.find_spec(a) is not None]
    imported = []
    for root in roots:
        package = importlib.import_module(root)
        for info in pkgutil.walk_packages(package.__path__, root + "."):
            name = info.name
            if name.endswith(".__main__") or name.startswith(PYTEST_CODE):
                continue
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                # an optional integration whose library is not installed is not this test's concern
                if (exc.name or "").split(".")[0] in ("pytest", "_pytest", "vectorseam"):
                    raise
                print("optional dependency missing:", name, exc.name, file=sys.stderr)
                continue
            imported.append(name)
    assert "pytest" not in sys.modules
    print(len(imported), "modules")
    """
).format(adapters=("vectorseam_pgvector", "vectorseam_qdrant", "vectorseam_pinecone", "vectorseam_weaviate"))

TESTING_WITHOUT_PYTEST = BLOCK_PYTEST + textwrap.dedent(
    """
    import vectorseam.testing as testing

    records = testing.make_records(testing.random_vectors(3, 4, seed=1))
    assert [r.id for r in records] == ["r0000", "r0001", "r0002"]
    try:
        testing.StoreConformance
    except ImportError as exc:
        assert "install pytest" in str(exc), exc
        assert exc.name == "pytest"
    else:
        raise AssertionError("the conformance suite imported although pytest is blocked")
    """
)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_every_runtime_module_imports_without_pytest() -> None:
    done = run(IMPORT_ALL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[0]) > 50, done.stdout  # the walk really went through the package


def test_testing_package_helpers_work_and_suite_says_it_needs_pytest() -> None:
    done = run(TESTING_WITHOUT_PYTEST)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_suite_is_there_with_pytest() -> None:
    """The other side: with pytest present, the lazy names resolve to the mixins."""
    from vectorseam import testing
    from vectorseam.testing.conformance import StoreConformance, WriteTests

    assert testing.StoreConformance is StoreConformance
    assert issubclass(StoreConformance, WriteTests)
    assert importlib.util.find_spec("vectorseam.testing.conformance.recommend") is not None
