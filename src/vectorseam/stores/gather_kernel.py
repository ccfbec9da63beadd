"""Dot products of a query with scattered rows of the float32 matrix, read where they lie.

Why: a filtered query that admits a few per cent of a collection scores only those rows. NumPy can
do that only by copying them first (``take`` into a buffer, then a matrix-vector product): about
270 ns a 1.5 KB row on the hosts measured, where a loop that multiplies each row in place, as FAISS's
selector scan does, needs the memory read alone. This kernel is that loop, compiled by LLVM through
llvmlite for the CPU it runs on (the ``quantized`` extra, as for the int8 scan in
:mod:`vectorseam.stores.quantized_kernel`, which compiles the same way); without llvmlite the caller
keeps its NumPy path. The sums may differ from BLAS's in the last place: every dense query is finished
by an exact float64 rescoring of its candidates (``Collection.best``), whose error bound covers both.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.stores import jit

WIDTH = 16  # floats per vector register the IR is written for (LLVM splits it where registers are narrower)

# (matrix, rows or 0, lo, hi, queries, number of queries, out, out's row stride)
GatherFn = Callable[[int, int, int, int, int, int, int, int], None]
CHAINS = 4  # independent FMA chains per dot product: one chain would wait on each FMA's latency
# Rows ahead whose bytes are requested (into L2) before they are scored. Scoring a row for several
# queries takes long enough that the hardware prefetcher falls behind and each row's read waits; asked
# for 32 rows (48 KB at 384-d) ahead, a batch of 4 or 8 scans 100k rows 20-25% faster on 2 cores
# (8.1 -> 6.5 ms and 10.2 -> 7.9 ms), and one query is unchanged (it only reads).
PREFETCH_AHEAD = 32


def gather_ir(dimension: int) -> str:
    """LLVM IR of ``gdot``: for i in lo..hi-1 and each query j, out[j * stride + i] = row(i) . query j,
    where row(i) is ``matrix[rows[i]]``, or ``matrix[i]`` when ``rows`` is null (rows of ``dimension``).

    Each row is read from memory once for every query (the queries stay in the L1 cache), which BLAS
    does not manage for a handful of queries: 8 queries cost it 3-4x one query's time over 1M rows."""
    chunks, tail = divmod(dimension, WIDTH)
    vec = f"<{WIDTH} x float>"
    rows = [f"  %x{k}p = getelementptr float, ptr %rowp, i64 {k * WIDTH}\n  %x{k} = load {vec}, ptr %x{k}p, align 4"
            for k in range(chunks)]
    body = []
    acc = ["zeroinitializer"] * CHAINS
    for k in range(chunks):
        c = k % CHAINS
        body.append(f"  %q{k}p = getelementptr float, ptr %qp, i64 {k * WIDTH}\n"
                    f"  %q{k} = load {vec}, ptr %q{k}p, align 4\n"
                    f"  %a{k} = call {vec} @llvm.fma.v{WIDTH}f32({vec} %x{k}, {vec} %q{k}, {vec} {acc[c]})")
        acc[c] = f"%a{k}"
    total = acc[0]
    for c in range(1, min(CHAINS, chunks)):
        body.append(f"  %sum{c} = fadd {vec} {total}, {acc[c]}")
        total = f"%sum{c}"
    body.append(f"  %s0 = call reassoc float @llvm.vector.reduce.fadd.v{WIDTH}f32(float 0.0, {vec} {total})"
                if chunks else "  %s0 = fadd float 0.0, 0.0")
    for j in range(tail):
        at = chunks * WIDTH + j
        body.append(f"  %tx{j}p = getelementptr float, ptr %rowp, i64 {at}\n  %tx{j} = load float, ptr %tx{j}p\n"
                    f"  %tq{j}p = getelementptr float, ptr %qp, i64 {at}\n  %tq{j} = load float, ptr %tq{j}p\n"
                    f"  %s{j + 1} = call float @llvm.fma.f32(float %tx{j}, float %tq{j}, float %s{j})")
    newline = "\n"
    declarations = (f"declare {vec} @llvm.fma.v{WIDTH}f32({vec}, {vec}, {vec})\n"
                    f"declare float @llvm.vector.reduce.fadd.v{WIDTH}f32(float, {vec})\n"
                    "declare float @llvm.fma.f32(float, float, float)\n"
                    "declare void @llvm.prefetch.p0(ptr, i32, i32, i32)")
    loop = f"""body:
{prefetch_ir(dimension)}
{newline.join(rows)}
  br label %query
query:
  %j = phi i64 [0, %rowdata], [%j1, %query]
  %qoff = mul i64 %j, {dimension}
  %qp = getelementptr float, ptr %q, i64 %qoff
{newline.join(body)}
  %ooff = mul i64 %j, %stride
  %oi = add i64 %ooff, %i
  %op = getelementptr float, ptr %out, i64 %oi
  store float %s{tail}, ptr %op
  %j1 = add i64 %j, 1
  %jmore = icmp ult i64 %j1, %nq
  br i1 %jmore, label %query, label %rownext"""
    signature = "ptr %m, ptr %rows, i64 %lo, i64 %hi, ptr %q, i64 %nq, ptr %out, i64 %stride"
    return jit.row_loop_function("gdot", signature, "m", "float", dimension, declarations, loop)


