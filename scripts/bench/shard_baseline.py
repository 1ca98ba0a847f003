#!/usr/bin/env python3
"""Baseline for `npx curate bench shard`: MetaCLIP's per-shard path on one WARC or WAT file, single thread.

The path of MetaCLIP's metaclip1/cc_matching.py (WARCCurator / WATCurator, then substring matching), with the
outputs of this project's shard activity, so that both sides can be compared row by row:

  read+inflate   --mode warc: warcio ArchiveIterator over `response` records, the HTTP payload through
                 content_stream() (chunked and gzip/deflate content coding undone, as the spec asks; MetaCLIP
                 hands selectolax the raw stream). --mode wat: gzip.open line by line, as WATCurator reads a
                 WAT: `WARC-Target-URI:` gives the page, the next line starting with `{` is its JSON.
  parse+extract  warc: the page decoded with its sniffed charset (BOM, else a <meta> charset in the first 1024
                 bytes, else UTF-8; undecodable bytes dropped: the rule of curation/html.ts; valid UTF-8 goes to
                 the parser as bytes, as MetaCLIP hands it), selectolax's lexbor HTMLParser, every `tree.tags("img")`; attributes src/alt/title/data-image-title in
                 document order, strip() then \\n and \\r removed. wat: json.loads, Envelope > Payload-Metadata >
                 HTTP-Response-Metadata > HTML-Metadata > Links, `IMG@/src` links with a url, texts alt/title/
                 data-image-title with \\n and \\r replaced by a space, then strip(). Both: urljoin(page, src),
                 uuid = sha224(url)[:24], per-file dedup of (uuid, text).
  LID            fastText lid.176 (the .ftz given with --lid-model: the one bundled in npm fasttext.wasm.js, which
                 our side loads) on every text, before dedup, as WARCCurator does (no memo). The language is
                 recorded with the row; only --keep languages are counted (spec 1d: a filter that records the
                 detected language instead of dropping the text).
  match          pyahocorasick over " " + entry + " " on the spaced text (match_baseline.py), ids ascending.
  write          candidates Parquet (pyarrow; the columns of storage/parquet.ts CANDIDATE_COLUMNS, snappy,
                 100k-row groups) and the counts JSON {"entry id": count} of the counted texts.

Records are handled in batches of --batch (MetaCLIP parses WARC pages 500 at a time) and each batch goes
through the stages in turn, so every stage is timed inside the one pass (process CPU and wall). Metadata load,
automaton build and model load are one-off costs, timed apart. Prints a JSON summary as the last stdout line.
"""
import argparse
import codecs
import gzip
import hashlib
import json
import os
import re
import resource
import sys
import time
from importlib.metadata import version
from urllib.parse import urljoin

from match_baseline import build_automaton, match

TEXT_KEYS = ("alt", "title", "data-image-title")
WARC_KEYS = frozenset(("src",) + TEXT_KEYS)
STAGES = ("read_inflate", "parse_extract", "lid", "match", "write")
MAX_PAGE = 8 * 1024 * 1024  # curation/extract.ts DEFAULT_MAX_PAGE: larger pages are skipped

# -------------------------------------------------------------------------------------------------------------
# charset sniffing as curation/html.ts sniffCharset does it (a regex over the first 1024 bytes read as latin1;
# JavaScript's \s there is [\t\n\v\f\r \xa0] on latin1 text), labels resolved as WHATWG TextDecoder does.

_JS_SPACE = "\t\n\x0b\x0c\r \xa0"
META_CHARSET = re.compile(f"<meta[^>]*?charset[{_JS_SPACE}]*=[{_JS_SPACE}]*[\"']?[{_JS_SPACE}]*([^{_JS_SPACE}\"'/>;]+)", re.I)

