from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
UPSTREAM = FIXTURES / "upstream"


@pytest.fixture(autouse=True)
def isolated_dirs(request, tmp_path):
    """Each test gets its own model root and catalogue copy, never the developer's data/."""
    if not request.config.pluginmanager.hasplugin("django"):
        return
    settings = request.getfixturevalue("settings")
    settings.MODEL_BASE_PATH = tmp_path / "models"
    settings.PRESETS_FILE = tmp_path / "data" / "presets.yaml"
    settings.MODEL_BASE_PATH.mkdir()
