"""img2dataset side of `npx curate bench images`: img2dataset 1.47.0's own `download()` (its Python API), one
process (processes_count=1), `--threads` download threads, on a TSV of (url, caption) served by the bench's
loopback image server, writing WebDataset tars to `--out`.

Settings as the bench's our side: image_size 256, resize_mode border, jpg quality 95 (img2dataset's
defaults, which our defaults copy), compute_hash sha256, timeout 10 s, retries 0, shards of `--per-shard`
samples. Turned off because our side does not do them: EXIF extraction (extract_exif) and wandb.

Measured:
- the whole `download()` call: wall time and the CPU time (user + sys) of this process plus its reaped
  children (img2dataset's spawned worker and logger processes): getrusage(SELF) + getrusage(CHILDREN);
- each shard inside the worker (`Downloader.__call__`, wrapped): wall time and the worker's own CPU time
  (all its threads). This leaves out spawning the worker, its imports and the logger process.

Prints one JSON summary line on stdout (everything img2dataset prints goes to stderr) and writes the per-URL
outcome (status, sha256, sizes) read back from img2dataset's Parquet files to `--details`.
"""
import argparse
import glob
import json
import os
import resource
import sys
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no PyPI version check on import
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

import img2dataset.main  # noqa: E402,F401
from img2dataset.downloader import Downloader  # noqa: E402

# The module (the package's `main` attribute is the CLI function of the same name).
i2d_main = sys.modules["img2dataset.main"]

TIMING_ENV = "CURATE_BENCH_I2D_TIMING_DIR"


class TimedDownloader(Downloader):
    """img2dataset's Downloader, timing each shard in the worker process (pickled by reference to __main__)."""

    def __call__(self, row):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        result = super().__call__(row)
        t1 = time.perf_counter()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        timing = {"shard": row[0], "wall_s": t1 - t0, "cpu_s": cpu, "pid": os.getpid(), "max_rss_kb": r1.ru_maxrss}
        with open(os.path.join(os.environ[TIMING_ENV], f"shard-{row[0]}.json"), "w", encoding="utf8") as f:
            json.dump(timing, f)
        return result


def rusage_cpu():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--urls", required=True, help="TSV with a header: url, caption")
    ap.add_argument("--out", required=True, help="output folder (must not exist)")
    ap.add_argument("--timing", required=True, help="folder for the per-shard timings (must exist, empty)")
    ap.add_argument("--details", required=True, help="JSON file for the per-URL outcomes")
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--per-shard", type=int, default=1000)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--resize-mode", default="border")
    ap.add_argument("--encode-format", default="jpg")
    ap.add_argument("--encode-quality", type=int, default=95)
    ap.add_argument("--timeout", type=int, default=10)
    ap.add_argument("--retries", type=int, default=0)
    a = ap.parse_args()

    # Everything img2dataset (and its children, which inherit fd 1) prints goes to stderr; the summary to stdout.
    summary_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)

    os.environ[TIMING_ENV] = os.path.abspath(a.timing)
    i2d_main.Downloader = TimedDownloader

    cpu0 = rusage_cpu()
    t0 = time.perf_counter()
    i2d_main.download(
        url_list=a.urls,
        input_format="tsv",
        url_col="url",
        caption_col="caption",
        output_folder=a.out,
        output_format="webdataset",
        processes_count=1,
        thread_count=a.threads,
        number_sample_per_shard=a.per_shard,
        image_size=a.image_size,
        resize_mode=a.resize_mode,
        resize_only_if_bigger=False,
        encode_format=a.encode_format,
        encode_quality=a.encode_quality,
        compute_hash="sha256",
        extract_exif=False,
        timeout=a.timeout,
        retries=a.retries,
        enable_wandb=False,
        distributor="multiprocessing",
        incremental_mode="incremental",  # on a fresh folder; "overwrite" would delete its own _tmp folder
    )
    seconds = time.perf_counter() - t0
    cpu = rusage_cpu() - cpu0
    sys.stdout.flush()

    shards = []
    for f in sorted(glob.glob(os.path.join(a.timing, "shard-*.json"))):
        with open(f, encoding="utf8") as fh:
            shards.append(json.load(fh))
    stats = {"count": 0, "successes": 0, "failed_to_download": 0, "failed_to_resize": 0}
    for f in sorted(glob.glob(os.path.join(a.out, "*_stats.json"))):
        with open(f, encoding="utf8") as fh:
            s = json.load(fh)
        for k in stats:
            stats[k] += s.get(k, 0)

    import pyarrow.parquet as pq  # noqa: E402  (after timing)

    details = []
    for f in sorted(glob.glob(os.path.join(a.out, "*.parquet"))):
        t = pq.read_table(f, columns=["url", "key", "status", "error_message", "sha256", "width", "height", "original_width", "original_height"])
        details.extend(t.to_pylist())
    with open(a.details, "w", encoding="utf8") as fh:
        json.dump(details, fh)
    tars = sorted(glob.glob(os.path.join(a.out, "*.tar")))

    import cv2  # noqa: E402

    summary = {
        "impl": f"img2dataset {img2dataset_version()} (python {sys.version.split()[0]}, opencv {cv2.__version__}, "
        f"albumentations {albumentations_version()}), 1 process × {a.threads} threads",
        "seconds": seconds,
        "cpu_s": cpu,
        "shard_wall_s": sum(s["wall_s"] for s in shards),
        "shard_cpu_s": sum(s["cpu_s"] for s in shards),
        "shards": len(shards),
        "worker_pids": sorted({s["pid"] for s in shards}),
        "worker_max_rss_bytes": max((s["max_rss_kb"] for s in shards), default=0) * 1024,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "children_max_rss_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
        "stats": stats,
        "successes": stats["successes"],
        "tars": tars,
        "tar_bytes": sum(os.path.getsize(t) for t in tars),
    }
    os.write(summary_fd, (json.dumps(summary) + "\n").encode("utf8"))


def img2dataset_version():
    from importlib.metadata import version  # noqa: E402

    return version("img2dataset")


def albumentations_version():
    from importlib.metadata import version  # noqa: E402

    return version("albumentations")


if __name__ == "__main__":
    main()
