#!/usr/bin/env python3
"""Baseline for `npx curate bench balance`: MetaCLIP balancing (spec sections 3-4) in numpy.

Reads the pool written by scripts/bench/balance.ts (raw little-endian columns: entry_ids.i32, offsets.u32
(n + 1), key_hi.u32, key_lo.u32) and runs, timed, the same algorithm as curation/sampling.ts:

  count[e] = matches of entry e                      np.bincount (over slices of 1M matches)
  p[e]     = 1 if count[e] < t else t / count[e]
  P_i      = 1 - prod_e (1 - p[e]) in stored order    np.take + np.multiply.reduceat (every candidate has >= 1 entry)
  u_i      = drawFromKeys(seed, pair key_i)           3-round Feistel of murmur3's fmix32, uint32 arithmetic
  select i iff u_i < P_i

If some p[e] = 1 the factor 1 - p[e] is exactly 0, so the product is 0 and P = 1, as the early exit of the
TypeScript loop gives. The candidate work is done in cache-sized chunks with preallocated buffers (out=),
which is the fast way to run a long chain of element-wise ufuncs in numpy. Loading is not timed.

Prints a JSON summary as the last line on stdout: timings, the selected count, sum of P, and sha256 of the
counts (float64 LE), of the selected indexes (uint32 LE) and of their P (float64 LE) for the identity check.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # single thread (nothing here uses BLAS, but be explicit)

import argparse
import hashlib
import json
import resource
import sys
import time

import numpy as np

C1 = np.uint32(0x85EBCA6B)
C2 = np.uint32(0xC2B2AE35)
TWO32 = 4294967296.0
TWO_M53 = 1.0 / 9007199254740992.0  # 2^-53 (exact)
COUNT_CHUNK = 1 << 20  # matches per np.bincount call


def fmix32(h, tmp):
    """murmur3's 32-bit finaliser, in place on the uint32 array h (tmp: a scratch array of the same shape)."""
    np.right_shift(h, 16, out=tmp)
    np.bitwise_xor(h, tmp, out=h)
    np.multiply(h, C1, out=h)  # wraps mod 2^32
    np.right_shift(h, 13, out=tmp)
    np.bitwise_xor(h, tmp, out=h)
    np.multiply(h, C2, out=h)
    np.right_shift(h, 16, out=tmp)
    np.bitwise_xor(h, tmp, out=h)
    return h


def draws_into(key_hi, key_lo, seed_hi, seed_lo, u, r, l, tmp):
    """u[:] = drawFromKeys(seed_hi, seed_lo, key_hi, key_lo) (curation/balance.ts); r, l, tmp: uint32 scratch."""
    np.bitwise_xor(key_lo, seed_lo, out=r)
    fmix32(r, tmp)  # r = fmix32(keyLo ^ seedLo)
    np.bitwise_xor(key_hi, seed_hi, out=l)
    np.bitwise_xor(l, r, out=l)
    fmix32(l, tmp)  # l = fmix32(keyHi ^ seedHi ^ r)
    np.bitwise_xor(r, l, out=r)
    fmix32(r, tmp)  # r2 = fmix32(r ^ l)
    np.right_shift(l, 11, out=l)
    np.multiply(l, TWO32, out=u)  # (l >>> 11) * 2^32 + r2 < 2^53: exact in float64
    np.add(u, r, out=u)
    np.multiply(u, TWO_M53, out=u)  # / 2^53, exact
    return u


def draws(key_hi, key_lo, seed_hi, seed_lo):
    """Vectorised drawFromKeys over whole arrays (the reference form; the bench loop uses draws_into on chunks)."""
    n = len(key_hi)
    u = np.empty(n, np.float64)
    r, l, tmp = (np.empty(n, np.uint32) for _ in range(3))
    return draws_into(key_hi, key_lo, np.uint32(seed_hi), np.uint32(seed_lo), u, r, l, tmp)


