"""Text of any size: long lines cut before the tokenizer, the Arrow token cache, progress, and a cache
that cannot be written. (How much memory a 1 GB file takes is measured by scripts/bench_data.py.)"""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest
import torch

from workbench.config.schema import DataConfig
from workbench.engine.data import corpus
from workbench.engine.data.batches import BatchIterator
from workbench.engine.data.blocks import load_blocks
from workbench.engine.data.generated import train_tokenizer
from workbench.engine.data.sources import SPLIT_CHARS

WORDS = "the a cat dog sees likes house garden red small runs sleeps near under big old".split()


def words(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([words(400, seed=s) for s in range(20)], vocab_size=300)


@pytest.fixture
def calls(monkeypatch):
    """The texts the tokenizer is given, by calls."""
    seen: list[list[str]] = []
    real = corpus.encode

    def spy(tokenizer, texts):
        seen.append(list(texts))
        return real(tokenizer, texts)

    monkeypatch.setattr(corpus, "encode", spy)
    return seen


def stream_blocks(texts: list[str], tokenizer, seq_len: int) -> list[tuple[int, ...]]:
    """The blocks of the documents tokenized whole, each followed by end-of-text."""
    stream: list[int] = []
    for text in texts:
        stream += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return [tuple(stream[i : i + seq_len]) for i in range(0, len(stream) // seq_len * seq_len, seq_len)]


def all_blocks(blocks) -> list[tuple[int, ...]]:
    return sorted(tuple(b) for b in torch.cat([blocks.train, blocks.val]).tolist())


def test_a_file_on_one_line_is_cut_before_the_tokenizer_into_the_same_blocks(tmp_path, tokenizer, calls):
    text = words(12_000, seed=3)  # ~60k characters, no line break
    other = words(50, seed=4)
    path = tmp_path / "one-line.txt"
    path.write_text(f"{text}\n\n{other}\n", encoding="utf-8")
    expected = stream_blocks([text, other], tokenizer, 64)

    blocks = load_blocks(DataConfig(source="file", path=str(path), val_fraction=0.1), tokenizer, 64, seed=0)

    given = [t for call in calls for t in call]
    assert max(len(t) for t in given) <= SPLIT_CHARS, "a line longer than the split size reached the tokenizer"
    assert "".join(given) == text + other, "text was lost or repeated when the line was cut"
    assert all_blocks(blocks) == sorted(expected)  # cut at whitespace, a byte-level BPE gives the same tokens
    assert blocks.documents == 2
    assert blocks.examples[0] == text[: corpus.EXAMPLE_CHARS - 1].rstrip() + "…"


def test_the_same_long_document_in_a_jsonl_file_is_cut_too(tmp_path, tokenizer, calls):
    import json

    text = words(3_000, seed=5)
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"text": text}) + "\n" + json.dumps({"text": "the cat"}) + "\n", encoding="utf-8")
    blocks = load_blocks(DataConfig(source="file", path=str(path)), tokenizer, 16, seed=0)
    assert max(len(t) for call in calls for t in call) <= SPLIT_CHARS
    assert all_blocks(blocks) == sorted(stream_blocks([text, "the cat"], tokenizer, 16))


def test_the_second_load_reads_the_cache_and_gives_the_same_blocks(tmp_path, tokenizer, calls):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(words(40, seed=s) for s in range(50)), encoding="utf-8")
    data = DataConfig(source="file", path=str(path), val_fraction=0.2)
    first = load_blocks(data, tokenizer, 32, seed=1)
    assert not first.cached and calls
    calls.clear()

    again = load_blocks(data, tokenizer, 32, seed=1)
    assert again.cached and not calls, "the text was tokenized again although it is cached"
    assert torch.equal(first.train, again.train) and torch.equal(first.val, again.val)
    assert (again.documents, again.tokens, again.examples) == (first.documents, first.tokens, first.examples)

    # Another seed draws other held-out blocks from the same cached tokens.
    other = load_blocks(data, tokenizer, 32, seed=2)
    assert other.cached and not calls
    assert not torch.equal(first.val, other.val) and all_blocks(other) == all_blocks(first)
    # Another block length is other blocks: tokenized again.
    assert not load_blocks(data, tokenizer, 16, seed=1).cached and calls


def test_a_changed_file_is_tokenized_again(tmp_path, tokenizer):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(words(40, seed=s) for s in range(30)), encoding="utf-8")
    data = DataConfig(source="file", path=str(path))
    first = load_blocks(data, tokenizer, 32, seed=0)
    path.write_text("\n\n".join(words(40, seed=s + 100) for s in range(30)), encoding="utf-8")
    changed = load_blocks(data, tokenizer, 32, seed=0)
    assert not changed.cached and all_blocks(changed) != all_blocks(first)


