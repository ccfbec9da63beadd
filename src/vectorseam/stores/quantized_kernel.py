"""The int8 scan kernel: uint8 codes times int8 query weights, summed in int32, keeping only the rows
that reach a per-query threshold.

Why a compiled kernel, and why this one (benchmarks/results/quantized.md has the measurements):

* **NumPy has no int8 matrix product.** Its integer ``matmul``/``dot`` are plain loops, and converting
  codes to float32 chunk by chunk so BLAS can take them costs more than scanning the float32 rows it
  was meant to replace (measured 6x slower at 1M x 384). The float32 scan is bound by memory
  bandwidth, so only a kernel that reads the 1-byte codes and multiplies them where they lie gains.
* **LLVM, through llvmlite**, compiles a few dozen lines of IR for the machine it runs on, at first
  use (about 40 ms): on x86 with AVX-512 VNNI an explicit ``vpdpbusd`` loop (64 multiply-adds an
  instruction), elsewhere portable vector IR that LLVM lowers to what the CPU has (``pmaddwd`` on
  AVX2, ``sdot`` on ARM). No C toolchain at install time, no binary wheel of our own. torch (its
  ``_int_mm`` and int8 weight kernels) and ONNX Runtime's ``MatMulInteger`` were measured too:
  1.5-2.5x slower than this kernel for one query.
* **Selection inside the scan.** Writing an int32 score for every row and partitioning them costs
  about as much again as the scan for one query, and 64 times that for a batch of 64. The kernel
  instead keeps, per query, only the rows scoring at least a threshold that a small sample of the
  rows proved safe (see :mod:`vectorseam.stores.quantized`), so a handful of candidates leave it.
* **Batches four queries at a time** (``scan4``, VNNI): each query's dot product ends in a sum of 16
  partial sums, which for a 384-byte row costs more than its 6 ``vpdpbusd``; four are summed
  together in three shuffle-and-add rounds (measured 180 ms instead of 278 ms for 64 queries over
  1M rows on one core).
* **Exact integers.** Every path, the compiled ones and the NumPy fallback used where llvmlite is
  missing, computes the same int32 sums, so the candidates do not depend on the machine.

The kernel is single-threaded; the caller splits the rows over the cores (ctypes releases the GIL
during the call).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.stores import jit

U8 = npt.NDArray[np.uint8]
I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

LANES = 64  # bytes a code row is padded to a multiple of (one 512-bit vector)
INT_MIN = int(np.iinfo(np.int32).min)
PARALLEL_MIN_ROWS = 32_768  # fewer rows are scanned on the calling thread alone
FALLBACK_CHUNK_ROWS = 8192  # the NumPy path converts this many code rows to float64 at a time

# (codes, rows, lo, hi, queries, batch, thresholds, cap, out_index, out_score, counts)
_ScanFn = Callable[[int, int | None, int, int, int, int, int, int, int, int, int], None]


def padded(dimension: int) -> int:
    """Bytes per code row: the dimension rounded up to whole vectors (the padding scores zero)."""
    return max(LANES, -(-dimension // LANES) * LANES)


# -- the LLVM kernel ---------------------------------------------------------------------------------

def _dot_ir(chunks: int, vnni: bool) -> tuple[str, str]:
    """Declarations and the body computing ``%s`` = sum(codes row * query row) over ``chunks`` vectors."""
    lines = []
    acc = "zeroinitializer"
    for k in range(chunks):
        lines.append(f"  %cp{k} = getelementptr i8, ptr %rowp, i64 {k * LANES}")
        lines.append(f"  %qp{k} = getelementptr i8, ptr %qrow, i64 {k * LANES}")
        if vnni:
            lines.append(f"  %c{k} = load <16 x i32>, ptr %cp{k}, align 1")
            lines.append(f"  %w{k} = load <16 x i32>, ptr %qp{k}, align 1")
            lines.append(f"  %a{k} = call <16 x i32> @llvm.x86.avx512.vpdpbusd.512(<16 x i32> {acc}, "
                         f"<16 x i32> %c{k}, <16 x i32> %w{k})")
        else:
            lines.append(f"  %c{k} = load <64 x i8>, ptr %cp{k}, align 1")
            lines.append(f"  %w{k} = load <64 x i8>, ptr %qp{k}, align 1")
            lines.append(f"  %cz{k} = zext <64 x i8> %c{k} to <64 x i32>")
            lines.append(f"  %ws{k} = sext <64 x i8> %w{k} to <64 x i32>")
            lines.append(f"  %m{k} = mul nsw <64 x i32> %cz{k}, %ws{k}")
            lines.append(f"  %a{k} = add <64 x i32> {acc}, %m{k}")
        acc = f"%a{k}"
    width = 16 if vnni else 64
    lines.append(f"  %s = call i32 @llvm.vector.reduce.add.v{width}i32(<{width} x i32> {acc})")
    decl = f"declare i32 @llvm.vector.reduce.add.v{width}i32(<{width} x i32>)"
    if vnni:
        decl += "\ndeclare <16 x i32> @llvm.x86.avx512.vpdpbusd.512(<16 x i32>, <16 x i32>, <16 x i32>)"
    return decl, "\n".join(lines)


_SIGNATURE = ("ptr %codes, ptr %rows, i64 %lo, i64 %hi, ptr %queries, i64 %b, ptr %thr, i64 %cap, ptr %oidx, "
              "ptr %oscore, ptr %counts")


def _function_ir(name: str, row_bytes: int, declarations: str, body: str) -> str:
    """A kernel over rows of codes (:func:`vectorseam.stores.jit.row_loop_function`)."""
    return jit.row_loop_function(name, _SIGNATURE, "codes", "i8", row_bytes, declarations, body,
                                 trailer='!0 = !{!"branch_weights", i32 1, i32 1000}\n')


def _append_ir(label: str, query: str, score: str, then: str) -> str:
    """Blocks from ``label``: append row ``%i`` with ``score`` to ``query``'s slots (while there is
    room; the count goes on past ``cap``), then branch to ``then``."""
    return f"""{label}:
  %cntp = getelementptr i64, ptr %counts, i64 {query}
  %cnt = load i64, ptr %cntp
  %room = icmp ult i64 %cnt, %cap
  br i1 %room, label %{label}_store, label %{label}_bump
{label}_store:
  %base = mul i64 {query}, %cap
  %slot = add i64 %base, %cnt
  %ip = getelementptr i32, ptr %oidx, i64 %slot
  %iv = trunc i64 %i to i32
  store i32 %iv, ptr %ip
  %sp = getelementptr i32, ptr %oscore, i64 %slot
  store i32 {score}, ptr %sp
  br label %{label}_bump
{label}_bump:
  %cnt1 = add i64 %cnt, 1
  store i64 %cnt1, ptr %cntp
  br label %{then}"""


def kernel_ir(chunks: int, vnni: bool) -> str:
    """LLVM IR of ``scan``: for local rows lo..hi-1 and each query, the int32 dot product; a row scoring
    at least the query's threshold is appended to the query's slots (``cap`` of them) and counted
    (counts go on past ``cap``, so the caller knows how many slots a second pass needs)."""
    decl, dot = _dot_ir(chunks, vnni)
    row_bytes = chunks * LANES
    body = f"""body:
  br label %query
