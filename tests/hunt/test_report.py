"""Incident reports: content in JSON, Markdown and HTML, and the HTML
looked at as a picture (headless Chromium screenshot)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from apiward.hunt.report import build_report, render_html, render_markdown

from .scenario import A, C, build


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    state = tmp_path_factory.mktemp("rep") / "s"
    build(state)
    return build_report(state, f"ip:{A}")


def test_report_content(report: dict) -> None:
    s = report["summary"]
    assert report["actor"] == f"ip:{A}" and s["stage"] == "exfiltration" and s["findings"] == 3
    assert [x["stage"] for x in report["stages"]][:2] == ["reconnaissance", "resource-development"]
    eps = {e["endpoint"] for e in report["endpoints"]}
    assert "GET /api/customers/{customerId}" in eps or any(e.startswith("GET /api/customers") for e in eps)
    objs = [o for o in report["objects"] if "customers" in o["parameter"]]
    assert objs and objs[0]["count"] == 30
    data = [x for x in report["data_exposed"] if "customers" in x["endpoint"]][0]
    assert data["responses"] == 30 and {"email", "phone"} <= set(data["classes"]) and data["other_principals"] == 30
    assert any(i["identity"] == f"ip:{C}" for i in report["identities"])
    assert {f["category"] for f in report["fixes"]} == {"API1:2023", "API2:2023", "API9:2023"}
    assert all(f["fixes"] for f in report["fixes"])
    ev = report["evidence"]
    assert ev and all("request" in e and "response_body" in e for e in ev)
    blob = orjson.dumps(report).decode()
    assert "customer3@example.com" not in blob and "«email:" in blob  # redacted as stored
    assert "Bearer eyJ" not in blob


def test_markdown_and_html_carry_the_same_story(report: dict, tmp_path: Path) -> None:
    md = render_markdown(report)
    for part in ("## Summary", "## Stages reached", "## Data exposed", "## Linked identities", "## Recommended fixes", "Broken Object Level Authorization"):
        assert part in md
    html = render_html(report)
    assert html.startswith("<!doctype html>") and "<svg" in html and "</html>" in html
    for part in ("Stages reached", "Data exposed", "Recommended fixes", "Linked identities", "Broken Object Level Authorization"):
        assert part in html
    # self-contained: nothing fetched, no script
    for bad in ("http://", "https://", "<script", "<link ", "@import", "src="):
        assert bad not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, timeout=900)
    return shutil.which("chromium")


@pytest.mark.slow
def test_html_renders_in_a_browser(report: dict, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed and could not be installed (apt-get install chromium)")
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    png = tmp_path / "report.png"
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1800",
                        f"--screenshot={png}", page.as_uri()], capture_output=True, timeout=120)
    assert png.exists(), r.stderr.decode()[-500:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 1800)
    assert len(data) > 50_000  # a rendered page, not a blank one
    keep = Path(__file__).parent.parent.parent / "bench" / "out"
    if keep.parent.exists():
        keep.mkdir(exist_ok=True)
        shutil.copy(png, keep / "incident-report.png")