def test_a_large_file_touched_since_is_tokenized_again(tmp_path, tokenizer):
    path = tmp_path / "big.txt"
    path.write_text("\n\n".join(words(60, seed=s) for s in range(4_000)), encoding="utf-8")
    assert path.stat().st_size > 1 << 20  # large files are known by size and modification time
    data = DataConfig(source="file", path=str(path), max_documents=200)
    assert not load_blocks(data, tokenizer, 32, seed=0).cached
    assert load_blocks(data, tokenizer, 32, seed=0).cached
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert not load_blocks(data, tokenizer, 32, seed=0).cached


def test_another_tokenizer_is_not_served_from_the_cache(tmp_path, tokenizer):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(words(40, seed=s) for s in range(30)), encoding="utf-8")
    data = DataConfig(source="file", path=str(path))
    load_blocks(data, tokenizer, 32, seed=0)
    other = train_tokenizer([words(400, seed=s) for s in range(20)], vocab_size=280)
    assert not load_blocks(data, other, 32, seed=0).cached


def test_tokenizing_reports_progress_with_the_time_left(tmp_path, tokenizer, monkeypatch):
    monkeypatch.setattr(corpus, "PROGRESS_AFTER_S", 0.0)
    monkeypatch.setattr(corpus, "PIECES_PER_BATCH", 10)
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(words(30, seed=s) for s in range(200)), encoding="utf-8")
    lines: list[str] = []
    load_blocks(DataConfig(source="file", path=str(path)), tokenizer, 32, seed=0, on_log=lines.append)
    progress = [line for line in lines if line.startswith("tokenizing file corpus.txt: ")]
    assert len(progress) >= 5, lines
    percents = [int(line.split(": ")[1].split("%")[0]) for line in progress]
    assert percents == sorted(percents) and percents[0] <= 20 and percents[-1] >= 80
    assert all(" left" in line and "about " in line for line in progress)
    assert lines[-1].startswith("file corpus.txt: 200 documents")


@pytest.mark.parametrize("where", ["cache folder", "cache entry"])
def test_a_cache_that_cannot_be_written_is_a_warning(tmp_path, tokenizer, monkeypatch, where):
    import tempfile

    from workbench import paths

    def temporary_folders() -> set[str]:
        return {p.name for p in Path(tempfile.gettempdir()).glob("workbench-*")}

    before = temporary_folders()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(paths, "cache_path" if where == "cache folder" else "atomic_target", full)
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(words(40, seed=s) for s in range(30)), encoding="utf-8")
    lines: list[str] = []
    blocks = load_blocks(DataConfig(source="file", path=str(path)), tokenizer, 32, seed=0, on_log=lines.append)
    assert len(blocks.train) > 0 and len(blocks.val) > 0
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "could not be cached" in warnings[0] and "the disk is full" in warnings[0]
    assert temporary_folders() == before, "the temporary folder was left behind"


def test_memory_mapped_blocks_train_as_int64_batches(tmp_path, tokenizer):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(words(40, seed=s) for s in range(30)), encoding="utf-8")
    blocks = load_blocks(DataConfig(source="file", path=str(path)), tokenizer, 32, seed=0)
    batch = BatchIterator(blocks.train, batch_size=4, seed=0).next_batch()
    assert batch.dtype == torch.long and batch.shape == (4, 32)
    batch[0, 0] = -1  # a batch is a copy: the cached blocks stay as they were
    assert int(blocks.train.min()) >= 0


