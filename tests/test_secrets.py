from __future__ import annotations

import stat

from gbdesk.paths import app_paths
from gbdesk.secrets import delete_secret, get_secret, set_secret


def test_without_a_keyring_secrets_go_to_an_owner_only_file() -> None:
    where = set_secret("hub-token", "hf_exampletoken123")
    path = app_paths().config_dir / "secrets.json"
    assert where == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert get_secret("hub-token") == "hf_exampletoken123"
    delete_secret("hub-token")
    assert get_secret("hub-token") is None
    assert "hf_exampletoken123" not in path.read_text()
