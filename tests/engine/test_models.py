"""Models: building, loading (local folder, hub cache, offline hub), deriving students,
tokenizer checks, parameter counts, memory estimates and the architecture view."""

from __future__ import annotations

import warnings

import pytest
import torch

from tests.helpers_models import (
    next_token_logits,
    save_tiny_model,
    tiny_arch,
    tiny_model,
    tiny_tokenizer,
    tiny_vocab,
)
from workbench import paths
from workbench.config.checks import derived_layers
from workbench.config.schema import ArchConfig, StudentConfig, TeacherConfig
from workbench.engine.device import describe_device
from workbench.engine.models import load as models_load
from workbench.engine.models.build import (
    build_model,
    derive_student,
    hf_config_from_arch,
    make_student,
)
from workbench.engine.models.errors import (
    ModelSourceError,
    RemoteCodeWarning,
    TokenizerMismatchError,
)
from workbench.engine.models.load import load_pretrained, load_teacher
from workbench.engine.models.sizes import (
    architecture_blocks,
    count_parameters,
    count_parameters_for_config,
    estimate_training_memory,
    max_positions,
)
from workbench.engine.models.tokenizers import check_tokenizers
from workbench.errors import ConfigError
from workbench.paths import RESOURCES

VOCAB = tiny_vocab()
IDS = [VOCAB[w] for w in "<s> the cat is sitting on the mat .".split()]


def test_build_model_is_seeded_fp32_and_follows_the_arch():
    tok = tiny_tokenizer()
    a, b, c = tiny_model(tok, seed=1), tiny_model(tok, seed=1), tiny_model(tok, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)
    assert a.dtype == torch.float32 and a.training
    assert a.config.num_key_value_heads == 4  # kv_heads 0 means as many as heads
    assert a.config.intermediate_size % 8 == 0 and abs(a.config.intermediate_size - 32 * 8 / 3) < 8
    assert a.lm_head.weight is a.model.embed_tokens.weight  # tie_embeddings defaults to True
    gpt2 = tiny_model(tok, family="gpt2", layers=3)
    assert gpt2.config.model_type == "gpt2" and gpt2.config.n_layer == 3 and gpt2.config.n_positions == 64


def test_build_model_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_model(tiny_tokenizer(), seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_local_folder_loads_the_same_model_and_tokenizer(tmp_path):
    model, tok = save_tiny_model(tmp_path / "m")
    loaded, loaded_tok = load_pretrained("local", str(tmp_path / "m"))
    assert loaded_tok.get_vocab() == tok.get_vocab()
    assert torch.allclose(next_token_logits(loaded, IDS), next_token_logits(model, IDS), atol=1e-6)
    teacher, _ = load_teacher(TeacherConfig(source="local", path=str(tmp_path / "m")))
    assert count_parameters(teacher) == count_parameters(model)


def test_local_folder_problems_are_clear_errors(tmp_path):
    with pytest.raises(ModelSourceError, match="does not exist") as err:
        load_pretrained("local", str(tmp_path / "nowhere"))
    assert err.value.field == "teacher.path"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSourceError, match="has no config.json"):
        load_pretrained("local", str(tmp_path / "empty"))
    (tmp_path / "x.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelSourceError, match="is a file") as err:
        load_pretrained("local", str(tmp_path / "x.gguf"))
    assert "gguf source" in err.value.hint
    model, _ = save_tiny_model(tmp_path / "no_tok")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "no_tok" / name).unlink()
    with pytest.raises(ModelSourceError, match="has no tokenizer files"):
        load_pretrained("local", str(tmp_path / "no_tok"))
    (tmp_path / "no_tok" / "config.json").write_text("garbage{")
    with pytest.raises(ModelSourceError, match=r"the config.json of .* is not valid JSON"):
        load_pretrained("local", str(tmp_path / "no_tok"))


def test_trust_remote_code_warns(tmp_path):
    save_tiny_model(tmp_path / "m")
    with pytest.warns(RemoteCodeWarning, match="trust"):
        load_pretrained("local", str(tmp_path / "m"), trust_remote_code=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RemoteCodeWarning)
        load_pretrained("local", str(tmp_path / "m"))


