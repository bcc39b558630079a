"""The API keys file (khala/gateway/keys.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from khala.errors import ConfigError
from khala.gateway.keys import add_key, digest, load_keys, revoke_key


def test_keys_file_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.toml")
    key, entry = add_key(path, 7, "submit")
    assert key.startswith(f"khala_{entry.id}_") and len(key) > 40
    stored = load_keys(path)
    assert stored[entry.id].sha256 == digest(key) and stored[entry.id].user == 7
    assert key not in Path(path).read_text()
    assert (Path(path).stat().st_mode & 0o777) == 0o600
    with pytest.raises(ConfigError):
        add_key(path, 1, "root")
    assert revoke_key(path, entry.id) and not revoke_key(path, entry.id)
    assert load_keys(path) == {}


def test_malformed_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text('[keys.a]\nsha256 = "x"\nuser = 1\nrole = "owner"\n')
    with pytest.raises(ConfigError, match="unknown role"):
        load_keys(str(path))
