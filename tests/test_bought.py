"""What distillation bought, on the ground floor: the card's numbers are the summaries', the sentence's figures
are computed from them, and what was not measured is "–" and left out of the sentence."""

from __future__ import annotations

import json
import math
from pathlib import Path

from workbench.bought import build_card, card_for, find_baseline, format_value, headlines, is_baseline_of
from workbench.config.schema import RunConfig
from workbench.run_folder import read_run, write_status

RUN = {
    "status": "completed",
    "steps": 100,
    "teacher_params": 1_350_000,
    "student_params": 100_000,
    "teacher_latency_ms": 6.0,
    "student_latency_ms": 1.0,
    "teacher_disk_bytes": 5_400_000,
    "student_disk_bytes": 400_000,
    "teacher_ce": 2.1,
    "student_ce": 2.4,
    "teacher_ppl": math.exp(2.1),
    "student_ppl": math.exp(2.4),
    "kl_teacher_student": 0.2,
    "kl_true_teacher": 0.1,
    "kl_true_student": 0.26,
    "top1_agreement": 0.873,
}
BASELINE = {
    **RUN,
    "student_latency_ms": 1.2,
    "student_ce": 2.6,
    "student_ppl": math.exp(2.6),
    "kl_teacher_student": 0.45,
    "kl_true_student": 0.5,
    "top1_agreement": 0.801,
}


def make_run(runs_dir: Path, folder: str, summary: dict | None, *, alpha: float = 0.5, **fields) -> Path:
    path = runs_dir / folder
    path.mkdir(parents=True)
    cfg = RunConfig(runs_dir=str(runs_dir))
    cfg.name = folder.split("-", 2)[-1]
    cfg.distill.alpha = alpha
    for dotted, value in fields.items():
        section, name = dotted.split("__")
        setattr(getattr(cfg, section), name, value)
    cfg.save(path / "config.toml")
    write_status(path, "completed" if summary else "running")
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    return path


def pair(tmp_path: Path) -> tuple[Path, Path]:
    run = make_run(tmp_path, "20260101-100000-kd", RUN)
    base = make_run(tmp_path, "20260101-110000-kd-baseline", BASELINE, alpha=0.0)
    return run, base


def test_the_cards_numbers_are_the_summaries(tmp_path):
    run, base = pair(tmp_path)
    card = card_for(run)  # the baseline is found beside the run
    assert card.baseline_path == str(base)
    assert card.columns == ("teacher", "distilled", "baseline")
    v = card.values
    assert v["params"] == {"teacher": 1_350_000, "distilled": 100_000, "baseline": 100_000}
    assert v["latency_ms"] == {"teacher": 6.0, "distilled": 1.0, "baseline": 1.2}
    assert v["speedup"]["distilled"] == 6.0 and v["speedup"]["baseline"] == 5.0
    assert v["ce"] == {"teacher": 2.1, "distilled": 2.4, "baseline": 2.6}
    assert v["ppl"]["baseline"] == math.exp(2.6)
    assert v["kl_teacher"] == {"teacher": None, "distilled": 0.2, "baseline": 0.45}
    assert v["kl_true"] == {"teacher": 0.1, "distilled": 0.26, "baseline": 0.5}
    assert v["top1"] == {"teacher": None, "distilled": 0.873, "baseline": 0.801}
    assert v["disk_bytes"]["teacher"] == 5_400_000  # no saved folders: the weights' bytes from the summary
    data = card.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["rows"]["kl_true"]["baseline"] == 0.5 and data["rows"]["top1"]["teacher"] is None
    text = card.text()
    for shown in ("1.4M", "100K", "2.400", "2.600", "0.450", "87.3%", "80.1%", "6.0x", "5.0x", "5.1 MiB"):
        assert shown in text, shown
    assert card.better("kl_true") == "distilled" and card.better("top1") == "distilled"
    assert card.better("latency_ms") is None  # same architecture: a latency difference is noise


def test_the_sentence_figures_are_computed_from_the_numbers(tmp_path):
    run, base = pair(tmp_path)
    card = card_for(run, base)
    assert card.sentence == (
        "The distilled student is 13.5x smaller and 6.0x faster than the teacher, and 48% closer to the true "
        "distribution than the same student trained on hard labels. It picks the teacher's most likely next word "
        "87% of the time (hard labels: 80%)."
    )
    assert headlines(card) == [
        ("13.5x", "smaller than the teacher"),
        ("6.0x", "faster per next token"),
        ("48%", "closer to the truth than hard labels"),
    ]


