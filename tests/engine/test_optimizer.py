"""The optimizer a stage steps with."""

from __future__ import annotations

import torch

from workbench.engine.train.schedule import adamw


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Embedding(50, 16), torch.nn.Linear(16, 16), torch.nn.LayerNorm(16))


def _steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    for step in range(3):
        torch.manual_seed(100 + step)
        loss = model(torch.randint(0, 50, (4, 7))).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_cpu_steps_use_the_fused_kernel_and_agree_with_the_plain_one():
    fused_model, plain_model = _model(0), _model(0)
    fused = adamw(fused_model, 0.1, 1e-2, torch.device("cpu"))
    plain = torch.optim.AdamW(
        [
            {"params": [p for p in plain_model.parameters() if p.ndim >= 2], "weight_decay": 0.1},
            {"params": [p for p in plain_model.parameters() if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=1e-2,
        betas=(0.9, 0.95),
        foreach=False,
    )
    assert fused.defaults["fused"] is True
    _steps(fused_model, fused)
    _steps(plain_model, plain)
    for a, b in zip(fused_model.parameters(), plain_model.parameters()):
        # the fused kernel rounds differently from the for-loop one on some CPUs (one element in 800 off by 3e-5
        # relative seen on an AMD EPYC); without the weight decay it is up to 2e-2 off after these three steps
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # norms and biases are not decayed: a LayerNorm weight with zero gradient would stay exactly 1 under decay 0
    assert [g["weight_decay"] for g in fused.param_groups] == [0.1, 0.0]


def test_a_fused_optimizer_state_resumes_into_a_new_one():
    model = _model(1)
    first = adamw(model, 0.0, 1e-2, torch.device("cpu"))
    _steps(model, first)
    again = adamw(model, 0.0, 1e-2, torch.device("cpu"))
    again.load_state_dict(first.state_dict())
    assert all(int(s["step"]) == 3 for s in again.state.values())
