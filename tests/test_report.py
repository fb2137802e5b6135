"""`warehouse-ml report`: one self-contained HTML page, rendered in a real headless Chromium."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess

import duckdb
import numpy as np
import pytest

import warehouse_ml as wml
from warehouse_ml.cli import main
from warehouse_ml.demo.shop import generate_shop
from warehouse_ml.store import ModelStore

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name) or (f"/usr/bin/{name}" if shutil.os.path.exists(f"/usr/bin/{name}") else None)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("report") / "shop.duckdb")
    con = wml.connect(path)
    generate_shop(con, users=300, seed=3)
    wml.sql(con, "CREATE TABLE churn_features AS SELECT * FROM user_features('orders', as_of := DATE '2024-06-30', "
                 "label_window := 90)")
    wml.sql(con, "FROM train_churn('churn_features', algorithm := 'logistic')").fetchall()
    wml.sql(con, "FROM segment_users('churn_features', k := 3)").fetchall()
    for _ in range(2):  # a monitoring history to chart
        wml.sql(con, "FROM ml_drift('churn', 'churn_features')").fetchall()
    con.close()
    return path


@pytest.fixture(scope="module")
def report(shop, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("out") / "report.html")
    assert main(["report", shop, "--out", out, "--forecast-items", "2", "--horizon", "14"]) == 0
    return out


def test_report_is_one_self_contained_page(report, shop):
    page = open(report, encoding="utf-8").read()
    for heading in ("Models", "Classifier: churn", "Monitoring: churn", "Segments: segments", "Forecast: daily_sales.units",
                    "A/B test: experiment"):
        assert f"<h2>{heading}</h2>" in page, heading
    assert "(not drawn)" not in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 5
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page must not load anything from the network"
    # the report opened the database read-only: nothing was added to it
    con = duckdb.connect(shop, read_only=True)
    assert con.execute("SELECT count(*) FROM wml.model_versions").fetchone()[0] == 2
    con.close()


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium found: apt-get install -y chromium")
    shot = tmp_path / "report.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,3000", f"--screenshot={shot}",
           f"file://{report}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    import matplotlib.image as mpimg

    img = mpimg.imread(str(shot))
    assert img.shape[0] == 3000 and img.shape[1] == 1200
    # a rendered page, not a blank one: the header band is dark blue, and the charts add many distinct colours
    header = img[20, 600, :3]
    assert header[2] > header[0] + 0.1
    assert len({tuple((px * 255).astype(int)) for px in img[::7, ::7, :3].reshape(-1, 3)}) > 200


def test_report_errors_are_clear(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.duckdb"), "--out", str(tmp_path / "r.html")]) == 2
    assert "no DuckDB file" in capsys.readouterr().err


def test_report_of_an_empty_database(tmp_path):
    db = str(tmp_path / "empty.duckdb")
    duckdb.connect(db).close()
    out = str(tmp_path / "r.html")
    assert main(["report", db, "--out", out]) == 0
    assert "holds no models yet" in open(out, encoding="utf-8").read()


def test_report_draws_the_classifier_reliability_diagram_from_its_hold_out(report, shop):
    """The calibration chart's bins are the stored hold-out scores' bins: every hold-out row counted once, each
    bin's observed rate the share of positives among its rows."""
    page = open(report, encoding="utf-8").read()
    section = page.split("<h2>Classifier: churn</h2>")[1].split("</section>")[0]
    caption = re.search(r"Reliability of churn v\d+ on ([\d,]+) hold-out rows: Brier score ([\d.]+), "
                        r"expected calibration error ([\d.]+)", section)
    assert caption, "the classifier's section has no reliability diagram"
    assert 'alt="Reliability of churn' in section  # the chart itself, not only its caption
    table = section.split("<th>predicted bin</th>")[1].split("</table>")[0]
    bins = [re.findall(r"<td>([^<]*)</td>", row) for row in table.split("<tr>")[1:]]
    con = wml.connect(shop, read_only=True)
    try:
        held = ModelStore(con).describe("churn").meta["holdout"]
    finally:
        con.close()
    p, y = np.asarray(held["score"]), np.asarray(held["positive"])
    assert int(caption.group(1).replace(",", "")) == len(y) == sum(int(b[1]) for b in bins)
    assert float(caption.group(2)) == pytest.approx(np.mean((p - y) ** 2), abs=1e-4)
    for label, rows, mean_predicted, observed in bins:
        lo, hi = map(float, label.split("-"))
        inside = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        assert inside.sum() == int(rows) and lo <= float(mean_predicted) <= hi
        assert float(observed) == pytest.approx(y[inside].mean(), abs=1e-3)