def prefetch_ir(dimension: int) -> str:
    """IR that asks for the row ``PREFETCH_AHEAD`` places after row ``i`` (the last row near the end), a
    prefetch for each of its cache lines, and goes on to label ``rowdata``; a prefetch never faults or waits."""
    lines = -(-dimension * 4 // 64) + 1  # one more: a row need not start on a line
    fetches = "\n".join(f"  %pf{k} = getelementptr i8, ptr %pfrowp, i64 {k * 64}\n"
                         f"  call void @llvm.prefetch.p0(ptr %pf{k}, i32 0, i32 2, i32 1)" for k in range(lines))
    return f"""  %pfi = add i64 %i, {PREFETCH_AHEAD}
  %pfin = icmp ult i64 %pfi, %hi
  %pfat = select i1 %pfin, i64 %pfi, i64 %i
{jit.row_address("pf", "%pfat", "m", "float", dimension)}
{fetches}
  br label %rowdata
rowdata:"""


class _Kernel:
    def __init__(self, engine: Any, fn: GatherFn) -> None:
        self.engine, self.fn = engine, fn  # the engine owns the machine code: keep it alive


def _compile(llvm: Any, dimension: int) -> _Kernel:
    p, i = ctypes.c_void_p, ctypes.c_int64
    signature = ctypes.CFUNCTYPE(None, p, p, i, i, p, i, p, i)
    engine, fn = jit.compile_function(llvm, gather_ir(dimension), "gdot", signature)
    return _Kernel(engine, fn)


_KERNELS: jit.Kernels[int, _Kernel] = jit.Kernels("the gather kernel", "VECTORSEAM_GATHER_KERNEL", _compile,
                                                 "filtered scans copy rows with NumPy")


def kernel(dimension: int) -> GatherFn | None:
    """The compiled ``gdot`` for rows of ``dimension`` floats, or None (no llvmlite)."""
    found = _KERNELS.get(dimension)
    return None if found is None else found.fn


@functools.cache
def last_level_cache_bytes() -> int:
    """The size of the CPU's largest cache (Linux sysfs; 32 MiB where it cannot be read): whether a
    matrix is read from cache or from main memory decides which plan scans it faster."""
    sizes = []
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = entry.read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes, default=32 * 1024**2)


def gather_dots(fn: GatherFn, matrix: npt.NDArray[np.float32], rows: npt.NDArray[np.int64] | None, lo: int,
                hi: int, queries: npt.NDArray[np.float32], out: npt.NDArray[np.float32]) -> None:
    """``out[:, lo:hi] = queries @ matrix[rows[lo:hi]].T`` (``matrix[lo:hi]`` when ``rows`` is None) with
    no copy of the rows; ctypes lets go of the GIL, so callers split the rows over threads. ``matrix``
    and ``queries`` (b x d) must be C-contiguous float32, ``rows`` int64, ``out`` C-contiguous (b x rows)."""
    fn(matrix.ctypes.data, 0 if rows is None else rows.ctypes.data, lo, hi, queries.ctypes.data, queries.shape[0],
       out.ctypes.data, out.shape[1])
