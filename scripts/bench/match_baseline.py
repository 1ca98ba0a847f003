#!/usr/bin/env python3
"""Baseline for `npx curate bench match`: MetaCLIP's fast substring matching.

An Aho-Corasick automaton (pyahocorasick) over the spaced entries " " + e + " "; each text is spaced as in
the spec (section 2) and its matched ids are the sorted unique values found by `automaton.iter(spaced_text)`.

Reads the metadata (JSON array of strings) and the texts (JSONL, one JSON string per line); writes the ids
of every text (one line per text, ids separated by spaces) for the identity check; prints a JSON summary as
the last line on stdout. Loading and the automaton build are timed separately from matching.
"""
import argparse
import json
import resource
import sys
import time
from importlib.metadata import version

import ahocorasick

PUNCTS_TO_WRAP = [",", ".", ";", ":", "?", "!", "`"]
CHARS_TO_SPACE = ["\t", "\n", "\r"]


def spacing(text):
    spaced = f" {text} "
    for p in PUNCTS_TO_WRAP:
        spaced = spaced.replace(p, f" {p} ")
    for c in CHARS_TO_SPACE:
        spaced = spaced.replace(c, " ")
    return spaced


def build_automaton(entries):
    automaton = ahocorasick.Automaton()
    for entry_id, entry in enumerate(entries):
        automaton.add_word(f" {entry} ", entry_id)
    automaton.make_automaton()
    return automaton


def match(automaton, text):
    return sorted({entry_id for _end, entry_id in automaton.iter(spacing(text))})


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metadata", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()

    t = time.perf_counter()
    with open(args.metadata, encoding="utf-8") as f:
        entries = json.load(f)
    with open(args.texts, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f]
    load_s = time.perf_counter() - t
    rss_loaded = rss_bytes()

    print(f"[baseline] building the Aho-Corasick automaton over {len(entries):,} entries…", file=sys.stderr, flush=True)
    t = time.perf_counter()
    automaton = build_automaton(entries)
    build_s = time.perf_counter() - t
    rss_built = rss_bytes()

    run_seconds = []
    results = None
    n = len(texts)
    for run in range(args.runs):
        out = [None] * n
        next_report = time.perf_counter() + 2.0
        t = time.perf_counter()
        for i, text in enumerate(texts):
            out[i] = match(automaton, text)
            if (i & 8191) == 0 and time.perf_counter() >= next_report:
                next_report += 2.0
                print(f"[baseline] run {run + 1}/{args.runs}: {i:,}/{n:,} texts", file=sys.stderr, flush=True)
        run_seconds.append(time.perf_counter() - t)
        results = out

    with open(args.out, "w", encoding="utf-8") as f:
        for ids in results:
            f.write(" ".join(map(str, ids)))
            f.write("\n")

    best = min(run_seconds)
    summary = {
        "impl": f"python {sys.version.split()[0]} + pyahocorasick {version('pyahocorasick')}",
        "entries": len(entries),
        "texts": n,
        "load_s": load_s,
        "build_s": build_s,
        "match_s": run_seconds,
        "texts_per_s": n / best,
        "matches": sum(len(ids) for ids in results),
        "rss_loaded_bytes": rss_loaded,
        "rss_built_bytes": rss_built,
        "rss_end_bytes": rss_bytes(),
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
