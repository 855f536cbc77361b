"""Data directory precedence: --data-dir flag > VSEARCH_DATA_DIR > platform default."""

from __future__ import annotations

from pathlib import Path

from vsearch_app.settings import APP_NAME, DEFAULT_MODEL, AppSettings, default_data_dir


def test_flag_wins_over_environment(tmp_path):
    settings = AppSettings.resolve(tmp_path / "flag", env={"VSEARCH_DATA_DIR": str(tmp_path / "env")})
    assert settings.data_dir == (tmp_path / "flag").resolve()


def test_environment_wins_over_default(tmp_path):
    settings = AppSettings.resolve(None, env={"VSEARCH_DATA_DIR": str(tmp_path / "env")})
    assert settings.data_dir == (tmp_path / "env").resolve()


def test_default_is_the_platform_user_data_dir_without_author_folder():
    settings = AppSettings.resolve(None, env={})
    assert settings.data_dir == default_data_dir().resolve()
    assert settings.data_dir.name == APP_NAME
    assert settings.data_dir.parent.name != APP_NAME  # no "VSearch/VSearch" author folder


def test_hub_cache_honours_hf_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert AppSettings.resolve(tmp_path).hub_cache_dir == tmp_path / "hub"
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert AppSettings.resolve(tmp_path).hub_cache_dir == Path(tmp_path / "hf" / "hub")


def test_data_dir_is_not_created_until_needed(tmp_path):
    settings = AppSettings.resolve(tmp_path / "later")
    assert not settings.data_dir.exists()
    assert settings.ensure_data_dir().is_dir()


def test_model_flag_wins_over_environment_and_none_means_not_chosen(tmp_path):
    env = {"VSEARCH_MODEL": "org/from-env"}
    assert AppSettings.resolve(tmp_path, model="org/flag", env=env).model == "org/flag"
    assert AppSettings.resolve(tmp_path, env=env).model == "org/from-env"
    unset = AppSettings.resolve(tmp_path, env={})
    assert unset.model is None and unset.search_model == DEFAULT_MODEL