query:
  %qi = phi i64 [0, %body], [%qi1, %qnext]
  %qoff = mul i64 %qi, {row_bytes}
  %qrow = getelementptr i8, ptr %queries, i64 %qoff
{dot}
  %tp = getelementptr i32, ptr %thr, i64 %qi
  %t = load i32, ptr %tp
  %pass = icmp sge i32 %s, %t
  br i1 %pass, label %keep, label %qnext, !prof !0
{_append_ir("keep", "%qi", "%s", "qnext")}
qnext:
  %qi1 = add i64 %qi, 1
  %qmore = icmp ult i64 %qi1, %b
  br i1 %qmore, label %query, label %rownext"""
    return _function_ir("scan", row_bytes, decl, body)


# long: one LLVM IR template (issue 24's), kept whole so it reads like the loop it compiles to
def kernel4_ir(chunks: int) -> str:
    """LLVM IR of ``scan4`` (VNNI only): :func:`kernel_ir`'s contract for a batch whose size is a multiple
    of 4, four queries at a time. Summing each query's 16 partial sums on its own costs more than its
    6 ``vpdpbusd`` for a 384-byte row; four of them are summed together in 3 shuffle-and-add rounds."""
    row_bytes = chunks * LANES
    lines = [f"  %c{k} = load <16 x i32>, ptr %cp{k}, align 1" for k in range(chunks)]
    lines = [line for k in range(chunks) for line in
             (f"  %cp{k} = getelementptr i8, ptr %rowp, i64 {k * LANES}", lines[k])]
    dots = []
    for j in range(4):
        acc = "zeroinitializer"
        dots.append(f"  %qoff{j} = add i64 %qbase, {j * row_bytes}")
        dots.append(f"  %qrow{j} = getelementptr i8, ptr %queries, i64 %qoff{j}")
        for k in range(chunks):
            dots.append(f"  %wp{j}_{k} = getelementptr i8, ptr %qrow{j}, i64 {k * LANES}")
            dots.append(f"  %w{j}_{k} = load <16 x i32>, ptr %wp{j}_{k}, align 1")
            dots.append(f"  %a{j}_{k} = call <16 x i32> @llvm.x86.avx512.vpdpbusd.512(<16 x i32> {acc}, "
                        f"<16 x i32> %c{k}, <16 x i32> %w{j}_{k})")
            acc = f"%a{j}_{k}"
    last = chunks - 1

    def mask(values: list[int]) -> str:
        return "<" + ", ".join(f"i32 {v}" for v in values) + ">"

    loads, dot_body = "\n".join(lines), "\n".join(dots)
    quads_lo = mask([q + o for q in (0, 8, 16, 24) for o in range(4)])
    quads_hi = mask([q + o for q in (4, 12, 20, 28) for o in range(4)])
    body = f"""body:
{loads}
  br label %group
