"""docs/api.md is what ``python -m her.apidoc`` generates from the code today, and names every public name."""

from __future__ import annotations

import her
from her import apidoc


def test_the_api_page_is_current():
    assert apidoc.PAGE.read_text() == apidoc.render(), "docs/api.md is out of date: run python -m her.apidoc"


def test_the_page_names_every_public_name_and_configuration_key():
    from her.config import OPTIONS

    page = apidoc.render()
    for name in [n for n in her.__all__ if n != "version"] + ["policy.load", "policy.Policy", "config.ConfigError"]:
        assert f"### `her.{name}`" in page, name
    for f in OPTIONS:
        assert f"| `{f.name}`" in page, f.name


def test_the_check_fails_on_a_stale_page(tmp_path, capsys):
    stale = tmp_path / "api.md"
    stale.write_text(apidoc.render().replace("Continue the run", "Go on with the run"))
    assert apidoc.main(["--check", "--output", str(stale)]) == 1
    assert "is out of date: run python -m her.apidoc" in capsys.readouterr().err
    assert apidoc.main(["--output", str(stale)]) == 0
    assert apidoc.main(["--check", "--output", str(stale)]) == 0
