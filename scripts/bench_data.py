"""How a big text file tokenizes: throughput, peak memory and the cached second run.

Writes a text file of ``--size-mb`` megabytes (default 1024) in a temporary folder: English-like
paragraphs, some of them very long lines (hundreds of kilobytes without a line break). Then, each in a
fresh child process so the memory figure is its own, ``load_blocks`` tokenizes it with a byte-level BPE
tokenizer trained here on a sample (no network), twice: the first run tokenizes and caches, the second
reads the cache. Peak memory is the child's ``ru_maxrss``.

    python scripts/bench_data.py --json                # 1 GB
    python scripts/bench_data.py --size-mb 100 --json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORDS = (
    "the of and to in is was for that with as on by at from his her an which or be are this had not but "
    "were have it they one all their there been has when who will more no if out so said what up its about "
    "into than them can only other new some could time these two may then do first any my now such like "
    "our over man me even most made after also did many before must through back years where much your way "
    "well down should because each just those people how too little state good very make world still own see "
    "men work long get here between both life being under never day same another know while last might us "
    "great old year off come since against go came right used take three distillation teacher student model"
).split()


def write_corpus(path: Path, size_mb: int, seed: int = 0) -> None:
    """About ``size_mb`` MB of paragraphs; one in a hundred is a line of 100k-1M characters."""
    rng = random.Random(seed)
    # A pool of sentences, reused in random order: writing stays fast, the text stays varied.
    sentences = []
    for _ in range(5000):
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 24))]
        sentences.append(" ".join(words).capitalize() + rng.choice([".", ".", ".", "?", "!", ","]))
    target = size_mb * 1024 * 1024
    written = 0
    with path.open("w", encoding="utf-8") as out:
        while written < target:
            n = rng.randint(1_000, 10_000) if rng.random() < 0.01 else rng.randint(2, 12)
            paragraph = " ".join(rng.choice(sentences) for _ in range(n))
            if n < 1_000 and rng.random() < 0.5:
                paragraph = paragraph.replace(", ", ",\n", 1)
            out.write(paragraph + "\n\n")
            written += len(paragraph) + 2


def child(corpus: str, tokenizer_dir: str, seq_len: int) -> None:
    """One load in this process; prints a JSON line with its figures."""
    import resource

    sys.path.insert(0, str(ROOT))
    from transformers import AutoTokenizer

    from workbench.config.schema import DataConfig
    from workbench.engine.data.blocks import load_blocks

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    started = time.perf_counter()
    log = []

    def on_log(message: str) -> None:
        log.append(message)
        print(f"    {message}", file=sys.stderr, flush=True)

    blocks = load_blocks(DataConfig(source="file", path=corpus), tokenizer, seq_len, seed=0, on_log=on_log)
    # Touch the blocks as training would: a few batches from across the file.
    total = int(blocks.train[:: max(1, len(blocks.train) // 1000)].sum()) + int(blocks.val[:100].sum())
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak_kb / 1024,
                "tokens": blocks.tokens,
                "documents": blocks.documents,
                "train_blocks": len(blocks.train),
                "val_blocks": len(blocks.val),
                "cached": blocks.cached,
                "checksum": total,
            }
        )
    )


def run_child(corpus: Path, tokenizer_dir: Path, seq_len: int, home: Path) -> dict:
    env = {**os.environ, "WORKBENCH_HOME": str(home), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(corpus), str(tokenizer_dir), str(seq_len)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the generated text file (default 1024)")
    parser.add_argument("--seq-len", type=int, default=512, help="block length in tokens (default 512)")
    parser.add_argument("--vocab", type=int, default=8192, help="vocabulary of the BPE tokenizer trained here")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0

    sys.path.insert(0, str(ROOT))
    from workbench.engine.data.generated import train_tokenizer

    with tempfile.TemporaryDirectory(prefix="bench-data-") as scratch:
        work = Path(args.keep) if args.keep else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        corpus = work / "corpus.txt"
        started = time.perf_counter()
        write_corpus(corpus, args.size_mb)
        write_s = time.perf_counter() - started
        size = corpus.stat().st_size
        print(f"wrote {size / 2**20:,.0f} MB in {write_s:.1f} s", file=sys.stderr)
        with corpus.open(encoding="utf-8") as handle:
            sample = [handle.read(4000) for _ in range(500)]
        tokenizer = train_tokenizer(sample, vocab_size=args.vocab)
        tokenizer.save_pretrained(work / "tokenizer")
        home = work / "home"
        print("first run (tokenize and cache):", file=sys.stderr)
        first = run_child(corpus, work / "tokenizer", args.seq_len, home)
        print("second run (the cache):", file=sys.stderr)
        second = run_child(corpus, work / "tokenizer", args.seq_len, home)
        cache_bytes = sum(p.stat().st_size for p in (home / "cache" / "text").rglob("*") if p.is_file())
    figures = {
        "size_mb": round(size / 2**20, 1),
        "seq_len": args.seq_len,
        "vocab": args.vocab,
        "documents": first["documents"],
        "tokens": first["tokens"],
        "blocks": first["train_blocks"] + first["val_blocks"],
        "first_run_s": round(first["seconds"], 2),
        "tokens_per_s": round(first["tokens"] / first["seconds"]),
        "mb_per_s": round(size / 2**20 / first["seconds"], 2),
        "peak_rss_mb": round(first["peak_rss_mb"], 1),
        "cache_hit_s": round(second["seconds"], 2),
        "cache_hit_peak_rss_mb": round(second["peak_rss_mb"], 1),
        "cache_hit": second["cached"] and not first["cached"],
        "same_blocks": first["checksum"] == second["checksum"],
        "cache_mb": round(cache_bytes / 2**20, 1),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:>22}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