group:
  %g = phi i64 [0, %body], [%g1, %groupnext]
  %qbase = mul i64 %g, {row_bytes}
{dot_body}
  %ab0 = shufflevector <16 x i32> %a0_{last}, <16 x i32> %a1_{last}, <16 x i32> {mask([*range(8), *range(16, 24)])}
  %ab1 = shufflevector <16 x i32> %a0_{last}, <16 x i32> %a1_{last}, <16 x i32> {mask([*range(8, 16), *range(24, 32)])}
  %ab = add <16 x i32> %ab0, %ab1
  %cd0 = shufflevector <16 x i32> %a2_{last}, <16 x i32> %a3_{last}, <16 x i32> {mask([*range(8), *range(16, 24)])}
  %cd1 = shufflevector <16 x i32> %a2_{last}, <16 x i32> %a3_{last}, <16 x i32> {mask([*range(8, 16), *range(24, 32)])}
  %cd = add <16 x i32> %cd0, %cd1
  %x0 = shufflevector <16 x i32> %ab, <16 x i32> %cd, <16 x i32> {quads_lo}
  %x1 = shufflevector <16 x i32> %ab, <16 x i32> %cd, <16 x i32> {quads_hi}
  %x = add <16 x i32> %x0, %x1
  %y0 = shufflevector <16 x i32> %x, <16 x i32> poison, <8 x i32> {mask([0, 1, 4, 5, 8, 9, 12, 13])}
  %y1 = shufflevector <16 x i32> %x, <16 x i32> poison, <8 x i32> {mask([2, 3, 6, 7, 10, 11, 14, 15])}
  %y = add <8 x i32> %y0, %y1
  %z0 = shufflevector <8 x i32> %y, <8 x i32> poison, <4 x i32> {mask([0, 2, 4, 6])}
  %z1 = shufflevector <8 x i32> %y, <8 x i32> poison, <4 x i32> {mask([1, 3, 5, 7])}
  %z = add <4 x i32> %z0, %z1
  %tp = getelementptr i32, ptr %thr, i64 %g
  %t = load <4 x i32>, ptr %tp, align 4
  %pass = icmp sge <4 x i32> %z, %t
  %bits = bitcast <4 x i1> %pass to i4
  %any = icmp ne i4 %bits, 0
  br i1 %any, label %keep, label %groupnext, !prof !0