def test_workbench_data_says_whether_the_cache_was_hit(tmp_path, capsys):
    from workbench.cli import main

    text = tmp_path / "text.txt"
    text.write_text("\n\n".join(words(40, seed=s) for s in range(100)), encoding="utf-8")
    args = ["data", "toy-quick", "--set", "data.source=file", "--set", f"data.path={text}", "--set", "train.seq_len=16"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "documents: 100" in first and "tokens:" in first and "blocks:" in first
    assert "cache:     miss" in first and "cache:     hit" in second


def test_a_tokenizer_trained_here_reads_the_file_as_a_stream_of_pieces(tmp_path, monkeypatch):
    from workbench.config.schema import TeacherConfig
    from workbench.engine import assemble
    from workbench.engine.data import generated
    from workbench.errors import ConfigError

    text = tmp_path / "one-line.txt"
    text.write_text(words(60_000, seed=3), encoding="utf-8")  # one line of ~300k characters
    given = []
    real = generated.train_tokenizer

    def recording(texts, vocab_size=4096):
        def seen():
            for t in texts:
                given.append(len(t))
                yield t

        return real(seen(), vocab_size=vocab_size)

    monkeypatch.setattr(generated, "train_tokenizer", recording)
    data = DataConfig(source="file", path=str(text))
    tokenizer = assemble.data_tokenizer(TeacherConfig(source="train"), data)
    assert len(given) > 1 and max(given) <= SPLIT_CHARS  # never the whole line at once
    assert sum(given) == len(text.read_text(encoding="utf-8"))  # every character was read, once
    assert tokenizer.decode(tokenizer("the cat")["input_ids"]) == "the cat"

    (tmp_path / "empty.txt").write_text("  \n\n ", encoding="utf-8")
    with pytest.raises(ConfigError, match="contains no text"):
        assemble.data_tokenizer(
            TeacherConfig(source="train"), DataConfig(source="file", path=str(tmp_path / "empty.txt"))
        )


def test_a_tokenizer_trained_on_a_file_is_cached_and_the_plan_then_knows_its_size(tmp_path, monkeypatch):
    from workbench.config.schema import RunConfig, TeacherConfig
    from workbench.engine import assemble
    from workbench.engine.data import generated
    from workbench.engine.plan import plan_run

    text = tmp_path / "story.txt"
    text.write_text("\n".join(words(300, seed=s) for s in range(30)), encoding="utf-8")
    trained = []
    real = generated.train_tokenizer
    monkeypatch.setattr(generated, "train_tokenizer", lambda *a, **k: trained.append(1) or real(*a, **k))
    cfg = RunConfig()
    cfg.apply_overrides(["teacher.source=train", "data.source=file", f"data.path={text}"])

    before = plan_run(cfg)
    assert "up to 4,096 tokens" in before.tokenizer_status
    assert any("Sizes assume 4,096 tokens" in w for w in before.warnings)
    first = assemble.data_tokenizer(TeacherConfig(source="train"), cfg.data)
    again = assemble.data_tokenizer(TeacherConfig(source="train"), cfg.data)
    assert trained == [1], "the second run loads the tokenizer the first one trained"
    assert again.get_vocab() == first.get_vocab() and len(again) == len(first) < 4096
    assert again("the cat sat")["input_ids"] == first("the cat sat")["input_ids"]
    assert corpus.tokenizer_identity(again) == corpus.tokenizer_identity(first), "so the token cache is hit too"

    after = plan_run(cfg)
    assert after.vocab_size == len(first)
    assert f"{len(first):,} tokens, as an earlier run trained it" in after.tokenizer_status
    assert not any("Sizes assume" in w for w in after.warnings)
    assert after.teacher_params < before.teacher_params, "the sizes follow the real, smaller vocabulary"

    text.write_text(text.read_text(encoding="utf-8") + "\nmore words here", encoding="utf-8")
    assert "up to 4,096" in plan_run(cfg).tokenizer_status, "changed text: its tokenizer is not trained yet"
    assemble.data_tokenizer(TeacherConfig(source="train"), cfg.data)
    assert trained == [1, 1]


def test_a_damaged_tokenizer_cache_entry_is_trained_again(tmp_path):
    from workbench.config.schema import TeacherConfig
    from workbench.engine import assemble
    from workbench.engine.data.sources import open_documents

    text = tmp_path / "story.txt"
    text.write_text("\n".join(words(200, seed=s) for s in range(10)), encoding="utf-8")
    data = DataConfig(source="file", path=str(text))
    first = assemble.data_tokenizer(TeacherConfig(source="train"), data)
    entry = assemble.text_tokenizer_entry(open_documents(data).identity)
    (entry / "tokenizer.json").write_text("{not json", encoding="utf-8")
    assert assemble.cached_tokenizer_size(entry) is None
    again = assemble.data_tokenizer(TeacherConfig(source="train"), data)
    assert again.get_vocab() == first.get_vocab()
    assert assemble.cached_tokenizer_size(entry) == len(first), "and the entry is written again"


def test_a_tokenizer_cache_that_cannot_be_written_costs_nothing_but_the_cache(tmp_path, monkeypatch):
    """The tokenizers library reports a full disk as a plain Exception: the run still gets its tokenizer."""
    from transformers import PreTrainedTokenizerFast

    from workbench.config.schema import TeacherConfig
    from workbench.engine import assemble
    from workbench.engine.data.sources import open_documents

    def full_disk(self, *args, **kwargs):
        raise Exception("No space left on device (os error 28)")  # noqa: TRY002 - what the library raises

    monkeypatch.setattr(PreTrainedTokenizerFast, "save_pretrained", full_disk)
    text = tmp_path / "story.txt"
    text.write_text("\n".join(words(200, seed=s) for s in range(10)), encoding="utf-8")
    data = DataConfig(source="file", path=str(text))
    tokenizer = assemble.data_tokenizer(TeacherConfig(source="train"), data)
    assert tokenizer.decode(tokenizer("the cat")["input_ids"]) == "the cat"
    assert assemble.cached_tokenizer_size(assemble.text_tokenizer_entry(open_documents(data).identity)) is None