_WHATWG = {
    "cp1252": "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 iso8859-1 iso88591 "
              "iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252 x-cp1252",
    "utf-8": "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8",
    "gb18030": "chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk iso-ir-58 x-gbk gb18030",
    "big5hkscs": "big5 big5-hkscs cn-big5 csbig5 x-x-big5",
    "cp932": "csshiftjis ms932 ms_kanji shift-jis shift_jis sjis windows-31j x-sjis",
    "euc_jp": "cseucpkdfmtjapanese euc-jp x-euc-jp",
    "iso2022_jp": "csiso2022jp iso-2022-jp",
    "cp949": "cseuckr csksc56011987 euc-kr iso-ir-149 korean ks_c_5601-1987 ks_c_5601-1989 ksc5601 ksc_5601 windows-949",
    "cp866": "866 cp866 csibm866 ibm866",
    "koi8_r": "cskoi8r koi koi8 koi8-r koi8_r",
    "koi8_u": "koi8-ru koi8-u",
    "mac_roman": "csmacintosh mac macintosh x-mac-roman",
    "mac_cyrillic": "x-mac-cyrillic x-mac-ukrainian",
    "cp874": "dos-874 iso-8859-11 iso8859-11 iso885911 tis-620 windows-874",
    "cp1254": "cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9 iso_8859-9:1989 l5 latin5 windows-1254 x-cp1254",
    "iso8859_2": "csisolatin2 iso-8859-2 iso-ir-101 iso8859-2 iso88592 iso_8859-2 iso_8859-2:1987 l2 latin2",
    "iso8859_3": "csisolatin3 iso-8859-3 iso-ir-109 iso8859-3 iso88593 iso_8859-3 iso_8859-3:1988 l3 latin3",
    "iso8859_4": "csisolatin4 iso-8859-4 iso-ir-110 iso8859-4 iso88594 iso_8859-4 iso_8859-4:1988 l4 latin4",
    "iso8859_5": "csisolatincyrillic cyrillic iso-8859-5 iso-ir-144 iso8859-5 iso88595 iso_8859-5 iso_8859-5:1988",
    "iso8859_6": "arabic asmo-708 csiso88596e csiso88596i csisolatinarabic ecma-114 iso-8859-6 iso-8859-6-e "
                 "iso-8859-6-i iso-ir-127 iso8859-6 iso88596 iso_8859-6 iso_8859-6:1987",
    "iso8859_7": "csisolatingreek ecma-118 elot_928 greek greek8 iso-8859-7 iso-ir-126 iso8859-7 iso88597 "
                 "iso_8859-7 iso_8859-7:1987 sun_eu_greek",
    "iso8859_8": "csiso88598e csisolatinhebrew hebrew iso-8859-8 iso-8859-8-e iso-ir-138 iso8859-8 iso88598 "
                 "iso_8859-8 iso_8859-8:1988 visual csiso88598i iso-8859-8-i logical",
    "iso8859_10": "csisolatin6 iso-8859-10 iso-ir-157 iso8859-10 iso885910 l6 latin6",
    "iso8859_13": "iso-8859-13 iso8859-13 iso885913",
    "iso8859_14": "iso-8859-14 iso8859-14 iso885914",
    "iso8859_15": "csisolatin9 iso-8859-15 iso8859-15 iso885915 iso_8859-15 l9",
    "iso8859_16": "iso-8859-16",
}
WHATWG_CODECS = {label: codec for codec, labels in _WHATWG.items() for label in labels.split()}
for _n in range(1250, 1259):
    for _label in (f"cp{_n}", f"windows-{_n}", f"x-cp{_n}"):
        WHATWG_CODECS.setdefault(_label, f"cp{_n}")


def sniff_charset(body):
    """The Python codec of the page: BOM, else a <meta> charset in the first 1024 bytes, else UTF-8."""
    if body[:3] == b"\xef\xbb\xbf":
        return "utf-8"
    if body[:2] == b"\xfe\xff":
        return "utf-16-be"
    if body[:2] == b"\xff\xfe":
        return "utf-16-le"
    m = META_CHARSET.search(body[:1024].decode("latin-1"))
    if not m:
        return "utf-8"
    label = m.group(1).lower()
    if label.startswith("utf-16"):
        return "utf-8"  # HTML: a meta utf-16 declaration means utf-8
    return WHATWG_CODECS.get(label, "utf-8")  # a label TextDecoder does not know: utf-8