def test_hub_id_offline_and_not_cached_is_one_clear_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelSourceError) as err:
        load_teacher(TeacherConfig(source="hub", path="HuggingFaceTB/SmolLM2-135M"))
    assert err.value.field == "teacher.path"
    assert "'HuggingFaceTB/SmolLM2-135M' is not in the local Hugging Face cache and the hub cannot be reached" in str(
        err.value
    )
    assert "local folder" in err.value.hint


def test_hub_unreachable_while_online_fails_without_retries(tmp_path, monkeypatch):
    """Not offline by setting, but the network is down: one probe, then the same clear error."""
    import huggingface_hub

    calls = []

    def unreachable(self, repo_id, **kwargs):
        calls.append((repo_id, kwargs.get("timeout")))
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(models_load, "_offline", lambda: False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    with pytest.raises(ModelSourceError, match="hub cannot be reached"):
        load_pretrained("hub", "someone/some-model")
    assert calls == [("someone/some-model", 5)]


def test_hub_id_in_the_local_cache_loads_offline(tmp_path, monkeypatch):
    """A model downloaded earlier (hub cache layout) loads with the hub unreachable."""
    model, tok = save_tiny_model(tmp_path / "m")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots").mkdir()
    (tmp_path / "m").rename(repo / "snapshots" / commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loaded, loaded_tok = load_pretrained("hub", "someone/tiny")
    assert loaded_tok.get_vocab() == tok.get_vocab()
    assert torch.allclose(next_token_logits(loaded, IDS), next_token_logits(model, IDS), atol=1e-6)


def test_derived_layers_are_evenly_spaced_with_both_ends_and_refuse_a_student_that_is_not_smaller():
    def kept(n, keep=2, layer_ids=()):
        return derived_layers(StudentConfig(source="derived", keep_layers=keep, layer_ids=list(layer_ids)), n)

    ids = kept(30, 10)
    assert ids[0] == 0 and ids[-1] == 29 and len(set(ids)) == 10 and ids == sorted(ids)
    gaps = [b - a for a, b in zip(ids, ids[1:])]
    assert max(gaps) - min(gaps) <= 1
    assert kept(4, 2) == [0, 3]
    assert kept(5, 1) == [0]
    assert kept(6, layer_ids=[4, 1]) == [4, 1]  # an explicit list is kept as given
    for keep, layer_ids, field in (
        (3, (), "student.keep_layers"),
        (4, (), "student.keep_layers"),
        (2, (0, 3), "student.layer_ids"),
        (2, (1, 1), "student.layer_ids"),
        (2, (0, 1, 2), "student.layer_ids"),
    ):
        with pytest.raises(ConfigError) as err:
            kept(3, keep, layer_ids)
        assert err.value.field == field


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_derived_student_copies_the_kept_layers_and_shares_nothing(family):
    tok = tiny_tokenizer()
    teacher = tiny_model(tok, family=family, layers=4, seed=3)
    teacher.eval()
    student = derive_student(teacher, [0, 3])
    assert student.config.num_hidden_layers == 2 and teacher.config.num_hidden_layers == 4
    layers_of = (lambda m: m.model.layers) if family == "llama" else (lambda m: m.transformer.h)
    for new, old in ((0, 0), (1, 3)):
        for (name, p_s), (_, p_t) in zip(
            layers_of(student)[new].named_parameters(), layers_of(teacher)[old].named_parameters()
        ):
            assert torch.equal(p_s, p_t), name
    assert torch.equal(student.get_input_embeddings().weight, teacher.get_input_embeddings().weight)
    shared = {p.data_ptr() for p in teacher.parameters()} & {p.data_ptr() for p in student.parameters()}
    assert not shared
    with torch.no_grad():
        student.get_input_embeddings().weight.add_(1.0)
    assert not torch.equal(student.get_input_embeddings().weight, teacher.get_input_embeddings().weight)
    assert student.training and all(p.requires_grad for p in student.parameters())
    assert count_parameters(student) < count_parameters(teacher)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_derived_student_generates_the_same_with_and_without_kv_cache(family):
    """A wrong attention layer_idx breaks the KV cache: cached and uncached decoding differ or crash."""
    tok = tiny_tokenizer()
    teacher = tiny_model(tok, family=family, layers=4, seed=4)
    student = derive_student(teacher, [1, 3]).eval()
    prompt = torch.tensor([IDS[:4]])
    kwargs = dict(max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    cached = student.generate(prompt, use_cache=True, **kwargs)
    uncached = student.generate(prompt, use_cache=False, **kwargs)
    assert cached.shape == (1, 10)
    assert torch.equal(cached, uncached)


def test_one_layer_student_equals_running_that_teacher_layer():
    tok = tiny_tokenizer()
    teacher = tiny_model(tok, layers=3, seed=6).eval()
    student = derive_student(teacher, [2]).eval()
    ids = torch.tensor([IDS])
    with torch.no_grad():
        base = teacher.model
        hidden = base.embed_tokens(ids)
        positions = torch.arange(ids.shape[1])[None]
        hidden = base.layers[2](hidden, position_ids=positions, position_embeddings=base.rotary_emb(hidden, positions))
        expected = teacher.lm_head(base.norm(hidden))
        assert torch.allclose(student(ids).logits, expected, atol=1e-5)
        full = teacher(ids).logits
    assert not torch.allclose(student(ids).logits, full, atol=1e-3)  # it really dropped layers 0 and 1


def test_derive_refuses_layers_the_teacher_does_not_have():
    teacher = tiny_model(tiny_tokenizer(), layers=3)
    for bad in ([], [0, 3], [1, 1]):
        with pytest.raises(ConfigError) as err:
            derive_student(teacher, bad)
        assert err.value.field == "student.layer_ids"


def test_make_student_derived_and_custom():
    tok = tiny_tokenizer()
    teacher = tiny_model(tok, layers=4)
    derived = make_student(StudentConfig(source="derived", keep_layers=2), teacher, tok)
    assert derived.config.num_hidden_layers == 2
    picked = make_student(StudentConfig(source="derived", layer_ids=[1, 2, 3]), teacher, tok)
    assert torch.equal(picked.model.layers[0].mlp.up_proj.weight, teacher.model.layers[1].mlp.up_proj.weight)
    with pytest.raises(ConfigError) as err:
        make_student(StudentConfig(source="derived", keep_layers=4), teacher, tok)
    assert err.value.field == "student.keep_layers"

    arch = ArchConfig(family="gpt2", layers=1, hidden=16, heads=2)  # family follows the teacher
    custom = make_student(StudentConfig(source="custom", arch=arch), teacher, tok, seed=1)
    assert custom.config.model_type == "llama" and custom.config.hidden_size == 16
    assert custom.config.vocab_size == teacher.config.vocab_size
    assert count_parameters(custom) < count_parameters(teacher)


def test_tokenizer_check_passes_identical_maps_and_refuses_a_permuted_one():
    teacher_tok = tiny_tokenizer()
    check_tokenizers(teacher_tok, tiny_tokenizer())
    permuted = dict(zip(tiny_vocab(), reversed(list(tiny_vocab().values()))))
    student_tok = tiny_tokenizer(permuted)
    assert len(student_tok) == len(teacher_tok)  # same size, different map
    with pytest.raises(TokenizerMismatchError) as err:
        check_tokenizers(teacher_tok, student_tok)
    n = len(permuted)
    differing = sum(1 for t in permuted if permuted[t] != tiny_vocab()[t])
    assert f"differs from the teacher's in {differing} of {n} tokens" in str(err.value)
    assert f"token '<pad>' is id 0 in the teacher and id {n - 1} in the student" in str(err.value)
    assert "same tokenizer" in err.value.hint and isinstance(err.value, ConfigError)


def test_pretrained_student_with_another_tokenizer_is_refused(tmp_path):
    tok = tiny_tokenizer()
    teacher = tiny_model(tok, layers=2)
    other = dict(tiny_vocab())
    other["the"], other["cat"] = other["cat"], other["the"]
    save_tiny_model(tmp_path / "other", layers=1, vocab=other)
    expected = f"token 'the' is id {VOCAB['the']} in the teacher and id {VOCAB['cat']} in the student"
    with pytest.raises(TokenizerMismatchError, match=expected):
        make_student(StudentConfig(source="local", path=str(tmp_path / "other")), teacher, tok)
    save_tiny_model(tmp_path / "same", layers=1)
    student = make_student(StudentConfig(source="local", path=str(tmp_path / "same")), teacher, tok)
    assert student.config.num_hidden_layers == 1 and student.training


@pytest.mark.parametrize("family,tie", [("llama", True), ("llama", False), ("gpt2", True)])
def test_parameter_counts_on_meta_match_real_models_and_tied_weights_count_once(family, tie):
    arch = tiny_arch(family, layers=2, tie_embeddings=tie)
    model = build_model(arch, 40)
    config = hf_config_from_arch(arch, 40, pad_token_id=0, bos_token_id=None, eos_token_id=None)
    assert count_parameters_for_config(config) == count_parameters(model)
    unique = {id(p): p.numel() for _, p in model.named_parameters(remove_duplicate=False)}
    assert count_parameters(model) == sum(unique.values())
    blocks = architecture_blocks(config)
    assert sum(b["params"] for b in blocks) == count_parameters(model)
    assert [b["name"] for b in blocks] == ["embeddings", "layer 0", "layer 1", "final norm", "head"]
    head = blocks[-1]
    assert head["tied"] is tie and (head["params"] == 0) is tie
    assert all(b["attention"] > 0 and b["mlp"] > 0 and b["norms"] > 0 for b in blocks[1:3])
    assert architecture_blocks(model) == blocks


def test_tied_embeddings_make_a_model_smaller_by_one_matrix():
    tied = build_model(tiny_arch(tie_embeddings=True), 40)
    untied = build_model(tiny_arch(tie_embeddings=False), 40)
    assert count_parameters(untied) - count_parameters(tied) == 40 * 32


def test_trainable_only_count():
    model = build_model(tiny_arch(), 40)
    model.model.embed_tokens.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == count_parameters(model) - 40 * 32


def test_memory_estimate_grows_with_batch_and_sequence_and_adds_up():
    config = hf_config_from_arch(tiny_arch(), 49152, pad_token_id=0, bos_token_id=None, eos_token_id=None)
    student = count_parameters_for_config(config)

    def estimate(batch=4, seq=128, precision="bf16"):
        return estimate_training_memory(
            135_000_000,
            student,
            student_hf_config=config,
            batch_size=batch,
            seq_len=seq,
            vocab_size=49152,
            precision=precision,
        )

    base = estimate()
    assert base["total"] == sum(v for k, v in base.items() if k != "total")
    for bigger in (estimate(batch=8), estimate(seq=256)):
        assert bigger["activations"] > base["activations"] and bigger["logits"] > base["logits"]
        assert bigger["total"] > base["total"]
    fp32 = estimate(precision="fp32")
    assert fp32["teacher_weights"] == 2 * base["teacher_weights"] == 4 * 135_000_000
    assert base["optimizer"] == 2 * base["gradients"] == 8 * student
    assert base["logits"] >= 3 * 4 * 128 * 49152 * 2


def test_max_positions_and_paths():
    tok = tiny_tokenizer()
    assert max_positions(tiny_model(tok)) == 64
    assert max_positions(tiny_model(tok, family="gpt2").config) == 64
    assert paths.resolve_path("models:x.gguf") == paths.models_dir() / "x.gguf"
    assert paths.resolve_path("resources:data/a.txt") == RESOURCES / "data" / "a.txt"
    assert paths.resolve_path("~/a").is_absolute()


def test_describe_device():
    device, label = describe_device("cpu")
    assert device.type == "cpu" and "CPU" in label
    device, _ = describe_device("auto")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert device.type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU") as err:
            describe_device("cuda")
        assert err.value.field == "train.device"


def test_models_built_and_loaded_from_several_threads_at_once_stay_whole(tmp_path):
    """The window plans (meta-device models) and loads a run's models while a run builds its own."""
    import threading

    folder = tmp_path / "tiny"
    save_tiny_model(folder)
    errors, loaded = [], []

    def load():
        try:
            for _ in range(3):
                model, _ = load_pretrained("local", str(folder))
                assert all(p.device.type == "cpu" for p in model.parameters())
                loaded.append(model)
        except Exception as err:  # noqa: BLE001 - collected for the assertion below
            errors.append(err)

    def plan():
        try:
            config = hf_config_from_arch(tiny_arch(), 64, pad_token_id=0, bos_token_id=None, eos_token_id=None)
            for _ in range(20):
                count_parameters_for_config(config)
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=load), threading.Thread(target=load), threading.Thread(target=plan)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(loaded) == 6


def test_memory_estimate_follows_the_fused_loss_and_the_teacher_cache():
    """At a Qwen-sized vocabulary the logits dominate; the fused loss and the top-k cache remove most of them."""
    vocab = 151936
    config = hf_config_from_arch(tiny_arch(), vocab, pad_token_id=0, bos_token_id=None, eos_token_id=None)
    student = count_parameters_for_config(config)

    def estimate(**kw):
        return estimate_training_memory(
            500_000_000,
            student,
            student_hf_config=config,
            batch_size=8,
            seq_len=256,
            vocab_size=vocab,
            precision="bf16",
            **kw,
        )

    full = estimate()
    assert estimate(fused_loss=False, teacher_cache="full") == full  # the defaults are today's estimate
    fused, cached = estimate(fused_loss=True), estimate(teacher_cache="topk", cache_k=64)
    tokens = 8 * 256
    assert full["logits"] >= 3 * tokens * vocab * 2
    assert fused["logits"] < 0.1 * full["logits"]  # no [tokens, vocab] tensor at all
    assert cached["logits"] < 0.7 * full["logits"]  # no teacher logits: the student's and their gradient remain
    for other in ("teacher_weights", "student_weights", "gradients", "optimizer", "activations"):
        assert fused[other] == cached[other] == full[other], other
    assert fused["total"] == full["total"] - full["logits"] + fused["logits"]


def test_memory_estimate_counts_the_larger_loss_chunks_of_a_gpu():
    """On a GPU the losses take chunks of up to 2**26 logits (2**22 on the CPU): the estimate's workspace follows."""
    vocab = 151936
    config = hf_config_from_arch(tiny_arch(), vocab, pad_token_id=0, bos_token_id=None, eos_token_id=None)
    kw = dict(student_hf_config=config, batch_size=8, seq_len=1024, vocab_size=vocab, precision="bf16")
    cpu = estimate_training_memory(1, 1, **kw)
    gpu = estimate_training_memory(1, 1, device_type="cuda", **kw)
    assert gpu["logits"] - cpu["logits"] == 6 * (441 - 27) * vocab * 4  # 2**26 // vocab = 441, 2**22 // vocab = 27


@pytest.mark.parametrize(
    "capability, expected", [((7, 0), "fp32"), ((7, 5), "fp32"), ((8, 0), "bf16"), ((9, 0), "bf16")]
)
def test_auto_precision_takes_bf16_only_where_the_gpu_has_it_in_hardware(monkeypatch, capability, expected):
    """A V100 or T4 reports bf16 as supported (emulated, slower than fp32): ``auto`` keeps fp32 there."""
    from types import SimpleNamespace

    from workbench.engine.device import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(name="GPU", total_memory=2**34))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert pick_device("cuda", "auto").precision == expected
    assert pick_device("cuda", "bf16").precision == "bf16"  # asked for, it is given


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_generation_stops_at_the_models_positions_and_a_prompt_that_fills_them_is_refused(family):
    """GPT-2 would index past its position table; Llama would run past what it was trained for."""
    from tests.helpers_models import tiny_model, tiny_tokenizer
    from workbench.engine.evaluate import generate_pair
    from workbench.errors import ConfigError

    tokenizer = tiny_tokenizer()
    teacher, student = tiny_model(tokenizer, family, seed=0), tiny_model(tokenizer, family, layers=1, seed=1)
    word = next(w for w in tokenizer.get_vocab() if not w.startswith("<"))
    common = dict(teacher=teacher, student=student, tokenizer=tokenizer, device=torch.device("cpu"), temperature=0.0)
    texts = generate_pair(" ".join([word] * 60), max_new_tokens=30, **common)  # 64 positions: room for 4 more
    assert all(len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 4 for text in texts), texts
    with pytest.raises(ConfigError, match="leaves no room in the 64 positions"):
        generate_pair(" ".join([word] * 64), max_new_tokens=5, **common)
