"""scripts/bench_quality.py's judge of a model's own samples (workbench.engine.student_text.judge_written, tested in
tests/engine/test_student_text.py) on text drawn from the language itself: a gap of about 0."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_quality.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_quality"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_text_drawn_from_the_language_has_a_gap_near_zero():
    from workbench.engine.toy.language import get_language

    bench = _bench()
    language = get_language()
    tokenizer = language.tokenizer()
    prompts = bench.sample_prompts(language, tokenizer, 400, 16)
    found = bench.judge_language(language, tokenizer, prompts, 48, len(tokenizer))
    assert found["grammatical_rate"] == 1.0 and found["impossible_token_rate"] == 0.0
    assert abs(found["sample_nll_gap"]) < 0.05
