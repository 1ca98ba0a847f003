#!/usr/bin/env python3
"""Baseline for `npx curate bench extract`: MetaCLIP-style candidate extraction, no language filter.

--mode wat:  the WATCurator way. gzip.open, line by line: decode + strip; a `WARC-Target-URI:` line gives the
             page, the first following line that starts with `{` is the record's JSON; walk Envelope >
             Payload-Metadata > HTTP-Response-Metadata > HTML-Metadata > Links; `IMG@/src` links with a url;
             texts alt/title/data-image-title with \\n and \\r replaced by a space, then stripped.
--mode warc: warcio ArchiveIterator over `response` records + selectolax (lexbor) HTMLParser: every `tree.tags('img')`,
             attributes src/alt/title/data-image-title stripped, then \\n and \\r removed.
Both: urljoin(page, src), uuid = sha224(url)[:24], per-file dedup of (uuid, text).

Writes every candidate as a JSON line [uuid, [texts...]] (ASCII-escaped) for the identity check and prints a
JSON summary as the last line on stdout.
"""
import argparse
import gzip
import hashlib
import json
import resource
import sys
import time
from importlib.metadata import version
from urllib.parse import urljoin

TEXT_KEYS = ("alt", "title", "data-image-title")
WANTED = {"src", "alt", "title", "data-image-title"}


class Dedup:
    """Per-file (uuid -> texts already emitted)."""

    def __init__(self):
        self.emitted = {}
        self.candidates = []
        self.unresolvable = 0

    def emit(self, page_url, src, texts):
        try:
            url = urljoin(page_url, src)
            uuid = hashlib.sha224(url.encode("utf-8")).hexdigest()[:24]
        except (ValueError, UnicodeEncodeError):
            self.unresolvable += 1
            return
        seen = self.emitted.setdefault(uuid, set())
        fresh = []
        for text in texts:
            if text in seen:
                continue
            seen.add(text)
            fresh.append(text)
        if fresh:
            self.candidates.append((uuid, fresh))


class Progress:
    def __init__(self, label):
        self.label = label
        self.next = time.perf_counter() + 2.0

    def tick(self, records, extra=""):
        now = time.perf_counter()
        if now >= self.next:
            self.next = now + 2.0
            print(f"[baseline] {self.label}: {records:,} records{extra}", file=sys.stderr, flush=True)


def extract_wat(path, dedup):
    records = 0
    bad = 0
    progress = Progress("wat")
    page_url = None
    with gzip.open(path, "rb") as fr:
        for raw in fr:
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                bad += 1
                continue
            if line.startswith("WARC-Target-URI:"):
                page_url = line[len("WARC-Target-URI:"):].strip()
                continue
            if line.startswith("WARC/1."):
                records += 1
                if (records & 1023) == 0:
                    progress.tick(records)
                continue
            if page_url is None or not line.startswith("{"):
                continue
            url, page_url = page_url, None
            try:
                doc = json.loads(line)
            except ValueError:
                bad += 1
                continue
            try:
                links = doc["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]["HTML-Metadata"]["Links"]
            except (KeyError, TypeError):
                continue
            if not isinstance(links, list):
                continue
            for link in links:
                if not isinstance(link, dict):
                    continue
                link_path = link.get("path")
                src = link.get("url")
                if not isinstance(link_path, str) or not link_path.startswith("IMG@/src") or not isinstance(src, str):
                    continue
                texts = []
                for key in TEXT_KEYS:
                    value = link.get(key)
                    if not isinstance(value, str):
                        continue
                    value = value.replace("\n", " ").replace("\r", " ").strip()
                    if value:
                        texts.append(value)
                dedup.emit(url, src, texts)
    return records, bad


def extract_warc(path, dedup):
    # selectolax >= 1.0 ships only the lexbor engine (the Modest-based selectolax.parser.HTMLParser of the
    # reference's days is gone); the API is the same.
    from selectolax.lexbor import LexborHTMLParser as HTMLParser
    from warcio.archiveiterator import ArchiveIterator

    records = 0
    responses = 0
    progress = Progress("warc")
    with open(path, "rb") as f:
        for record in ArchiveIterator(f):
            records += 1
            if (records & 63) == 0:
                progress.tick(records)
            if record.rec_type != "response":
                continue
            responses += 1
            page_url = record.rec_headers.get_header("WARC-Target-URI")
            html = record.content_stream().read().decode("utf-8", errors="ignore")
            tree = HTMLParser(html)
            for img in tree.tags("img"):
                src = None
                texts = []
                for key, value in img.attributes.items():
                    if key not in WANTED or value is None:
                        continue
                    value = value.strip().replace("\n", "").replace("\r", "")
                    if not value:
                        continue
                    if key == "src":
                        src = value
                    else:
                        texts.append(value)
                if src is not None:
                    dedup.emit(page_url, src, texts)
    return records, responses


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["wat", "warc"], required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    dedup = Dedup()
    t = time.perf_counter()
    if args.mode == "wat":
        records, bad = extract_wat(args.input, dedup)
        extra = {"bad_records": bad}
        impl = f"python {sys.version.split()[0]} gzip+json (line-based, WATCurator style)"
    else:
        records, responses = extract_warc(args.input, dedup)
        extra = {"response_records": responses}
        impl = f"python {sys.version.split()[0]} warcio {version('warcio')} + selectolax {version('selectolax')}"
    seconds = time.perf_counter() - t

    with open(args.out, "w", encoding="ascii") as f:
        for uuid, texts in dedup.candidates:
            f.write(json.dumps([uuid, texts]))
            f.write("\n")

    summary = {
        "impl": impl,
        "mode": args.mode,
        "seconds": seconds,
        "records": records,
        "candidates": len(dedup.candidates),
        "texts": sum(len(t) for _, t in dedup.candidates),
        "unresolvable_urls": dedup.unresolvable,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        **extra,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
