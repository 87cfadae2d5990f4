"""The console in a real browser (Playwright driving Debian's chromium,
headless): sign in, overview, inventory search, a finding and its triage,
an actor's kill-chain timeline, a hunt with CSV download. Screenshots go
to tests/serve/artefacts/ (git-ignored). No CSP violation may appear in
the browser console (no inline scripts or styles slipped in)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest

from .conftest import Built, LiveServer, copy_state, make_tokens

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARTEFACTS = Path(__file__).parent / "artefacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")]


@pytest.fixture(scope="module")
def site(built: Built, tmp_path_factory: pytest.TempPathFactory):
    state = copy_state(built, tmp_path_factory.mktemp("browser") / "state")
    tokens = make_tokens(state)
    srv = LiveServer(state).start()
    yield srv.base, tokens, built.events
    srv.stop()


@pytest.fixture(scope="module")
def page(site, tmp_path_factory: pytest.TempPathFactory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra: pip install -e '.[test]'")
    ARTEFACTS.mkdir(exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=ARGS, headless=True,
                                                    viewport={"width": 1366, "height": 900}, accept_downloads=True)
        pg = ctx.new_page()
        pg.set_default_timeout(30_000)
        problems: list[str] = []
        pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: problems.append(str(e)))
        pg.problems = problems  # type: ignore[attr-defined]
        yield pg
        ctx.close()


def built_events(site) -> bytes:
    return site[2].read_bytes()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTEFACTS / name), full_page=True)


def test_console_walkthrough(site, page):
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)  # a busy CI machine
    base, tokens, _ = site
    # sign-in: anonymous visitors land on the login page
    page.goto(base + "/")
    assert page.url.startswith(base + "/login?next=")
    page.get_by_label("API token").fill("aw_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    assert "not valid" in page.get_by_role("alert").inner_text()
    page.get_by_label("API token").fill(tokens["analyst"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/")
    shot(page, "01-overview.png")

    # overview: posture, the chart (uPlot draws a canvas), riskiest tables
    assert page.get_by_role("heading", name="Overview", level=1).is_visible()
    cards = page.locator(".cards li").all_inner_texts()
    assert any(c.endswith("endpoints") for c in cards) and any("findings" in c for c in cards)
    page.wait_for_selector("#chart-traffic canvas")
    assert page.locator("#chart-traffic .u-legend").inner_text().count("calls") >= 1
    assert page.locator("section:has(h2:text('Riskiest actors')) tbody tr").count() > 0

    # inventory: tree with badges, live search
    page.get_by_role("link", name="Inventory", exact=True).click()
    page.wait_for_url(base + "/inventory")
    page.wait_for_load_state("load")  # htmx (a deferred script) is ready
    total = int(page.locator("p.count").inner_text().split()[0])
    assert total > 5 and page.locator(".badge").count() > 0
    shot(page, "02-inventory.png")
    page.get_by_label("Search endpoints").fill("login")
    expect(page.locator("p.count")).not_to_have_text(f"{total} endpoint(s)")
    links = page.locator(".eps a").all_inner_texts()
    assert links and all("login" in t.lower() for t in links)
    shot(page, "03-inventory-search.png")
    page.locator(".eps a").first.click()
    assert "login" in page.locator("h1").inner_text().lower()
    assert page.get_by_role("heading", name="Parameters").is_visible()

    # findings: filter by kind, open one, triage it
    page.get_by_role("link", name="Findings", exact=True).click()
    page.wait_for_url(base + "/findings")
    page.wait_for_load_state("load")
    page.get_by_label("Kind").select_option("attack")
    expect(page).to_have_url(re.compile(r"kind=attack"))
    expect(page.locator("table.findings tbody tr td:nth-child(3)").first).to_have_text("attack")
    kinds = page.locator("table.findings tbody tr td:nth-child(3)").all_inner_texts()
    assert kinds and set(kinds) == {"attack"}
    shot(page, "04-findings.png")
    first = page.locator("table.findings tbody tr a[href^='/findings/']").first
    title = first.inner_text()
    first.click()
    assert page.locator("h1").inner_text() == title
    assert page.get_by_role("heading", name="Evidence").is_visible()
    assert page.locator("#triage-status").inner_text().startswith("open")
    page.get_by_label("Status", exact=True).select_option("acknowledged")
    page.get_by_label("Note").fill("checked in the browser test")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**?saved=1")
    status = page.locator("#triage-status").inner_text()
    assert status.startswith("acknowledged by analyst-user") and "checked in the browser test" in status
    shot(page, "05-finding-triaged.png")

    # the actor behind it: identities and kill-chain timeline
    page.locator("dd a[href^='/actors/']").first.click()
    assert page.get_by_role("heading", name="Kill chain").is_visible()
    reached = page.locator(".killchain li.reached .stage").all_inner_texts()
    assert reached, "no kill-chain stage marked as reached"
    assert all(page.locator(".killchain li.reached .mark").all_inner_texts()[i] == "reached" for i in range(len(reached)))  # text, not colour alone
    assert page.locator("table.timeline tbody tr").count() > 0
    assert page.locator("section:has(h2:text('Linked identities')) tbody tr").count() > 0
    shot(page, "06-actor-timeline.png")

    # a hunt: SQL, the results table, CSV download
    page.get_by_role("link", name="Hunts", exact=True).click()
    page.get_by_label("Query").fill("SELECT method, count(*) AS n FROM calls GROUP BY 1 ORDER BY 2 DESC")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("table.results")
    heads = page.locator("table.results thead th").all_inner_texts()
    assert heads == ["method", "n"]
    rows = page.locator("table.results tbody tr")
    assert rows.count() >= 2 and int(rows.first.locator("td").nth(1).inner_text()) > 0
    assert page.locator("#result-count").inner_text().startswith(f"{rows.count()} row(s)")
    shot(page, "07-hunt.png")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download CSV", exact=True).click()
    csv_text = Path(dl.value.path()).read_text()
    assert csv_text.splitlines()[0] == "method,n" and len(csv_text.splitlines()) == rows.count() + 1

    # incidents and the self-test page render
    page.get_by_role("link", name="Incidents", exact=True).click()
    assert page.locator("tbody tr").count() > 0
    page.locator("tbody tr a[href^='/incidents/I-']").first.click()
    assert page.locator("h1").inner_text().startswith("Incident report:")
    shot(page, "08-incident.png")
    page.get_by_role("link", name="Self-test", exact=True).click()
    assert "attack classes detected" in page.locator("p.lead").inner_text()
    shot(page, "09-selftest.png")

    # live: events posted by a collector update findings; the open page says so (server-sent events)
    page.get_by_role("link", name="Overview", exact=True).click()
    page.wait_for_timeout(1500)  # the page's event stream is open
    assert page.locator("#live").is_hidden()
    lines = [ln.replace(b'"id":"sim-', b'"id":"again-') for ln in built_events(site).splitlines(keepends=True) if ln.strip()]
    r = httpx.post(base + "/api/events", content=b"".join(lines), timeout=120,
                   headers={"authorization": f"Bearer {tokens['ingest']}", "content-type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    expect(page.locator("#live")).to_be_visible(timeout=90_000)
    assert "new or updated finding" in page.locator("#live").inner_text()
    shot(page, "10-live-findings.png")

    csp = [p for p in page.problems if "Content Security Policy" in p or "Refused to" in p]
    assert not csp, csp
    assert not [p for p in page.problems if "Failed to load resource" not in p], page.problems
