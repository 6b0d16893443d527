"""scripts/bench_peers.py runs and prints its JSON (a tiny toy shape, one step; no timings are checked).

TRL's variant runs only where TRL is installed (the bench extra); the core install has none, and then the
report says it was skipped."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_peers.py"
TINY = ["--shape", "toy", "--batch", "2", "--seq", "16", "--steps", "1", "--k", "8"]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_peers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_peers_json_at_a_tiny_shape(capsys):
    bench = _bench()
    assert bench.main([*TINY, "--rounds", "1", "--skip-memory", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    has_trl = bench.trl_gkd_trainer()[0] is not None
    expected = {v for v in bench.VARIANTS if has_trl or v != "trl_gkd"}
    assert set(report["variants"]) == expected
    assert ("trl_version" in report) == has_trl and ("trl_skipped" in report) != has_trl
    for name, row in report["variants"].items():
        assert row["s_per_step"]["median"] > 0 and row["tokens_per_s"] > 0
        if name != "floor":
            assert row["vs_floor"]["median"] > 0
    cache = report["variants"]["workbench_topk"]["cache"]
    assert cache["k"] == 8 and cache["build_s"] > 0 and cache["build_s_per_step_amortised"] > 0


def test_bench_peers_memory_worker_prints_the_peak_of_one_step(capsys):
    assert _bench().main([*TINY, "--worker", "workbench_fused"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["steady_rss_mib"] > 0 and row["peak_step_extra_mib"] >= 0
