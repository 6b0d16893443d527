"""Documents from Hugging Face datasets: a hub dataset by name, configuration and split (from the local cache
when the hub cannot be reached), or a folder written by ``save_to_disk``; read in batches of rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workbench.config.schema import DataConfig
from workbench.engine.data.reading import ROWS_PER_READ, Position, check_column, feature_kind, kind_of, not_text
from workbench.errors import ConfigError, one_line
from workbench.paths import resolve_path


def load_hub(data: DataConfig) -> Any:
    import datasets

    name = data.path.strip()
    offline = not _hub_reachable(name)
    saved = datasets.config.HF_HUB_OFFLINE
    try:
        # Unreachable hub: read the local cache only, instead of retrying for half a minute.
        datasets.config.HF_HUB_OFFLINE = saved or offline
        return datasets.load_dataset(name, data.hf_config or None, split=data.split)
    except ConnectionError:
        raise ConfigError(
            "data.path",
            f"hub dataset {name!r} could not be reached and is not in the local cache",
            "connect to the internet, or save it with save_to_disk on a machine that is online and use the source 'disk'",
        ) from None
    except FileNotFoundError as err:  # DatasetNotFoundError and missing data files
        raise ConfigError(
            "data.path",
            f"hub dataset {name!r} was not found ({one_line(err, 160)})",
            "check the name; gated datasets need `hf auth login`",
        ) from None
    except ValueError as err:
        text = str(err)
        if "split" in text.lower():
            raise ConfigError(
                "data.split",
                f"{data.split!r} is not a split of {name!r} ({one_line(err, 160)})",
                "pick one of the dataset's splits, e.g. train",
            ) from None
        if "config" in text.lower():
            raise ConfigError(
                "data.hf_config",
                f"{data.hf_config!r} does not fit {name!r} ({one_line(err, 160)})",
                "pick one of the dataset's configurations",
            ) from None
        raise
    except Exception as err:  # noqa: BLE001 - offline cache misses come in several types
        if offline:
            raise ConfigError(
                "data.path",
                f"hub dataset {name!r} could not be reached and is not in the local cache",
                "connect to the internet, or save it with save_to_disk on a machine that is online and use the source 'disk'",
            ) from None
        raise ConfigError(
            "data.path",
            f"hub dataset {name!r} could not be read ({one_line(err, 160)})",
            "check the name, configuration and split",
        ) from None
    finally:
        datasets.config.HF_HUB_OFFLINE = saved


def _hub_reachable(name: str) -> bool:
    """One quick question to the hub (5 s at most); False when offline or unreachable."""
    import os

    if (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE") or "").strip().upper() in (
        "1",
        "ON",
        "YES",
        "TRUE",
    ):
        return False
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        HfApi().dataset_info(name, timeout=5)
    except HfHubHTTPError:
        return True  # the hub answered (not found, gated...): let datasets say what is wrong
    except Exception:  # noqa: BLE001 - any network failure
        return False
    return True


def load_disk(data: DataConfig) -> tuple[Any, str]:
    import datasets

    path = resolve_path(data.path)
    if not path.exists():
        raise ConfigError("data.path", f"{data.path!r} does not exist", "check the path")
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError):
        raise ConfigError(
            "data.path",
            f"{data.path!r} is not a folder written by save_to_disk",
            "choose the folder that Dataset.save_to_disk wrote, or use the source 'file' for a single file",
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        if data.split not in loaded:
            raise ConfigError(
                "data.split",
                f"{data.split!r} is not a split of {data.path!r}",
                f"splits here: {', '.join(loaded.keys())}",
            )
        return loaded[data.split], data.split
    return loaded, ""


def dataset_texts(dataset: Any, data: DataConfig, where: str, limit: int | None, position: Position) -> Iterator[str]:
    """The text column of a ``datasets.Dataset`` (or an iterable one whose types are unknown), a batch of
    rows at a time."""
    column = data.text_column
    features = getattr(dataset, "features", None)
    if features is not None:
        kinds = {name: feature_kind(feature) for name, feature in features.items()}
        check_column(column, kinds, where)
        if kinds[column] != "text":
            raise not_text(column, kinds[column], kinds, where)
    return _dataset_rows(dataset, column, where, limit, position)


def _dataset_rows(dataset: Any, column: str, where: str, limit: int | None, position: Position) -> Iterator[str]:
    rows_read = 0
    position.done = lambda: float(rows_read)
    if hasattr(dataset, "select_columns") and hasattr(dataset, "__len__"):
        position.total = float(min(limit, len(dataset)) if limit else len(dataset))
        batches = (batch[column] for batch in dataset.select_columns([column]).iter(batch_size=ROWS_PER_READ))
    else:
        position.total = 0.0
        batches = ([row.get(column)] for row in dataset)
    documents = 0
    for values in batches:
        rows_read += len(values)
        for value in values:
            if value is None:
                continue
            if not isinstance(value, str):
                raise not_text(column, kind_of(value), {}, where)
            if value.strip():
                yield value
                documents += 1
                if limit and documents >= limit:
                    return
