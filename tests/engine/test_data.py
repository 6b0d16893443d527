"""Data sources, packing, batches, the trained tokenizer and teacher-generated text."""

from __future__ import annotations

import json
import os
import random

import pytest
import torch

from workbench.config.schema import DataConfig
from workbench.engine.data.batches import BatchIterator
from workbench.engine.data.blocks import load_blocks
from workbench.engine.data.generated import generate_corpus, train_tokenizer
from workbench.engine.data.preview import describe, preview
from workbench.errors import ConfigError

WORDS = "the a cat dog sees likes house garden red small runs sleeps near under big old".split()


def make_documents(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"document {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))) + "." for i in range(n)]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(make_documents(200, seed=1), vocab_size=300)


# -- the built-in language ----------------------------------------------------------


@pytest.fixture(scope="module")
def language():
    from workbench.engine.toy.language import get_language

    return get_language()


def test_toy_blocks_start_at_sentence_starts_and_follow_the_corpus(language):
    config = DataConfig(source="toy", toy_sentences=400, toy_seed=7, val_fraction=0.1)
    seq_len = 24
    blocks = load_blocks(config, None, seq_len, seed=0)
    tok = language.tokenizer()
    sentences = language.sample_sentences(400, 7)
    ids = [tok(s, add_special_tokens=False)["input_ids"] for s in sentences]
    period = tok(".", add_special_tokens=False)["input_ids"][0]

    assert blocks.train.dtype == torch.long and blocks.train.shape[1] == seq_len and blocks.val.shape[1] == seq_len
    assert blocks.documents == 400 and blocks.tokens == sum(len(s) for s in ids)
    assert blocks.examples[0] == sentences[0]

    # Walk the corpus: each block begins with the sentence after the last one the previous block started.
    def check(part: torch.Tensor, first: int) -> int:
        index = first
        for block in part.tolist():
            expected = ids[index][:seq_len]
            assert block[: len(expected)] == expected, f"block does not start with sentence {index}"
            complete = block.count(period)
            index += complete if block[-1] == period else complete + 1
        return index

    n_val = round(400 * 0.1)
    end_of_train = check(blocks.train, 0)
    assert end_of_train <= 400 - n_val  # no training block reaches into the held-out sentences
    check(blocks.val, 400 - n_val)
    assert len(blocks.val) >= 1


def test_toy_blocks_too_few_sentences_is_a_config_error(language):
    with pytest.raises(ConfigError) as err:
        load_blocks(DataConfig(source="toy", toy_sentences=100, val_fraction=0.01), None, 200, seed=0)
    assert err.value.field == "data.toy_sentences" and err.value.hint


# -- files and datasets ----------------------------------------------------------------


def expected_blocks(documents, tokenizer, seq_len):
    stream = []
    for doc in documents:
        stream += tokenizer(doc, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    n = len(stream) // seq_len
    return [tuple(stream[i * seq_len : (i + 1) * seq_len]) for i in range(n)], len(stream)


def write_source(tmp_path, kind: str, documents: list[str]) -> DataConfig:
    if kind == "txt":
        path = tmp_path / "corpus.txt"
        path.write_text("\n\n".join(d.replace(": ", ":\n") for d in documents) + "\n", encoding="utf-8")
        return DataConfig(source="file", path=str(path))
    if kind == "jsonl":
        path = tmp_path / "corpus.jsonl"
        path.write_text(
            "".join(json.dumps({"id": i, "text": d}) + "\n" for i, d in enumerate(documents)), encoding="utf-8"
        )
        return DataConfig(source="file", path=str(path))
    import pandas as pd

    frame = pd.DataFrame({"id": range(len(documents)), "text": documents})
    if kind == "csv":
        path = tmp_path / "corpus.csv"
        frame.to_csv(path, index=False)
        return DataConfig(source="file", path=str(path))
    if kind == "parquet":
        path = tmp_path / "corpus.parquet"
        frame.to_parquet(path)
        return DataConfig(source="file", path=str(path))
    import datasets

    folder = tmp_path / "saved"
    dataset = datasets.Dataset.from_pandas(frame)
    if kind == "disk_dict":
        datasets.DatasetDict({"train": dataset, "test": dataset.select(range(3))}).save_to_disk(str(folder))
    else:
        dataset.save_to_disk(str(folder))
    return DataConfig(source="disk", path=str(folder))


@pytest.mark.parametrize("kind", ["txt", "jsonl", "csv", "parquet", "disk", "disk_dict"])
def test_each_format_packs_all_its_text_into_disjoint_blocks(tmp_path, tokenizer, kind):
    documents = make_documents(60)
    config = write_source(tmp_path, kind, documents)
    config.val_fraction = 0.2
    seq_len = 32
    blocks = load_blocks(config, tokenizer, seq_len, seed=3)

    # txt paragraphs keep their inner line break; the others keep the text as written.
    read_back = [d.replace(": ", ":\n") for d in documents] if kind == "txt" else documents
    expected, tokens = expected_blocks(read_back, tokenizer, seq_len)
    train = [tuple(b) for b in blocks.train.tolist()]
    val = [tuple(b) for b in blocks.val.tolist()]
    assert blocks.documents == 60 and blocks.tokens == tokens
    assert blocks.examples[0] == read_back[0]
    assert len(train) + len(val) == len(expected)
    assert sorted(train + val) == sorted(expected)
    assert len(val) == round(len(expected) * 0.2)
    assert not set(train) & set(val), "a block is in both parts"


def test_split_is_seeded(tmp_path, tokenizer):
    config = write_source(tmp_path, "jsonl", make_documents(60))
    config.val_fraction = 0.3
    a = load_blocks(config, tokenizer, 32, seed=1)
    b = load_blocks(config, tokenizer, 32, seed=1)
    c = load_blocks(config, tokenizer, 32, seed=2)
    assert torch.equal(a.val, b.val) and torch.equal(a.train, b.train)
    assert not torch.equal(a.val, c.val)


def test_column_selection_and_max_documents(tmp_path, tokenizer):
    path = tmp_path / "qa.jsonl"
    rows = [{"title": f"title {i}", "body": doc} for i, doc in enumerate(make_documents(40))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    blocks = load_blocks(
        DataConfig(source="file", path=str(path), text_column="body", max_documents=30), tokenizer, 16, seed=0
    )
    assert blocks.documents == 30
    assert blocks.examples[0] == rows[0]["body"]
    assert "column body" in blocks.source_label


def test_hub_dataset_offline_is_one_clear_error(monkeypatch, tokenizer):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError) as err:
        load_blocks(DataConfig(source="hf", path="nobody/no-such-dataset"), tokenizer, 16, seed=0)
    assert err.value.field == "data.path"
    assert "could not be reached" in err.value.message and "save_to_disk" in err.value.hint


def _bad_inputs(tmp_path):
    """(name, config, field, words the message must contain)."""
    import datasets
    import pandas as pd

    cases = []
    cases.append(
        ("missing file", DataConfig(source="file", path=str(tmp_path / "nope.txt")), "data.path", "does not exist")
    )
    (tmp_path / "empty.txt").write_text("")
    cases.append(("empty file", DataConfig(source="file", path=str(tmp_path / "empty.txt")), "data.path", "empty"))
    (tmp_path / "blank.txt").write_text("\n\n   \n")
    cases.append(("blank file", DataConfig(source="file", path=str(tmp_path / "blank.txt")), "data.path", "no text"))
    (tmp_path / "notes.docx").write_text("hello")
    cases.append(
        ("unknown extension", DataConfig(source="file", path=str(tmp_path / "notes.docx")), "data.path", ".jsonl")
    )
    (tmp_path / "rows.jsonl").write_text('{"body": "hello", "n": 3}\n')
    cases.append(
        ("missing column", DataConfig(source="file", path=str(tmp_path / "rows.jsonl")), "data.text_column", "body")
    )
    pd.DataFrame({"score": [1, 2, 3], "label": ["a", "b", "c"]}).to_csv(tmp_path / "nums.csv", index=False)
    cases.append(
        (
            "numeric csv column",
            DataConfig(source="file", path=str(tmp_path / "nums.csv"), text_column="score"),
            "data.text_column",
            "int64",
        )
    )
    pd.DataFrame({"score": [1.5, 2.5]}).to_parquet(tmp_path / "nums.parquet")
    cases.append(
        (
            "parquet without text",
            DataConfig(source="file", path=str(tmp_path / "nums.parquet")),
            "data.path",
            "no text column",
        )
    )
    (tmp_path / "mixed.jsonl").write_text('{"text": "fine"}\n{"text": 42}\n')
    cases.append(
        (
            "number in jsonl",
            DataConfig(source="file", path=str(tmp_path / "mixed.jsonl")),
            "data.text_column",
            "numbers",
        )
    )
    datasets.Dataset.from_dict({"label": [0, 1, 2]}).save_to_disk(str(tmp_path / "ints"))
    cases.append(
        ("dataset without text", DataConfig(source="disk", path=str(tmp_path / "ints")), "data.path", "label (int64)")
    )
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet at all")
    cases.append(
        ("corrupt parquet", DataConfig(source="file", path=str(tmp_path / "broken.parquet")), "data.path", "Parquet")
    )
    (tmp_path / "broken.jsonl").write_text('{"text": "ok"}\n{"text": \n')
    cases.append(
        ("corrupt jsonl", DataConfig(source="file", path=str(tmp_path / "broken.jsonl")), "data.path", "line 2")
    )
    (tmp_path / "latin.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    cases.append(("not utf-8", DataConfig(source="file", path=str(tmp_path / "latin.txt")), "data.path", "UTF-8"))
    (tmp_path / "plain").mkdir()
    cases.append(
        ("not a dataset folder", DataConfig(source="disk", path=str(tmp_path / "plain")), "data.path", "save_to_disk")
    )
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a b"]})}).save_to_disk(str(tmp_path / "dd"))
    cases.append(
        (
            "missing split",
            DataConfig(source="disk", path=str(tmp_path / "dd"), split="validation"),
            "data.split",
            "validation",
        )
    )
    (tmp_path / "short.txt").write_text("the cat sat.")
    cases.append(
        ("too little text", DataConfig(source="file", path=str(tmp_path / "short.txt")), "train.seq_len", "tokens")
    )
    (tmp_path / "wide.txt").write_bytes("the cat sat on the mat\n".encode("utf-16"))
    cases.append(("utf-16", DataConfig(source="file", path=str(tmp_path / "wide.txt")), "data.path", "UTF-16"))
    (tmp_path / "wide.jsonl").write_bytes('{"text": "the cat"}\n'.encode("utf-16"))
    cases.append(("utf-16 jsonl", DataConfig(source="file", path=str(tmp_path / "wide.jsonl")), "data.path", "UTF-16"))
    (tmp_path / "zeros.txt").write_bytes(bytes(4096))
    cases.append(("binary", DataConfig(source="file", path=str(tmp_path / "zeros.txt")), "data.path", "binary"))
    os.mkfifo(tmp_path / "pipe.txt")
    cases.append(("a pipe", DataConfig(source="file", path=str(tmp_path / "pipe.txt")), "data.path", "regular file"))
    (tmp_path / "LICENSE").write_text("the cat sat on the mat\n" * 50)
    cases.append(("no ending", DataConfig(source="file", path=str(tmp_path / "LICENSE")), "data.path", "file type"))
    return cases


def test_each_bad_input_is_one_config_error_with_a_hint(tmp_path, tokenizer):
    for name, config, field, words in _bad_inputs(tmp_path):
        with pytest.raises(ConfigError) as err:
            load_blocks(config, tokenizer, 64, seed=0)
        assert err.value.field == field, f"{name}: {err.value}"
        assert words in str(err.value), f"{name}: {err.value}"
        assert err.value.hint, f"{name} has no hint"
        assert "\n" not in str(err.value), f"{name}: more than one line"


def test_a_byte_order_mark_is_not_read_as_text(tmp_path, tokenizer):
    documents = make_documents(20)
    txt = tmp_path / "bom.txt"
    txt.write_bytes(b"\xef\xbb\xbf" + "\n\n".join(documents).encode())
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps({"text": d}) + "\n" for d in documents).encode())
    for path in (txt, jsonl):
        blocks = load_blocks(DataConfig(source="file", path=str(path)), tokenizer, 16, seed=0)
        assert blocks.documents == 20, path.name
        assert not blocks.examples[0].startswith("\ufeff"), path.name


def test_a_json_error_says_where_on_the_line(tmp_path, tokenizer):
    path = tmp_path / "control.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "a\tb"}\n')
    with pytest.raises(ConfigError) as err:
        load_blocks(DataConfig(source="file", path=str(path)), tokenizer, 16, seed=0)
    assert "line 2 of control.jsonl is not valid JSON (Invalid control character at column" in err.value.message


def test_too_little_text_says_how_many_tokens_and_what_would_fit(tmp_path, tokenizer):
    path = tmp_path / "short.txt"
    path.write_text("the cat sat near the red house. " * 3)
    tokens = len(tokenizer(path.read_text().strip(), add_special_tokens=False)["input_ids"]) + 1
    with pytest.raises(ConfigError) as err:
        load_blocks(DataConfig(source="file", path=str(path)), tokenizer, 64, seed=0)
    assert f"has {tokens} tokens" in err.value.message
    assert f"train.seq_len {tokens // 2} or less" in err.value.hint
    blocks = load_blocks(DataConfig(source="file", path=str(path)), tokenizer, tokens // 2, seed=0)
    assert len(blocks.train) == 1 and len(blocks.val) == 1


def test_missing_column_names_the_text_columns(tmp_path, tokenizer):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"title": "a", "body": "b", "n": 1}\n')
    with pytest.raises(ConfigError) as err:
        load_blocks(DataConfig(source="file", path=str(path)), tokenizer, 8, seed=0)
    assert "title (text), body (text), n (numbers)" in err.value.message
    assert err.value.hint == "set data.text_column to one of: title, body"


# -- previews ---------------------------------------------------------------------------


def test_preview_and_describe_report_counts_and_examples(tmp_path, tokenizer):
    documents = make_documents(60)
    config = write_source(tmp_path, "jsonl", documents)
    info = preview(config, tokenizer, 32, n_examples=2)
    blocks = load_blocks(config, tokenizer, 32, seed=0)
    assert info == {
        "source": "file corpus.jsonl (column text)",
        "documents": 60,
        "tokens": blocks.tokens,
        "train_blocks": len(blocks.train),
        "val_blocks": len(blocks.val),
        "examples": documents[:2],
        "estimated": False,
        "cached": False,  # the first look tokenized it; the load after it read the cache
    }
    assert blocks.cached
    text = describe(config, tokenizer, 32)
    assert "corpus.jsonl" in text and f"{len(blocks.train)} for training + {len(blocks.val)} held out" in text
    assert documents[0][:40] in text
    assert "cache:     hit" in text


def test_preview_of_generated_data_generates_nothing(tokenizer):
    config = DataConfig(source="generated", gen_prompts=["the cat", "a dog"], gen_samples=10, gen_max_new_tokens=20)
    info = preview(config, tokenizer, 16)
    assert info["estimated"] is True and info["documents"] == 10
    assert info["examples"] == ["the cat", "a dog"]
    prompt_tokens = len(tokenizer("the cat")["input_ids"]) + len(tokenizer("a dog")["input_ids"])
    assert info["tokens"] == 5 * prompt_tokens + 10 * 21
    assert "not generated yet" in describe(config, tokenizer, 16)
    assert "too little text" in describe(
        DataConfig(source="generated", gen_prompts=["hi"], gen_samples=1), tokenizer, 64
    )


# -- batches ----------------------------------------------------------------------------


def test_batch_iterator_covers_each_epoch_and_resumes_exactly():
    blocks = torch.arange(10 * 4).reshape(10, 4)
    first = BatchIterator(blocks, batch_size=3, seed=5)
    batches = [first.next_batch() for _ in range(10)]  # 30 blocks = 3 epochs
    assert all(b.shape == (3, 4) for b in batches)
    seen = torch.cat(batches)[:, 0].div(4, rounding_mode="floor").tolist()
    for epoch in range(3):
        assert sorted(seen[epoch * 10 : (epoch + 1) * 10]) == list(range(10)), "an epoch skipped or repeated a block"
    assert seen[:10] != seen[10:20], "the order was not reshuffled"

    again = BatchIterator(blocks, batch_size=3, seed=5)
    assert all(torch.equal(a, again.next_batch()) for a in batches)
    other = BatchIterator(blocks, batch_size=3, seed=6)
    assert not all(torch.equal(a, other.next_batch()) for a in batches[:4])

    original = BatchIterator(blocks, batch_size=3, seed=5)
    for _ in range(4):
        original.next_batch()
    state = json.loads(json.dumps(original.state()))
    resumed = BatchIterator(blocks, batch_size=3, seed=5)
    resumed.load_state(state)
    skipped = BatchIterator(blocks, batch_size=3, seed=5, start=4)
    for _ in range(6):
        expected = original.next_batch()
        assert torch.equal(resumed.next_batch(), expected)
        assert torch.equal(skipped.next_batch(), expected)


def test_batch_iterator_with_fewer_blocks_than_batch_size():
    blocks = torch.arange(2 * 3).reshape(2, 3)
    batch = BatchIterator(blocks, batch_size=5, seed=0).next_batch()
    assert batch.shape == (5, 3)


# -- tokenizer --------------------------------------------------------------------------


def test_train_tokenizer_round_trips_any_text_and_saves(tmp_path, tokenizer):
    from transformers import AutoTokenizer

    text = "Document 7: the cat — naïve café ☃ sleeps\n\n  under\tthe 12 red houses."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert tokenizer.unk_token_id not in ids
    assert [tokenizer.convert_tokens_to_ids(t) for t in ("<pad>", "<unk>", "<bos>", "<eos>")] == [0, 1, 2, 3]
    assert len(tokenizer) == 300
    assert len(tokenizer("the cat sleeps")["input_ids"]) < len("the cat sleeps"), "BPE learned no merges"
    tokenizer.save_pretrained(tmp_path / "tok")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert reloaded(text, add_special_tokens=False)["input_ids"] == ids
    assert reloaded.eos_token == "<eos>" and reloaded.pad_token_id == 0


# -- teacher-generated text -------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_teacher(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config).eval()


def gen_config(**overrides) -> DataConfig:
    values = dict(source="generated", gen_prompts=["the cat", "a dog runs"], gen_samples=5, gen_max_new_tokens=6)
    values.update(overrides)
    return DataConfig(**values)


def test_generate_corpus_samples_round_robin_and_caches(tiny_teacher, tokenizer, monkeypatch):
    config = gen_config()
    texts = generate_corpus(tiny_teacher, tokenizer, config, seed=0, teacher_key="tiny")
    assert len(texts) == 5
    for i, text in enumerate(texts):
        assert text.startswith(config.gen_prompts[i % 2])
    assert any(len(t) > len(config.gen_prompts[i % 2]) for i, t in enumerate(texts)), "nothing was generated"
    assert len({texts[0], texts[2], texts[4]}) == 3, "samples of one prompt are not drawn independently"

    def no_generate(*args, **kwargs):
        raise AssertionError("generate was called although the samples are cached")

    monkeypatch.setattr(tiny_teacher, "generate", no_generate)
    assert generate_corpus(tiny_teacher, tokenizer, config, seed=0, teacher_key="tiny") == texts
    # load_blocks reads the same cache, even without the teacher.
    blocks = load_blocks(config, tokenizer, 4, seed=0, teacher_key="tiny")
    assert blocks.documents == 5 and blocks.examples == texts
    # Other settings or another teacher are not served from this cache.
    with pytest.raises(AssertionError):
        generate_corpus(tiny_teacher, tokenizer, gen_config(gen_temperature=0.7), seed=0, teacher_key="tiny")
    with pytest.raises(AssertionError):
        generate_corpus(tiny_teacher, tokenizer, config, seed=0, teacher_key="another")


def test_generate_corpus_is_seeded_and_leaves_the_global_rng_alone(tiny_teacher, tokenizer):
    config = gen_config(gen_samples=4)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = generate_corpus(tiny_teacher, tokenizer, config, seed=1)
    assert torch.equal(torch.rand(1), before)
    assert generate_corpus(tiny_teacher, tokenizer, config, seed=1) == a


def test_generate_corpus_applies_the_chat_template(tiny_teacher, tokenizer):
    import copy

    chat = copy.deepcopy(tokenizer)
    chat.chat_template = (
        "{% for m in messages %}<bos>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    seen = []
    original = tiny_teacher.generate

    def spy(inputs, **kwargs):
        seen.append(inputs[0].tolist())
        return original(inputs, **kwargs)

    tiny_teacher.generate = spy
    try:
        texts = generate_corpus(tiny_teacher, chat, gen_config(gen_samples=2), seed=0)
    finally:
        del tiny_teacher.generate
    assert texts[0].startswith("<bos>user: the cat\nassistant:")
    assert texts[1].startswith("<bos>user: a dog runs\nassistant:")
    assert seen[0][0] == chat.bos_token_id  # the template's marker reached the model as the special token


def test_generated_data_without_teacher_or_cache_is_a_config_error(tokenizer):
    with pytest.raises(ConfigError) as err:
        load_blocks(gen_config(), tokenizer, 8, seed=0, teacher_key="never-generated")
    assert err.value.field == "data.source" and err.value.hint


def test_generated_data_longer_than_the_teacher_positions_is_refused(tiny_teacher, tokenizer):
    with pytest.raises(ConfigError) as err:
        generate_corpus(tiny_teacher, tokenizer, gen_config(gen_max_new_tokens=500), seed=0)
    assert err.value.field == "data.gen_max_new_tokens" and "128 positions" in err.value.message


def test_toy_blocks_are_cached_and_the_cache_gives_the_same_blocks(monkeypatch):
    from workbench.engine.toy.language import get_language

    language = get_language()
    data = DataConfig(source="toy", toy_sentences=400, toy_seed=7)
    first = load_blocks(data, language.tokenizer(), 16, seed=0)

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled again instead of reading the cache")

    monkeypatch.setattr(type(language), "sample_sentences", no_sampling)
    again = load_blocks(data, language.tokenizer(), 16, seed=0)
    assert torch.equal(first.train, again.train) and torch.equal(first.val, again.val)
    assert (again.documents, again.tokens, again.examples) == (first.documents, first.tokens, first.examples)
    with pytest.raises(AssertionError, match="sampled again"):
        load_blocks(DataConfig(source="toy", toy_sentences=400, toy_seed=8), language.tokenizer(), 16, seed=0)


def test_two_writers_of_the_same_toy_cache_entry_both_succeed(monkeypatch):
    """Processes under torchrun (or two window threads) build the same blocks at once: each writes its
    own temporary file, so neither rename finds the other's file gone."""
    import threading

    from workbench.engine.toy.language import get_language

    language = get_language()
    data = DataConfig(source="toy", toy_sentences=400, toy_seed=11)
    both_saved = threading.Barrier(2)
    real_save = torch.save

    def save_then_wait(*args, **kwargs):
        real_save(*args, **kwargs)
        both_saved.wait(timeout=30)  # both temporary files written before either is renamed

    monkeypatch.setattr(torch, "save", save_then_wait)
    results, errors = [], []
    tokenizers = [language.tokenizer(), language.tokenizer()]

    def build():
        try:
            results.append(load_blocks(data, tokenizers.pop(), 16, seed=0))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(results) == 2 and torch.equal(results[0].train, results[1].train)


def test_a_jsonl_column_missing_from_the_first_rows_is_still_found(tmp_path, tokenizer):
    path = tmp_path / "mixed.jsonl"
    rows = ['{"title": "a header row"}'] + [f'{{"text": "the cat sat on the mat {i}"}}' for i in range(50)]
    path.write_text("\n".join(rows))
    from workbench.engine.data.sources import read_documents

    documents, _ = read_documents(DataConfig(source="file", path=str(path)))
    assert len(documents) == 50 and documents[0] == "the cat sat on the mat 0"
    with pytest.raises(ConfigError, match="no column 'body'") as err:
        read_documents(DataConfig(source="file", path=str(path), text_column="body"))
    assert "title" in err.value.message and "text" in err.value.message