keep:
  %j = phi i64 [0, %group], [%j1, %keepnext]
  %qi = add i64 %g, %j
  %sj = extractelement <4 x i32> %z, i64 %j
  %tj = extractelement <4 x i32> %t, i64 %j
  %pj = icmp sge i32 %sj, %tj
  br i1 %pj, label %append, label %keepnext
{_append_ir("append", "%qi", "%sj", "keepnext")}
keepnext:
  %j1 = add i64 %j, 1
  %jmore = icmp ult i64 %j1, 4
  br i1 %jmore, label %keep, label %groupnext
groupnext:
  %g1 = add i64 %g, 4
  %gmore = icmp ult i64 %g1, %b
  br i1 %gmore, label %group, label %rownext"""
    declarations = "declare <16 x i32> @llvm.x86.avx512.vpdpbusd.512(<16 x i32>, <16 x i32>, <16 x i32>)"
    return _function_ir("scan4", row_bytes, declarations, body)


class _Compiled:
    """JIT-compiled kernels for one row width; keeps the engines (which own the machine code) alive.
    ``fn4`` (VNNI only) takes batches whose size is a multiple of 4."""

    def __init__(self, engines: list[Any], fn: _ScanFn, fn4: _ScanFn | None, name: str) -> None:
        self.engines, self.fn, self.fn4, self.name = engines, fn, fn4, name


def _compile(llvm: Any, chunks: int) -> _Compiled:
    """The kernels for rows of ``chunks`` vectors (a batch-of-4 one too where the CPU has VNNI)."""
    features = llvm.get_host_cpu_features()
    vnni = bool(features.get("avx512vnni")) and bool(features.get("avx512bw"))
    p, i = ctypes.c_void_p, ctypes.c_int64
    signature = ctypes.CFUNCTYPE(None, p, p, i, i, p, i, p, i, p, p, p)
    engines, fns = [], []
    for name, ir in [("scan", kernel_ir(chunks, vnni)), *([("scan4", kernel4_ir(chunks))] if vnni else [])]:
        engine, fn = jit.compile_function(llvm, ir, name, signature)
        engines.append(engine)
        fns.append(fn)
    return _Compiled(engines, fns[0], fns[1] if len(fns) > 1 else None, "llvm-vnni" if vnni else "llvm")


_COMPILED: jit.Kernels[int, _Compiled] = jit.Kernels(
    "the int8 scan kernel", "VECTORSEAM_INT8_KERNEL", _compile, "using its NumPy path",
    missing="llvmlite is not installed: the int8 scan runs on its NumPy path, which is slower than the float32 "
            "scan; install the extra: pip install 'vectorseam[quantized]'")


def compiled(row_bytes: int) -> _Compiled | None:
    return _COMPILED.get(row_bytes // LANES)


def kernel_name(row_bytes: int) -> str:
    """Which path scans rows of this width here: ``llvm-vnni``, ``llvm`` or ``numpy``."""
    found = compiled(row_bytes)
    return found.name if found is not None else "numpy"


# -- the NumPy path (same integers) -------------------------------------------------------------------

def _scan_numpy(codes: U8, rows: I64 | None, lo: int, hi: int, queries: I8, thresholds: I32, cap: int,
                out_index: I32, out_score: I32, counts: I64) -> None:
    """:func:`scan_part` without the compiler: float64 products of converted chunks are exact (the sums
    stay far below 2**53), so the kept rows and scores equal the kernel's."""
    weights = queries.astype(np.float64).T
    for start in range(lo, hi, FALLBACK_CHUNK_ROWS):
        stop = min(hi, start + FALLBACK_CHUNK_ROWS)
        block = codes[start:stop] if rows is None else codes[rows[start:stop]]
        scores = (block.astype(np.float64) @ weights).astype(np.int64)
        for qi in range(queries.shape[0]):
            keep = np.flatnonzero(scores[:, qi] >= thresholds[qi])
            have = int(counts[qi])
            room = max(0, min(keep.size, cap - have))
            out_index[qi, have : have + room] = keep[:room] + start
            out_score[qi, have : have + room] = scores[keep[:room], qi]
            counts[qi] = have + keep.size


