"""Layer importance: each measure against a direct computation, and the layers it keeps."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from tests.helpers_models import tiny_model, tiny_tokenizer
from workbench.engine.importance import keep_by_importance, layer_importance, ranking


def _blocks(vocab: int, n: int = 3, length: int = 12, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(4, vocab, (n, length), generator=generator)


def _without_layer(model, index: int):
    """A copy of ``model`` with decoder layer ``index`` deleted, its config and KV slots renumbered."""
    copied = copy.deepcopy(model)
    layers = copied.model.layers
    del layers[index]
    copied.config.num_hidden_layers = len(layers)
    if isinstance(getattr(copied.config, "layer_types", None), list):
        del copied.config.layer_types[index]
    for new_index, layer in enumerate(layers):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    return copied.eval()


@pytest.fixture(scope="module")
def teacher():
    tokenizer = tiny_tokenizer()
    return tiny_model(tokenizer, layers=4, seed=3).eval()


def test_kl_measure_equals_the_kl_to_a_copy_with_that_layer_deleted(teacher):
    blocks = _blocks(teacher.config.vocab_size)
    result = layer_importance(teacher, blocks, batch_size=2)  # two batches: the sums pool across them
    with torch.no_grad():
        p = F.log_softmax(teacher(blocks).logits.float(), dim=-1)
        for index in range(4):
            q = F.log_softmax(_without_layer(teacher, index)(blocks).logits.float(), dim=-1)
            expected = (p.exp() * (p - q)).sum(-1).mean().item()
            assert result.kl[index] == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert all(k > 0 for k in result.kl)
    assert result.ranking == ranking(result.kl) and sorted(result.ranking) == [0, 1, 2, 3]
    assert result.blocks == 3 and result.positions == 3 * 12


def test_cosine_measure_equals_one_minus_cosine_of_consecutive_hidden_states(teacher):
    blocks = _blocks(teacher.config.vocab_size)
    result = layer_importance(teacher, blocks)
    with torch.no_grad():
        hidden = teacher(blocks, output_hidden_states=True).hidden_states
    # hidden_states[i] is layer i's input; the last entry has the final norm applied, so the last
    # layer's output is caught here with a hook instead
    outputs = []
    handle = teacher.model.layers[-1].register_forward_hook(lambda m, a, o: outputs.append(o))
    with torch.no_grad():
        teacher(blocks)
    handle.remove()
    ins = list(hidden[:4])
    outs = [*hidden[1:4], outputs[0]]
    for index in range(4):
        expected = (1 - F.cosine_similarity(ins[index], outs[index], dim=-1)).mean().item()
        assert result.cosine[index] == pytest.approx(expected, rel=1e-5)


def test_only_valid_positions_count(teacher):
    blocks = _blocks(teacher.config.vocab_size, n=2)
    mask = torch.ones_like(blocks)
    mask[1] = 0  # the second block is all padding: the result is the first block's alone
    masked = layer_importance(teacher, blocks, attention_mask=mask)
    alone = layer_importance(teacher, blocks[:1])
    assert masked.positions == 12
    assert masked.kl == pytest.approx(alone.kl, rel=1e-5)
    assert masked.cosine == pytest.approx(alone.cosine, rel=1e-5)


def test_keep_by_importance_keeps_the_highest_in_their_original_order():
    scores = [0.5, 0.1, 0.9, 0.3, 0.7]
    assert keep_by_importance(scores, 3) == [0, 2, 4]
    assert keep_by_importance(scores, 1) == [2]
    assert keep_by_importance([1.0, 1.0, 0.5], 1) == [0]  # a tie goes to the earlier layer
    assert ranking(scores) == [2, 4, 0, 3, 1]
    with pytest.raises(ValueError):
        keep_by_importance(scores, 6)


def test_gpt2_layers_are_measured_too():
    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer, family="gpt2", layers=3, seed=2)
    result = layer_importance(model, _blocks(model.config.vocab_size, n=1))
    assert len(result.kl) == len(result.cosine) == 3 and all(k > 0 for k in result.kl)
