"""The student back out as GGUF: loaded again with transformers (gguf_file=), it predicts what it did."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.helpers_models import next_token_logits, save_tiny_model, write_tiny_gguf
from workbench.engine.models.gguf_export import export_gguf
from workbench.engine.models.load import load_pretrained
from workbench.errors import ConfigError

TEXT = "the cat sat on the mat. the cat sat."


@pytest.fixture(scope="module")
def bpe_student(tmp_path_factory):
    """A tiny Llama with a byte-level BPE tokenizer, saved as a student folder (save_pretrained)."""
    root = tmp_path_factory.mktemp("gguf-export")
    write_tiny_gguf(root / "teacher.gguf", layers=2, hidden=64, heads=4)
    model, tokenizer = load_pretrained("gguf", str(root / "teacher.gguf"))
    folder = root / "student"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model, tokenizer


def _load(path):
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    return model.eval(), AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def test_f16_round_trip_gives_the_same_next_token_logits(bpe_student, tmp_path):
    folder, model, tokenizer = bpe_student
    path = export_gguf(folder, tmp_path / "student.gguf", type_="f16")
    loaded, loaded_tok = _load(path)
    ids = tokenizer(TEXT)["input_ids"]
    assert loaded_tok(TEXT)["input_ids"] == ids  # the tokenizer travelled too
    assert torch.allclose(next_token_logits(loaded, ids), next_token_logits(model.eval(), ids), atol=2e-2)
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically: no temporary left


def test_q8_0_keeps_the_top_token_on_held_out_text(bpe_student, tmp_path):
    folder, model, tokenizer = bpe_student
    path = export_gguf(folder, tmp_path / "student-q8_0.gguf", type_="q8_0")
    assert path.stat().st_size < export_gguf(folder, tmp_path / "f16.gguf", type_="f16").stat().st_size
    loaded, _ = _load(path)
    ids = tokenizer(TEXT)["input_ids"]
    top_q8 = next_token_logits(loaded, ids).argmax(-1)
    top_full = next_token_logits(model.eval(), ids).argmax(-1)
    assert (top_q8 == top_full).float().mean().item() >= 0.9


def test_a_word_level_tokenizer_or_another_family_is_refused_in_one_sentence(tmp_path):
    save_tiny_model(
        tmp_path / "word", family="llama"
    )  # the tests' tiny tokenizer is word-level, like the built-in language's
    with pytest.raises(ConfigError, match="word-level tokenizer"):
        export_gguf(tmp_path / "word", tmp_path / "x.gguf")
    save_tiny_model(tmp_path / "gpt2", family="gpt2")
    with pytest.raises(ConfigError, match="Llama family"):
        export_gguf(tmp_path / "gpt2", tmp_path / "y.gguf")
    with pytest.raises(ConfigError, match="could not be read"):
        export_gguf(tmp_path / "missing", tmp_path / "z.gguf")
    assert not list(tmp_path.glob("*.gguf"))


@pytest.mark.slow
def test_a_student_derived_from_smollm2_round_trips_through_gguf(tmp_path):
    import os
    from pathlib import Path

    from workbench import paths
    from workbench.config.checks import evenly_spaced
    from workbench.engine.models.build import derive_student
    from workbench.engine.models.fetch import SMOLLM2_FILE

    gguf_file = Path(os.environ.get("WORKBENCH_SMOLLM2") or paths.home() / "models" / SMOLLM2_FILE)
    if not gguf_file.is_file():
        pytest.skip("SmolLM2 GGUF not fetched (python scripts/fetch_smollm2.py)")
    teacher, tokenizer = load_pretrained("gguf", str(gguf_file))
    student = derive_student(teacher, evenly_spaced(30, 4)).eval()
    student.save_pretrained(tmp_path / "student")
    tokenizer.save_pretrained(tmp_path / "student")
    path = export_gguf(tmp_path / "student", tmp_path / "student-f16.gguf", type_="f16")
    loaded, loaded_tok = _load(path)
    ids = tokenizer("The cat is sitting on the")["input_ids"]
    assert loaded_tok("The cat is sitting on the")["input_ids"] == ids
    ours, theirs = next_token_logits(student, ids), next_token_logits(loaded, ids)
    assert (ours.argmax(-1) == theirs.argmax(-1)).all()
    assert torch.allclose(ours, theirs, atol=0.15, rtol=0.02)  # float16 weights
