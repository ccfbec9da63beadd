"""Compiling a hand-written LLVM IR function for this CPU through llvmlite (the ``quantized`` extra).

Why: two inner loops of the memory store (the int8 scan, :mod:`vectorseam.stores.quantized_kernel`,
and the scattered-row dot products, :mod:`vectorseam.stores.gather_kernel`) need what NumPy cannot
express without copying, and a C extension would need a compiler on every install. llvmlite ships
LLVM in its wheel; the callers keep a NumPy path for installs without it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_log = logging.getLogger(__name__)


def binding() -> Any | None:
    """``llvmlite.binding`` with the native target initialised, or None where llvmlite is missing."""
    try:
        import llvmlite.binding as llvm
    except ImportError:
        return None
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return llvm


class Kernels(Generic[K, V]):
    """Kernels compiled once per process, by key (a row width), on first use.

    ``build(llvm, key)`` compiles one; the key maps to None, and the caller keeps its NumPy path, where
    llvmlite is missing (``missing`` is logged, when given), where compiling fails (logged with
    ``fallback``, what the caller does instead), or where the environment variable ``off`` is ``numpy``
    (tests compare the two paths). ``built`` holds what was compiled (tests clear it)."""

    def __init__(self, what: str, off: str, build: Callable[[Any, K], V], fallback: str,
                 missing: str | None = None) -> None:
        self.what, self.off, self.build, self.fallback, self.missing = what, off, build, fallback, missing
        self.built: dict[K, V | None] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            if key not in self.built:
                self.built[key] = self._compile(key)
            return self.built[key]

    def _compile(self, key: K) -> V | None:
        if os.environ.get(self.off) == "numpy":
            return None
        llvm = binding()
        if llvm is None:
            if self.missing:
                _log.warning(self.missing)
            return None
        try:
            return self.build(llvm, key)
        except Exception as exc:  # an llvmlite without the new pass manager, an odd target: NumPy stays correct
            _log.warning("compiling %s failed (%s: %s); %s", self.what, type(exc).__name__, exc, self.fallback)
            return None


def compile_function(llvm: Any, ir: str, name: str, signature: Any) -> tuple[Any, Any]:
    """The engine (which owns the machine code: keep it alive) and ``name`` from ``ir`` as a ctypes
    function of ``signature``, optimised at -O3 for the host CPU and its features."""
    target = llvm.Target.from_default_triple()
    machine = target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                           features=llvm.get_host_cpu_features().flatten(), opt=3)
    module = llvm.parse_assembly(ir)
    module.verify()
    builder = llvm.create_pass_builder(machine, llvm.create_pipeline_tuning_options(speed_level=3))
    builder.getModulePassManager().run(module, builder)
    engine = llvm.create_mcjit_compiler(module, machine)
    engine.finalize_object()
    return engine, signature(engine.get_function_address(name))


def row_address(tag: str, index: str, matrix: str, element: str, row_stride: int) -> str:
    """IR that sets ``%{tag}rowp`` to the address of row ``rows[index]`` in ``%matrix``, or of row ``index``
    when ``%rows`` is null. It ends the current block with a branch and leaves the code in block
    ``{tag}haverow``; ``tag`` keeps the names of two uses in one function apart."""
    return f"""  br i1 %hasrows, label %{tag}gather, label %{tag}direct
{tag}gather:
  %{tag}rp = getelementptr i64, ptr %rows, i64 {index}
  %{tag}rg = load i64, ptr %{tag}rp
  br label %{tag}haverow
{tag}direct:
  br label %{tag}haverow
{tag}haverow:
  %{tag}r = phi i64 [%{tag}rg, %{tag}gather], [{index}, %{tag}direct]
  %{tag}off = mul i64 %{tag}r, {row_stride}
  %{tag}rowp = getelementptr {element}, ptr %{matrix}, i64 %{tag}off"""


def row_loop_function(name: str, signature: str, matrix: str, element: str, row_stride: int, declarations: str,
                      body: str, trailer: str = "") -> str:
    """LLVM IR of a kernel that loops over local rows ``lo..hi-1``: row ``rows[i]``, or ``i`` when ``%rows``
    is null (a contiguous range), with ``%rowp`` pointing at the row's first ``element`` in ``%matrix``.
    ``body`` starts at label ``body`` and ends by branching to ``rownext``; ``signature`` names ``%rows``,
    ``%lo``, ``%hi`` and ``%matrix``. Both kernels walk rows this way; only what they do with a row differs."""
    return f"""
{declarations}

define void @{name}({signature}) {{
entry:
  %hasrows = icmp ne ptr %rows, null
  %empty = icmp uge i64 %lo, %hi
  br i1 %empty, label %done, label %row
row:
  %i = phi i64 [%lo, %entry], [%i1, %rownext]
{row_address("", "%i", matrix, element, row_stride)}
  br label %body
{body}
rownext:
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, %hi
  br i1 %more, label %row, label %done
done:
  ret void
}}
{trailer}"""
