"""The report library (pipelines/data/report.py): figures are valid, deterministic PNGs; table and folder."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipelines.data import report

DIMS = (256, 512, 1024)
CLASSES = {"dog": "<b>Dog</b>", "water_flowing": "Water | flowing"}


def _informativity(dim: int, epochs: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(dim)
    rows = [
        {
            "epoch": e,
            "class_name": name,
            "informativity": float(np.clip(0.05 * i + 0.005 * e + rng.normal(0, 0.02), 0, 1)),
        }
        for e in range(1, epochs + 1)
        for i, name in enumerate(CLASSES)
    ]
    return pd.DataFrame(rows)


def _pixel(dim: int, epochs: int = 20) -> pd.DataFrame:
    epoch = np.arange(1, epochs + 1)
    return pd.DataFrame({"epoch": epoch, "pixel_loss": 0.3 / np.sqrt(epoch) * (512 / dim) ** 0.1})


def _dim_summary(dim: int) -> dict:
    return {
        "window_average": {"dog": 0.06, "water_flowing": 0.18, "average": 0.12},
        "max_moving_average": {"dog": 0.08, "water_flowing": 0.2, "average": 0.14},
        "baseline": {"dog": 0.01, "water_flowing": 0.02, "average": 0.015},
        "cross_class": {"dog": 0.03, "water_flowing": 0.05, "average": 0.04},
        "final_pixel_loss": 0.05 * 512 / dim,
        "epochs_evaluated": list(range(1, 21)),
        "best_epoch": 12,
    }


def _summary() -> dict:
    dims = {str(d): _dim_summary(d) for d in DIMS}
    dims["1024"]["window_average"]["dog"] = None  # not evaluated in the window
    dims["1024"]["final_pixel_loss"] = None
    return {
        "profile": "demo",
        "classes": dict(CLASSES),
        "window": [5, 20],
        "moving_average_epochs": 10,
        "dims": dims,
        "best_dim": 512,
    }


def _check_png(png: bytes, min_size: tuple[int, int] = (200, 150)) -> Image.Image:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.width > min_size[0] and image.height > min_size[1]
    pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1, "figure is a single flat colour"
    return image


def _figures() -> dict[str, bytes]:
    histories = {d: _informativity(d) for d in DIMS}
    summaries = {d: _dim_summary(d) for d in DIMS}
    return {
        "informativity_history": report.informativity_history_png(
            histories, CLASSES, {d: s["baseline"] for d, s in summaries.items()}, smooth_epochs=5
        ),
        "informativity_vs_dim": report.informativity_vs_dim_png(summaries, CLASSES),
        "pixel_loss": report.pixel_loss_png({d: _pixel(d) for d in DIMS}, window_epochs=5),
        "pixel_loss_vs_dim": report.pixel_loss_vs_dim_png({256: 0.1, 512: 0.05, 1024: 0.03}),
    }


@pytest.fixture(scope="module")
def figures() -> dict[str, bytes]:
    return _figures()


def test_figures_are_valid_and_deterministic(figures: dict[str, bytes]) -> None:
    first, second = figures, _figures()
    for name, png in first.items():
        _check_png(png)
        assert png == second[name], f"{name}: same input gave different bytes"


def test_history_variants() -> None:
    histories = {d: _informativity(d) for d in DIMS}
    raw = report.informativity_history_png(histories, CLASSES)  # no baseline, no smoothing
    _check_png(raw)
    assert raw != report.informativity_history_png(histories, CLASSES, smooth_epochs=5)
    # A dim with nothing evaluated yet and a smoothing window longer than the history still draw.
    _check_png(
        report.informativity_history_png(
            {512: histories[512], 1024: _informativity(1024).iloc[:0]}, CLASSES, smooth_epochs=100
        )
    )


def test_vs_dim_skips_missing_values() -> None:
    summaries = {d: _dim_summary(d) for d in DIMS}
    summaries[1024]["window_average"] = {"dog": None, "water_flowing": 0.1, "average": None}
    summaries[256]["max_moving_average"]["average"] = math.nan
    _check_png(report.informativity_vs_dim_png(summaries, CLASSES))
    _check_png(report.informativity_vs_dim_png({512: summaries[512]}, CLASSES))  # a single dim
    _check_png(report.pixel_loss_vs_dim_png({512: 0.05, 1024: None}))


def test_pixel_loss_shorter_than_window() -> None:
    histories = {256: _pixel(256, epochs=3), 512: _pixel(512, epochs=1), 1024: _pixel(1024, epochs=80)}
    _check_png(report.pixel_loss_png(histories, window_epochs=50))
    # The moving average is measured in epochs and shrinks to a short history's span.
    epochs, averages = report.moving_average_by_epoch([1, 2, 3], [3.0, 2.0, 1.0], 50)
    assert epochs.tolist() == [3] and averages.tolist() == [2.0]
    epochs, averages = report.moving_average_by_epoch([5, 10, 15, 20], [4.0, 3.0, 2.0, 1.0], 10)
    # Full windows only, as s2i_models.evaluation counts them: epoch 10's window [1, 10] starts before the
    # first evaluation (5), so the first full one ends at 14 or later.
    assert epochs.tolist() == [15, 20] and averages.tolist() == [2.5, 1.5]
    assert report.final_moving_average(_pixel(512, epochs=1)) == pytest.approx(0.3)
    assert report.final_moving_average(_pixel(512).iloc[:0]) is None


def test_translations_grid() -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(3)]
    samples = [[rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(4)] for _ in range(3)]
    png = report.translations_png(frames, samples, "Dog: 512-dim translator")
    image = _check_png(png)
    assert image.width > image.height  # 5 columns, 3 rows
    assert png == report.translations_png(frames, samples, "Dog: 512-dim translator")
    with pytest.raises(ValueError, match="one list per true frame"):
        report.translations_png(frames, samples[:2], "x")


def test_summary_table_markdown() -> None:
    table = report.summary_table_markdown(_summary(), CLASSES)
    lines = table.strip().splitlines()
    assert table.startswith("|")
    assert len(lines) == 2 + len(DIMS)  # header, separator, one row per dim
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["256", "512 (best)", "1024"]
    assert "| 6.0 | 18.0 | 12.0 | 14.0 | 1.5 | 4.0 |" in lines[1 + DIMS.index(512) + 1]
    row_1024 = lines[2 + DIMS.index(1024)]
    assert row_1024.count("–") == 2  # dog's window average and the final pixel loss
    assert "&lt;b&gt;Dog&lt;/b&gt;" in lines[0] and "Water \\| flowing" in lines[0]


def test_write_report(tmp_path, figures: dict[str, bytes]) -> None:
    summary = _summary()
    summary["dims"]["256"]["window_average"]["dog"] = float("nan")
    summary["dims"]["512"]["best_epoch"] = np.int64(12)
    table = report.summary_table_markdown(summary, CLASSES)
    paths = report.write_report(tmp_path / "report", figures, summary, table, "S2I report <demo>")

    names = {p.name for p in paths}
    assert names == {f"{n}.png" for n in figures} | {"summary.json", "report.md", "index.html"}
    assert all(p.is_file() for p in paths)
    assert not list((tmp_path / "report").glob(".tmp-*"))
    for name, png in figures.items():
        assert (tmp_path / "report" / f"{name}.png").read_bytes() == png

    index = (tmp_path / "report" / "index.html").read_text()
    for name in figures:
        assert f'src="{name}.png"' in index
    assert "&lt;b&gt;Dog&lt;/b&gt;" in index and "<b>Dog</b>" not in index
    assert "S2I report &lt;demo&gt;" in index
    assert index.count("<tr>") == 1 + len(DIMS)

    text = (tmp_path / "report" / "summary.json").read_text()
    assert "NaN" not in text
    loaded = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert loaded["dims"]["256"]["window_average"]["dog"] is None
    assert loaded["dims"]["512"]["best_epoch"] == 12
    assert loaded["dims"]["512"]["window_average"] == summary["dims"]["512"]["window_average"]
    assert loaded["classes"] == CLASSES

    markdown = (tmp_path / "report" / "report.md").read_text()
    assert table.strip() in markdown
    assert all(f"({n}.png)" in markdown for n in figures)

    with pytest.raises(ValueError, match="figure name"):
        report.write_report(tmp_path / "bad", {"../x": b""}, summary, table, "t")


def test_no_dagster_or_torch_import() -> None:
    source = report.__file__
    with open(source) as stream:
        text = stream.read()
    assert "import dagster" not in text and "import torch" not in text