def test_a_distilled_student_worse_than_its_baseline_is_said_so(tmp_path):
    run = make_run(tmp_path, "20260101-100000-kd", {**RUN, "kl_true_student": 0.6})
    base = make_run(tmp_path, "20260101-110000-kd-baseline", BASELINE, alpha=0.0)
    card = card_for(run, base)
    assert "20% further from the true distribution than the same student trained on hard labels" in card.sentence
    assert card.better("kl_true") == "baseline"
    assert all("truth" not in meaning for _, meaning in headlines(card))


def test_missing_values_are_dashes_and_left_out_of_the_sentence(tmp_path):
    # a real (not built-in) language: no truth; latency not measured; a null written for a non-finite number
    thin = {k: v for k, v in RUN.items() if not k.startswith(("kl_true", "teacher_latency", "student_latency"))}
    thin["top1_agreement"] = None
    run = make_run(tmp_path, "20260101-100000-kd", thin)
    base = make_run(tmp_path, "20260101-110000-kd-baseline", {**thin, "student_ce": 2.5}, alpha=0.0)
    card = card_for(run, base)
    assert card.values["kl_true"] == {"teacher": None, "distilled": None, "baseline": None}
    assert card.values["top1"]["distilled"] is None  # null (read back as NaN) is not a number
    assert card.cell("kl_true", "distilled") == "–" and card.cell("latency_ms", "teacher") == "–"
    assert card.cell("speedup", "distilled") == "–"
    assert card.sentence == (
        "The distilled student is 13.5x smaller than the teacher, and 0.100 nats lower in held-out cross-entropy "
        "than the same student trained on hard labels."
    )
    for word in ("nan", "None", "faster", "truth", "next word"):
        assert word not in card.sentence and word not in card.text().replace("KL to the truth", "")
    assert json.loads(json.dumps(card.to_dict(), allow_nan=False))["rows"]["latency_ms"]["teacher"] is None
    assert format_value(float("nan"), "nats") == "–"


def test_without_a_baseline_two_columns_and_no_comparison(tmp_path):
    run = make_run(tmp_path, "20260101-100000-kd", RUN)
    card = card_for(run)
    assert card.baseline_path is None and card.columns == ("teacher", "distilled")
    assert "hard labels" not in card.sentence and "6.0x faster" in card.sentence
    assert "Hard-label" not in card.text()


def test_disk_size_is_the_saved_folders_weights(tmp_path):
    run, base = pair(tmp_path)
    (run / "student").mkdir()
    (run / "student" / "model.safetensors").write_bytes(b"x" * 3000)
    (run / "student" / "tokenizer.json").write_bytes(b"x" * 500)  # not weights
    card = card_for(run, base)
    assert card.values["disk_bytes"]["distilled"] == 3000
    assert card.values["disk_bytes"]["baseline"] == 400_000  # its folder has no student: the summary's bytes
    assert card.cell("disk_bytes", "distilled") == "2.9 KiB"


def test_only_the_same_config_with_alpha_zero_is_a_baseline(tmp_path):
    run = make_run(tmp_path, "20260101-100000-kd", RUN)
    other = make_run(tmp_path, "20260101-120000-kd-t4", BASELINE, alpha=0.0, distill__temperature=4.0)
    unfinished = make_run(tmp_path, "20260101-130000-kd-baseline", None, alpha=0.0)
    distilled_twin = make_run(tmp_path, "20260101-140000-kd-again", BASELINE)
    info = read_run(run)
    assert not is_baseline_of(read_run(other), info)
    assert not is_baseline_of(read_run(distilled_twin), info)
    assert is_baseline_of(read_run(unfinished), info)  # the same config, but find_baseline wants it finished
    assert find_baseline(info) is None
    base = make_run(tmp_path, "20260101-110000-kd-baseline", BASELINE, alpha=0.0)
    assert find_baseline(info).path == base
    # the Baseline button's config: the run's own saved teacher, loaded locally
    for teacher in (run / "teacher", tmp_path / "elsewhere"):
        teacher.mkdir()
        (teacher / "config.json").write_text("{}")
    reused = make_run(
        tmp_path,
        "20260101-150000-kd-baseline",
        BASELINE,
        alpha=0.0,
        teacher__source="local",
        teacher__path=str(run / "teacher"),
    )
    assert read_run(reused).config is not None
    assert find_baseline(info).path == reused  # the newest
    foreign = make_run(
        tmp_path,
        "20260101-160000-kd-baseline",
        BASELINE,
        alpha=0.0,
        teacher__source="local",
        teacher__path=str(tmp_path / "elsewhere"),
    )
    assert not is_baseline_of(read_run(foreign), info)
    assert build_card(info, read_run(base)).baseline_name == base.name