def decode_page(body):
    """The page for the parser: its text with undecodable bytes dropped (curation/html.ts decodeHtmlAs), or the
    bytes themselves when they are valid UTF-8 (lexbor reads bytes as UTF-8: no decode + re-encode)."""
    charset = sniff_charset(body)
    if charset == "utf-8":
        try:
            body.decode("utf-8")
            return body
        except UnicodeDecodeError:
            pass
    return body.decode(charset, "replace").replace("\ufffd", "")


# -------------------------------------------------------------------------------------------------------------

LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads joins escaped pairs: any surrogate left is lone


def gen_uuid(url):
    return hashlib.sha224(url.encode("utf-8")).hexdigest()[:24]


def resolve(page_url, src):
    """(url, uuid), or None when the reference cannot be resolved or the URL cannot be encoded."""
    try:
        url = urljoin(page_url, src)
        return url, gen_uuid(url)
    except (ValueError, UnicodeEncodeError):  # e.g. an invalid IPv6 netloc; a lone surrogate
        return None


class Stats:
    def __init__(self):
        self.records = 0
        self.pages = 0
        self.pages_skipped = 0
        self.bad_records = 0
        self.img_links = 0
        self.unresolvable = 0
        self.texts_seen = 0
        self.duplicates = 0
        self.candidates = 0
        self.texts = 0
        self.lid_calls = 0
        self.matched_texts = 0
        self.counted_texts = 0
        self.matches = 0


def warc_pages(path, stats, batch):
    """Batches of (page URL, HTTP payload) of the `response` records of a WARC."""
    from warcio.archiveiterator import ArchiveIterator

    pages = []
    with open(path, "rb") as f:
        for record in ArchiveIterator(f):
            stats.records += 1
            if record.rec_type != "response" or record.http_headers is None:
                continue
            page_url = record.rec_headers.get_header("WARC-Target-URI")
            if page_url is None:
                continue
            pages.append((page_url, record.content_stream().read()))
            if len(pages) >= batch:
                yield pages
                pages = []
    if pages:
        yield pages


def warc_extract(pages, stats, out):
    """Appends (url, uuid, [(key, text)...]) per <img> with a usable src (texts before dedup) to out."""
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    for page_url, body in pages:
        stats.pages += 1
        if len(body) > MAX_PAGE:
            stats.pages_skipped += 1
            continue
        tree = HTMLParser(decode_page(body))
        for img in tree.tags("img"):
            stats.img_links += 1
            resolved = None
            saw_src = False
            texts = []
            for key, value in img.attributes.items():
                if key not in WARC_KEYS or value is None:
                    continue
                value = value.strip().replace("\n", "").replace("\r", "")
                if not value:
                    continue
                if key == "src":
                    saw_src = True
                    resolved = resolve(page_url, value)
                else:
                    texts.append((key, value))
            if resolved is None:
                if saw_src:
                    stats.unresolvable += 1
                continue
            out.append((resolved[0], resolved[1], texts))


def wat_records(path, stats, batch):
    """Batches of (page URL, JSON line), read line by line as WATCurator does."""
    records = []
    page_url = None
    with gzip.open(path, "rb") as fr:
        for raw in fr:
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                if page_url is not None and raw.lstrip().startswith(b"{"):
                    stats.bad_records += 1  # a payload that is not UTF-8
                    page_url = None
                continue
            if line.startswith("WARC/1."):
                stats.records += 1
                page_url = None
            elif line.startswith("WARC-Target-URI:"):
                page_url = line[len("WARC-Target-URI:"):].strip()
            elif page_url is not None and line.startswith("{"):
                records.append((page_url, line))
                page_url = None
                if len(records) >= batch:
                    yield records
                    records = []
    if records:
        yield records


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")  # RFC 8259 (and our scanner) reject NaN/Infinity


LINKS_PATH = ("Envelope", "Payload-Metadata", "HTTP-Response-Metadata", "HTML-Metadata", "Links")


