"""Test-wide settings: Qt offscreen, small thread pools, an isolated WORKBENCH_HOME."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets its own WORKBENCH_HOME so caches never leak between tests or into ~/.cache."""
    if "WORKBENCH_SMOLLM2" not in os.environ:
        monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("wbhome")))


def pytest_collection_modifyitems(config, items):
    import torch

    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