def balance(entry_ids, offsets, key_hi, key_lo, n_entries, t, seed_hi, seed_lo, chunk):
    """One timed run. Returns (counts, selected, probability, expected, count_s, sample_s)."""
    t0 = time.perf_counter()
    # np.bincount casts its input to intp: over slices that copy stays in cache (about 3x faster than one call).
    counts = np.zeros(n_entries, np.intp)
    for s in range(0, len(entry_ids), COUNT_CHUNK):
        np.add(counts, np.bincount(entry_ids[s : s + COUNT_CHUNK], minlength=n_entries), out=counts)
    t1 = time.perf_counter()

    head = counts >= t
    p = np.ones(n_entries, np.float64)
    p[head] = t / counts[head]  # t / count in float64, as count[e] < t ? 1 : t / count[e]
    q = 1.0 - p  # 1 - p[e] per entry, gathered per match below (same value as computing it per match)

    n = len(offsets) - 1
    seed_hi = np.uint32(seed_hi)
    seed_lo = np.uint32(seed_lo)
    m_max = min(chunk, n)
    # Largest number of matches in any chunk, for the gather buffer.
    starts = offsets[0:n:chunk].astype(np.int64)
    ends = offsets[np.minimum(np.arange(chunk, n + chunk, chunk), n)].astype(np.int64)
    g = np.empty(int((ends - starts).max()) if n else 0, np.float64)
    idx = np.empty(m_max, np.int64)
    keep = np.empty(m_max, np.float64)
    P = np.empty(m_max, np.float64)
    u = np.empty(m_max, np.float64)
    r = np.empty(m_max, np.uint32)
    l = np.empty(m_max, np.uint32)
    tmp = np.empty(m_max, np.uint32)
    mask = np.empty(m_max, np.bool_)
    sel_parts = []
    prob_parts = []
    expected = 0.0
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        m = c1 - c0
        e0 = int(offsets[c0])
        e1 = int(offsets[c1])
        gm = g[: e1 - e0]
        np.take(q, entry_ids[e0:e1], out=gm, mode="clip")  # ids are validated in range at load time
        im = idx[:m]
        np.subtract(offsets[c0:c1], e0, out=im, casting="unsafe")
        km = keep[:m]
        np.multiply.reduceat(gm, im, out=km)  # sequential product per candidate, in stored order
        Pm = P[:m]
        np.subtract(1.0, km, out=Pm)
        expected += float(Pm.sum())
        um = draws_into(key_hi[c0:c1], key_lo[c0:c1], seed_hi, seed_lo, u[:m], r[:m], l[:m], tmp[:m])
        mm = mask[:m]
        np.less(um, Pm, out=mm)
        hit = np.flatnonzero(mm)
        prob_parts.append(Pm[hit])
        hit += c0
        sel_parts.append(hit)
    selected = np.concatenate(sel_parts) if sel_parts else np.empty(0, np.int64)
    probability = np.concatenate(prob_parts) if prob_parts else np.empty(0, np.float64)
    t2 = time.perf_counter()
    return counts, selected, probability, expected, t1 - t0, t2 - t1


def sha256(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--entries", type=int, required=True)
    ap.add_argument("--t", type=float, required=True)
    ap.add_argument("--seed-hi", type=int, required=True)
    ap.add_argument("--seed-lo", type=int, required=True)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=1 << 16, help="candidates per chunk")
    args = ap.parse_args()

    t = time.perf_counter()
    entry_ids = np.fromfile(os.path.join(args.dir, "entry_ids.i32"), dtype="<i4")
    offsets = np.fromfile(os.path.join(args.dir, "offsets.u32"), dtype="<u4")
    key_hi = np.fromfile(os.path.join(args.dir, "key_hi.u32"), dtype="<u4")
    key_lo = np.fromfile(os.path.join(args.dir, "key_lo.u32"), dtype="<u4")
    load_s = time.perf_counter() - t
    n = len(offsets) - 1
    # Preconditions (not timed): the bench's pool format.
    if n < 0 or len(key_hi) != n or len(key_lo) != n or int(offsets[-1]) != len(entry_ids) or int(offsets[0]) != 0:
        sys.exit("inconsistent balance pool")
    if n and int(np.diff(offsets).min()) < 1:
        sys.exit("every candidate needs >= 1 entry (np.multiply.reduceat semantics)")
    if len(entry_ids) and (int(entry_ids.min()) < 0 or int(entry_ids.max()) >= args.entries):
        sys.exit("entry id out of range")
    t_value = int(args.t) if args.t == int(args.t) else args.t

    run_s, count_s, sample_s = [], [], []
    result = None
    for run in range(args.runs):
        result = None
        print(f"[baseline] run {run + 1}/{args.runs}…", file=sys.stderr, flush=True)
        t = time.perf_counter()
        result = balance(entry_ids, offsets, key_hi, key_lo, args.entries, t_value, args.seed_hi, args.seed_lo, args.chunk)
        run_s.append(time.perf_counter() - t)
        count_s.append(result[4])
        sample_s.append(result[5])
    counts, selected, probability, expected, _, _ = result

    summary = {
        "impl": f"python {sys.version.split()[0]} + numpy {np.__version__}",
        "load_s": load_s,
        "run_s": run_s,
        "count_s": count_s,
        "sample_s": sample_s,
        "seconds": min(run_s),
        "matches": int(len(entry_ids)),
        "candidates": int(n),
        "entries": args.entries,
        "considered": int(n),
        "selected": int(len(selected)),
        "expected": expected,
        "counts_sha256": sha256(counts.astype("<f8")),
        "selected_sha256": sha256(selected.astype("<u4")),
        "probability_sha256": sha256(probability.astype("<f8")),
        "chunk": args.chunk,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