def wat_clean(text):
    if LONE_SURROGATE.search(text):
        text = LONE_SURROGATE.sub("", text)
    return text.replace("\n", " ").replace("\r", " ").strip()


def wat_extract(records, stats, out):
    for page_url, line in records:
        stats.pages += 1
        try:
            doc = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            stats.bad_records += 1
            continue
        for key in LINKS_PATH:
            if not isinstance(doc, dict):
                doc = None
                break
            doc = doc.get(key)
        if not isinstance(doc, list):
            continue
        for link in doc:
            if not isinstance(link, dict):
                continue
            link_path = link.get("path")
            src = link.get("url")
            if not isinstance(link_path, str) or not link_path.startswith("IMG@/src") or not isinstance(src, str):
                continue
            stats.img_links += 1
            resolved = resolve(page_url, src)
            if resolved is None:
                stats.unresolvable += 1
                continue
            texts = []
            for key in TEXT_KEYS:
                value = link.get(key)
                if isinstance(value, str):
                    value = wat_clean(value)
                    if value:
                        texts.append((key, value))
            out.append((resolved[0], resolved[1], texts))


class Lid:
    """fastText lid.176, one predict per text (ftlangdetect's detect() without its model download)."""

    def __init__(self, model_path):
        import fasttext

        self.model = fasttext.load_model(model_path)

    def langs(self, found, stats):
        """Per image, the language of each of its texts."""
        predict = self.model.predict
        out = []
        for _url, _uuid, texts in found:
            langs = []
            for _key, text in texts:
                labels, _probs = predict(text.replace("\n", " "), 1, 0.0)
                langs.append(labels[0][9:] if labels else "unknown")  # "__label__en" -> "en"
            stats.lid_calls += len(texts)
            out.append(langs)
        return out


def dedup(found, langs, emitted, stats):
    """Per-file (uuid, text) dedup: [(uuid, url, [(key, text, lang)...])] of the images with a new text."""
    out = []
    for (url, uuid, texts), text_langs in zip(found, langs):
        stats.texts_seen += len(texts)
        seen = emitted.get(uuid)
        if seen is None:
            seen = emitted[uuid] = set()
        fresh = []
        for (key, text), lang in zip(texts, text_langs):
            if text in seen:
                stats.duplicates += 1
                continue
            seen.add(text)
            fresh.append((key, text, lang))
        if fresh:
            stats.candidates += 1
            stats.texts += len(fresh)
            out.append((uuid, url, fresh))
    return out


class Rows:
    """The matched rows, column by column, and the counts of the counted texts."""

    def __init__(self):
        self.uuid, self.url, self.key, self.text, self.lang, self.entry_ids = [], [], [], [], [], []
        self.counts = {}


def match_candidates(cands, automaton, keep, rows, stats):
    counts = rows.counts
    for uuid, url, texts in cands:
        for key, text, lang in texts:
            ids = match(automaton, text)
            if not ids:
                continue
            stats.matched_texts += 1
            rows.uuid.append(uuid)
            rows.url.append(url)
            rows.key.append(key)
            rows.text.append(text)
            rows.lang.append(lang)
            rows.entry_ids.append(ids)
            if lang in keep:
                stats.counted_texts += 1
                stats.matches += len(ids)
                for e in ids:
                    counts[e] = counts.get(e, 0) + 1


def write_outputs(rows, out_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        pa.field("uuid", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=True),
        pa.field("entry_ids", pa.list_(pa.field("element", pa.int32(), nullable=False)), nullable=False),
    ])
    table = pa.Table.from_arrays(
        [pa.array(rows.uuid, pa.string()), pa.array(rows.url, pa.string()), pa.array(rows.key, pa.string()),
         pa.array(rows.text, pa.string()), pa.array(rows.lang, pa.string()), pa.array(rows.entry_ids, schema.field("entry_ids").type)],
        schema=schema,
    )
    parquet = os.path.join(out_dir, "candidates.parquet")
    pq.write_table(table, parquet, compression="snappy", row_group_size=100_000)
    counts = json.dumps({str(e): rows.counts[e] for e in sorted(rows.counts)}, separators=(",", ":"))
    with open(os.path.join(out_dir, "counts.json"), "w", encoding="utf-8") as f:
        f.write(counts)
    return os.path.getsize(parquet), len(counts.encode("utf-8"))


