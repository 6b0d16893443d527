"""Test-wide settings: Qt offscreen, small thread pools, an isolated WORKBENCH_HOME and QSettings folder."""

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The window's QSettings (geometry, dock widths, the last config) go to a folder of this test session, never
# to the user's ~/.config, whatever a test starts (subprocesses inherit it); GUI tests get their own per test.
os.environ.setdefault("WORKBENCH_SETTINGS_DIR", tempfile.mkdtemp(prefix="workbench-test-settings-"))
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
