from pathlib import Path

import pytest

from apiward.config import ConfigError, load_settings


def test_toml_env_and_overrides_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "apiward.toml"
    cfg.write_text('batch_size = 7\nretention_days = 3\n[detectors."auth.cleartext_credentials"]\n')
    assert load_settings(cfg).batch_size == 7
    monkeypatch.setenv("APIWARD_BATCH_SIZE", "9")
    assert load_settings(cfg).batch_size == 9
    assert load_settings(cfg, batch_size=11).batch_size == 11
    assert load_settings(cfg).detector_options == {"auth.cleartext_credentials": {}}


def test_state_dir_config_is_picked_up(tmp_path: Path) -> None:
    (tmp_path / "apiward.toml").write_text("lake_body_cap = 100\n")
    assert load_settings(state_dir=tmp_path).lake_body_cap == 100


@pytest.mark.parametrize(
    "text, needle",
    [("bogus_key = 1\n", "bogus_key"), ("batch_size = 'many'\n", "batch_size"), ("batch_size = 0\n", "batch_size"), ("[[x\n", "apiward.toml")],
)
def test_bad_config_fails_loudly_naming_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "apiward.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert needle in str(e.value)


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIWARD_BATCH_SIZE", "lots")
    with pytest.raises(ConfigError, match="APIWARD_BATCH_SIZE"):
        load_settings()


def test_proxy_table_reaches_the_proxy_and_bad_values_fail_at_load(tmp_path: Path) -> None:
    from apiward.ingest.proxy import CaptureProxy

    cfg = tmp_path / "apiward.toml"
    cfg.write_text("[proxy]\nheader_timeout = 4\nbody_timeout = 12.5\nmax_upstream = 8\n")
    s = load_settings(cfg)
    assert (s.proxy.header_timeout, s.proxy.body_timeout, s.proxy.idle_timeout, s.proxy.max_upstream) == (4, 12.5, 60.0, 8)
    p = CaptureProxy("http://127.0.0.1:1", lambda ex: None, **s.proxy.as_kwargs())
    assert (p.header_timeout, p.body_timeout, p.max_upstream, p.max_concurrent) == (4, 12.5, 8, 1024)
    for bad, word in (("body_timeout = 0", "body_timeout"), ("max_concurrent = 0", "max_concurrent"), ("slow = 1", "slow")):
        cfg.write_text(f"[proxy]\n{bad}\n")
        with pytest.raises(ConfigError, match=word):
            load_settings(cfg)