# -- entry points --------------------------------------------------------------------------------------

def scan_part(codes: U8, rows: I64 | None, lo: int, hi: int, queries: I8, thresholds: I32,
              cap: int) -> tuple[I32, I32, I64]:
    """One thread's share: local rows ``lo..hi-1``. Returns slot indices, scores and counts per query."""
    batch = queries.shape[0]
    kernel = compiled(codes.shape[1])
    fn = None if kernel is None else kernel.fn
    if kernel is not None and kernel.fn4 is not None and batch >= 4:
        fn = kernel.fn4
        if batch % 4:  # padded with queries no row can pass
            extra = 4 - batch % 4
            queries = np.concatenate([queries, np.zeros((extra, queries.shape[1]), dtype=np.int8)])
            thresholds = np.concatenate([thresholds, np.full(extra, np.iinfo(np.int32).max, dtype=np.int32)])
    size = queries.shape[0]
    out_index = np.empty((size, cap), dtype=np.int32)
    out_score = np.empty((size, cap), dtype=np.int32)
    counts = np.zeros(size, dtype=np.int64)
    if fn is None:
        _scan_numpy(codes, rows, lo, hi, queries, thresholds, cap, out_index, out_score, counts)
    else:
        fn(codes.ctypes.data, None if rows is None else rows.ctypes.data, lo, hi, queries.ctypes.data, size,
           thresholds.ctypes.data, cap, out_index.ctypes.data, out_score.ctypes.data, counts.ctypes.data)
    return out_index[:batch], out_score[:batch], counts[:batch]


def scan(codes: U8, rows: I64 | None, size: int, queries: I8, thresholds: I32,
         cap: int) -> list[tuple[I32, I32, I64]]:
    """Every local row ``0..size-1``, split over the cores: one (index, score, count) triple per part.

    ``codes`` must be C-contiguous uint8 with a padded row width, ``rows`` (when given) int64 row
    numbers below ``codes.shape[0]``, ``queries`` int8 of the same width: the kernel does not check.
    """
    assert codes.flags.c_contiguous and codes.dtype == np.uint8 and queries.flags.c_contiguous
    assert queries.dtype == np.int8 and queries.shape[1] == codes.shape[1] and thresholds.dtype == np.int32
    assert rows is None or (rows.dtype == np.int64 and rows.flags.c_contiguous and rows.shape[0] >= size)
    parts = min(CPUS, size // PARALLEL_MIN_ROWS)
    if parts <= 1:
        return [scan_part(codes, rows, 0, size, queries, thresholds, cap)]
    bounds = np.linspace(0, size, parts + 1).astype(int).tolist()
    # the calling thread scans the first share itself (one fewer thread to wake)
    others = [pool().submit(scan_part, codes, rows, lo, hi, queries, thresholds, cap)
              for lo, hi in itertools.pairwise(bounds[1:])]
    first = scan_part(codes, rows, bounds[0], bounds[1], queries, thresholds, cap)
    return [first, *(f.result() for f in others)]


def _cpus() -> int:
    """The threads to split a scan over: ``OMP_NUM_THREADS`` when set (``serve --workers N`` gives each
    worker its share of the cores), else the cores this process may run on (a ``taskset`` mask counts)."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


CPUS = _cpus()
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def pool() -> ThreadPoolExecutor:
    """Threads for splitting one query's scan over the cores (created on first use; the memory store's
    gathered float32 scan shares them)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=CPUS, thread_name_prefix="vectorseam-scan")
        return _POOL