class Clock:
    """Attributes the process CPU (all threads) and wall time since the last lap to a stage."""

    def __init__(self):
        self.cpu = dict.fromkeys(STAGES, 0.0)
        self.wall = dict.fromkeys(STAGES, 0.0)
        self.c = time.process_time()
        self.w = time.perf_counter()

    def lap(self, stage):
        c = time.process_time()
        w = time.perf_counter()
        self.cpu[stage] += c - self.c
        self.wall[stage] += w - self.w
        self.c = c
        self.w = w


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["warc", "wat"], required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--metadata", required=True, help="JSON array of entry strings")
    ap.add_argument("--lid-model", required=True, help="fastText lid.176 model (.ftz)")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--keep", default="en", help="comma-separated languages whose texts are counted")
    ap.add_argument("--batch", type=int, default=500, help="records per batch (stage timing granularity)")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    keep = frozenset(filter(None, args.keep.split(",")))
    try:
        import pyarrow

        pyarrow.set_cpu_count(1)
        pyarrow.set_io_thread_count(1)
    except ImportError:
        pass

    c0, w0 = time.process_time(), time.perf_counter()
    with open(args.metadata, encoding="utf-8") as f:
        entries = json.load(f)
    automaton = build_automaton(entries)
    c1, w1 = time.process_time(), time.perf_counter()
    lid = Lid(args.lid_model)
    c2, w2 = time.process_time(), time.perf_counter()
    one_off = {
        "metadata_and_index_cpu_s": c1 - c0, "metadata_and_index_wall_s": w1 - w0,
        "lid_load_cpu_s": c2 - c1, "lid_load_wall_s": w2 - w1, "entries": len(entries),
    }

    stats = Stats()
    rows = Rows()
    emitted = {}
    read, extract = (warc_pages, warc_extract) if args.mode == "warc" else (wat_records, wat_extract)
    size = os.path.getsize(args.input)
    next_report = time.perf_counter() + 5.0
    clock = Clock()
    start_cpu, start_wall = clock.c, clock.w
    for batch in read(args.input, stats, args.batch):
        clock.lap("read_inflate")
        found = []
        extract(batch, stats, found)
        clock.lap("parse_extract")
        langs = lid.langs(found, stats)
        clock.lap("lid")
        cands = dedup(found, langs, emitted, stats)
        clock.lap("parse_extract")
        match_candidates(cands, automaton, keep, rows, stats)
        clock.lap("match")
        if time.perf_counter() >= next_report:
            next_report = time.perf_counter() + 5.0
            print(f"[baseline] {args.mode}: {stats.records:,} records, {len(rows.uuid):,} rows", file=sys.stderr, flush=True)
    parquet_bytes, counts_bytes = write_outputs(rows, args.out_dir)
    clock.lap("write")
    cpu = clock.c - start_cpu
    wall = clock.w - start_wall

    ru = resource.getrusage(resource.RUSAGE_SELF)
    summary = {
        "impl": f"python {sys.version.split()[0]}: "
                + (f"warcio {version('warcio')} + selectolax {version('selectolax')} (lexbor)" if args.mode == "warc" else "gzip + json (WATCurator's line reader)")
                + f", fasttext-predict {version('fasttext-predict')}, pyahocorasick {version('pyahocorasick')}, pyarrow {version('pyarrow')}",
        "mode": args.mode,
        "input_bytes": size,
        "cpu_s": cpu,
        "wall_s": wall,
        "stages_cpu_s": clock.cpu,
        "stages_wall_s": clock.wall,
        "one_off": one_off,
        "rows": len(rows.uuid),
        "count_entries": len(rows.counts),
        "parquet_bytes": parquet_bytes,
        "counts_json_bytes": counts_bytes,
        "stats": vars(stats),
        "max_rss_bytes": ru.ru_maxrss * 1024,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
