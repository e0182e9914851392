"""Presets are discovered one module per firm: a new firm is a new module, nothing else."""

import sys

import pytest

from forex_assets.prop_firms import presets, registry
from forex_assets.prop_firms.rules import PropFirmConfigError


@pytest.fixture
def extra_presets(tmp_path, monkeypatch):
    """A folder searched as part of `forex_assets.prop_firms.presets`; modules written into
    it are forgotten again after the test."""
    monkeypatch.setattr(presets, "__path__", [*presets.__path__, str(tmp_path)])
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith(f"{presets.__name__}.")]:
        if getattr(sys.modules[name], "__file__", "").startswith(str(tmp_path)):
            del sys.modules[name]


def test_a_new_module_adds_its_firm(extra_presets):
    (extra_presets / "acme.py").write_text(
        "from forex_assets.prop_firms.rules import PropFirmRules\n"
        'PRESETS = (PropFirmRules("acme_sprint", 0.04, 0.08, 0.06, 3),)\n'
    )
    found = registry.discover()
    assert found["acme_sprint"].profit_target == 0.06
    assert set(found) == {*registry.PRESETS, "acme_sprint"}


def test_two_modules_claiming_one_name_are_refused(extra_presets):
    (extra_presets / "copycat.py").write_text(
        "from forex_assets.prop_firms.rules import PropFirmRules\n"
        'PRESETS = (PropFirmRules("ftmo_challenge", 0.01, 0.02, 0.03, 1),)\n'
    )
    with pytest.raises(PropFirmConfigError, match=r"'ftmo_challenge' is defined by both .*ftmo"):
        registry.discover()


def test_a_module_without_presets_is_refused(extra_presets):
    (extra_presets / "typo.py").write_text("PRESET = ()\n")
    with pytest.raises(PropFirmConfigError, match=r"typo defines PRESETS=None"):
        registry.discover()


def test_the_shipped_presets_are_found():
    assert {"ftmo_challenge", "the5ers_hyper_growth", "funded_account"} <= set(registry.PRESETS)
