"""Encrypted connection strings, masking, parsing, and the ISO region list."""

from __future__ import annotations

import stat

import pytest

from gbdesk.paths import app_paths
from gbdesk.secrets import set_secret
from gbdesk.shard import crypto
from gbdesk.shard.connection import mask, parse, strip_password, with_password
from gbdesk.shard.errors import InvalidShardOptionError, ShardError
from gbdesk.shard.regions import countries, validate_region

URL = "postgresql://bot:S3cr%40t-pw@db.example:6543/botserver"


def test_encrypted_strings_round_trip_and_hide_the_password() -> None:
    stored = crypto.encrypt(URL)
    assert stored.startswith("enc:v1:")
    assert "S3cr" not in stored and "db.example" not in stored
    assert crypto.decrypt(stored) == URL
    assert crypto.encrypt(URL) != stored  # a fresh IV each time


def test_the_key_lives_in_a_0600_file_without_keyring() -> None:
    crypto.encrypt(URL)
    secrets_file = app_paths().config_dir / "secrets.json"
    assert crypto.KEY_SECRET in secrets_file.read_text()
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600


def test_another_key_or_no_key_is_a_clear_error() -> None:
    stored = crypto.encrypt(URL)
    from cryptography.fernet import Fernet

    set_secret(crypto.KEY_SECRET, Fernet.generate_key().decode())
    with pytest.raises(ShardError, match="another key"):
        crypto.decrypt(stored)
    (app_paths().config_dir / "secrets.json").unlink()
    with pytest.raises(ShardError, match="missing") as info:
        crypto.decrypt(stored)
    assert info.value.fix


def test_plain_values_pass_through() -> None:
    assert crypto.decrypt("postgresql://shard1.db:5432/gb") == "postgresql://shard1.db:5432/gb"


def test_parse_gives_address_and_password() -> None:
    address, password = parse(URL)
    assert str(address) == "bot@db.example:6543/botserver"
    assert password == "S3cr@t-pw"
    address, password = parse("host=h port=7 user=u dbname=d password='p w'")
    assert (address.host, address.port, address.user, address.database) == ("h", 7, "u", "d")
    assert password == "p w"


def test_mask_hides_raw_quoted_and_keyword_passwords() -> None:
    text = f"failed for {URL} (password S3cr@t-pw) password=other"
    masked = mask(text, "S3cr@t-pw")
    assert "S3cr" not in masked and "other" not in masked
    assert "db.example:6543" in masked


def test_strip_and_restore_password() -> None:
    bare = strip_password(URL)
    assert bare == "postgresql://bot@db.example:6543/botserver"
    assert parse(with_password(bare, "S3cr@t-pw"))[1] == "S3cr@t-pw"
    assert parse(with_password("host=h user=u", "it's"))[1] == "it's"


def test_an_invalid_url_is_refused_without_echoing_the_password() -> None:
    with pytest.raises(InvalidShardOptionError) as info:
        parse("postgresql://bot:S3cret-x@db:notaport/x")
    assert "S3cret-x" not in str(info.value)


def test_regions_are_the_iso_alpha3_list() -> None:
    codes = countries()
    assert len(codes) == 249
    assert codes["USA"] == "United States"
    assert validate_region("bra") == "BRA"
    for bad in ("XXX", "US", "", "USAA"):
        with pytest.raises(InvalidShardOptionError, match="alpha-3"):
            validate_region(bad)
