"""Sigma rules converted by pySigma through apiward's backend and field
mapping, run over the simulated lake."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiward.hunt.session import HuntSession
from apiward.hunt.sigma import SigmaUnsupported, convert, load_rules, run_rules


def rule(tmp: Path, name: str, body: str) -> Path:
    p = tmp / f"{name}.yml"
    p.write_text(f"title: {name}\nid: 00000000-0000-4000-8000-{abs(hash(name)) % 10**12:012d}\nstatus: test\n" + body)
    return p


@pytest.fixture()
def rules(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    rule(d, "sqli", "logsource: {category: webserver}\ndetection:\n  sel:\n    cs-uri-query|contains: [\"' OR '\", 'union select', 'SLEEP(']\n  condition: sel\nlevel: high\n")
    rule(d, "scanner_ua", "logsource: {category: proxy}\ndetection:\n  sel:\n    c-useragent|contains: ['GOBUSTER', 'nikto']\n  condition: sel\nlevel: medium\n")
    rule(d, "secret_files", "logsource: {category: webserver}\ndetection:\n  sel:\n    cs-uri-stem|endswith: ['/.env', '/.git/config', '/.git/HEAD', '/db.sql']\n    sc-status: 404\n"
         "  kw:\n    - 'aws/credentials'\n    - 'backup.zip'\n  condition: sel or kw\nlevel: medium\n")
    rule(d, "admin_non_browser", "logsource: {category: webserver}\ndetection:\n  sel:\n    cs-uri-stem|re: '^/api/v\\d+/admin/'\n    cs-method: get\n"
         "  browser:\n    c-useragent|startswith: 'Mozilla/'\n  condition: sel and not browser\nlevel: high\n")
    return d


def test_rules_run_and_match_the_attacks(rules: Path, sim_lake, attackers) -> None:
    state, labels = sim_lake
    attack_events = {a.playbook: set(a.event_ids) for a in labels.attacks}
    with HuntSession(state) as s:
        res, qs = run_rules(s, [rules])
    assert len(qs) == 4
    by_rule: dict[str, set[str]] = {}
    for r in res.dicts():
        by_rule.setdefault(r["rule"], set()).add(r["id"])
    assert by_rule["sqli"] and by_rule["sqli"] <= attack_events["sqli"]
    # case-insensitive as Sigma defines: 'GOBUSTER' matches 'gobuster/3.6'
    assert by_rule["scanner_ua"] and by_rule["scanner_ua"] <= attack_events["recon"]
    assert by_rule["secret_files"] and by_rule["secret_files"] <= attack_events["recon"]
    assert len(by_rule["secret_files"]) >= 3  # both selection and keyword branches
    # admins browse with Mozilla/ user agents: "and not" must keep every one of their calls out
    assert by_rule.get("admin_non_browser", set()) <= set().union(*attack_events.values())


def test_conversion_is_sigma_semantics(tmp_path: Path) -> None:
    [(r, src)] = load_rules([rule(tmp_path, "x", "logsource: {category: webserver}\ndetection:\n  sel:\n    cs-method: Post\n"
                                  "    c-ip|cidr: 10.1.0.0/16\n    sc-status|gte: 500\n    cs-uri-query|contains|cased: 'Admin_%'\n"
                                  "  condition: sel\n")])
    sql = convert(r, src).sql
    assert "\"method\" AS VARCHAR) ILIKE 'Post'" in sql  # case-insensitive equality
    assert "\"client_ip\" AS VARCHAR) ILIKE '10.1.%'" in sql  # CIDR as prefixes
    assert '"status" >= 500' in sql
    assert "LIKE '%Admin\\_\\%%' ESCAPE" in sql and "ILIKE '%Admin" not in sql  # cased, wildcards escaped


@pytest.mark.parametrize("body, msg", [
    ("logsource: {category: webserver}\ndetection:\n  sel:\n    cs-uri-query|wide|contains: 'x'\n  condition: sel\n", "modifier |wide"),
    ("logsource: {category: webserver}\ndetection:\n  sel:\n    cs-uri-query|windash: '-x'\n  condition: sel\n", "modifier |windash"),
    ("logsource: {category: webserver}\ndetection:\n  sel:\n    CommandLine: 'x'\n  condition: sel\n", "field 'CommandLine' has no apiward column"),
    ("logsource: {category: process_creation, product: windows}\ndetection:\n  sel:\n    cs-method: GET\n  condition: sel\n", "logsource category 'process_creation'"),
])
def test_unsupported_rules_are_refused_clearly(tmp_path: Path, body: str, msg: str) -> None:
    [(r, src)] = load_rules([rule(tmp_path, "bad", body)])
    with pytest.raises(SigmaUnsupported, match=msg):
        convert(r, src)


def test_correlation_rules_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "corr.yml"
    p.write_text(
        "title: base\nname: base_rule\nid: 00000000-0000-4000-8000-000000000101\nlogsource: {category: webserver}\n"
        "detection:\n  sel:\n    sc-status: 401\n  condition: sel\n---\n"
        "title: many 401\nid: 00000000-0000-4000-8000-000000000102\ncorrelation:\n  type: event_count\n  rules: [base_rule]\n"
        "  group-by: [c-ip]\n  timespan: 5m\n  condition: {gte: 10}\n"
    )
    with pytest.raises(SigmaUnsupported, match="correlation"):
        load_rules([p])
