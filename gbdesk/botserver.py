"""Reading and writing botserver's configuration: the bot's ``config.csv`` and the ``.env`` file.

botserver reads its LLM settings from the environment (``LLM_URL``, ``LLM_MODEL``, ``LLM_KEY``,
usually set through a ``.env`` file) and from each bot's ``<bot>.gbai/<bot>.gbot/config.csv``
(``key,value`` lines). gbdesk changes only the keys it owns: every other line, comment, blank
line, line ending and the order of lines stay byte-for-byte as they were. Files are replaced
atomically (temporary file + ``os.replace``), so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from gbdesk.errors import ConfigError

# A line `KEY=value` or `export KEY=value`, with optional spaces around the key and `=`.
_ENV_LINE = re.compile(
    r"^(?P<lead>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=(?P<rest>.*)$"
)
_LINES = re.compile(r"[^\n]*\n|[^\n]+\Z")
# \Z, not $: $ also matches before a final newline ("KEY\n" would pass).
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# Values made of these characters need no quoting in any dotenv dialect.
_ENV_BARE = re.compile(r"^[A-Za-z0-9_./:@%+,=?&~*^!-]*\Z")
_CSV_HEADER = ("name", "value")
# A new file may hold DATABASE_URL or an API key: only its owner may read it.
_NEW_FILE_MODE = 0o600
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"  # bytes that are not UTF-8 survive a round trip untouched


def _read_lines(path: Path) -> list[str]:
    """The file's lines with their own line endings, or [] when it does not exist."""
    try:
        with open(path, encoding=_ENCODING, errors=_ERRORS, newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc}", fix="check the path and its permissions"
        ) from exc
    # Only \n ends a line (str.splitlines would also split on \x1e, \u2028 and friends).
    return _LINES.findall(text)


def _line_ending(lines: list[str]) -> str:
    """The line ending most lines use (\\n for a new file)."""
    crlf = sum(1 for line in lines if line.endswith("\r\n"))
    return "\r\n" if crlf * 2 > len(lines) else "\n"


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, keeping an existing file's mode (0600 for a new one)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = _NEW_FILE_MODE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc}", fix="check the folder's permissions"
        ) from exc
    try:
        with os.fdopen(fd, "w", encoding=_ENCODING, errors=_ERRORS, newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ConfigError(
                f"cannot write {path}: {exc}", fix="check the folder's permissions"
            ) from exc
        raise


def _updated_lines(
    lines: list[str], replace_line: Callable[[str], tuple[str, str] | None]
) -> tuple[list[str], list[str]]:
    """Apply ``replace_line(line) -> new line | None`` to each line; return (lines, keys seen)."""
    seen: list[str] = []
    result: list[str] = []
    for line in lines:
        replaced = replace_line(line)
        if replaced is None:
            result.append(line)
        else:
            key, new_line = replaced
            seen.append(key)
            result.append(new_line)
    return result, seen


# ---------------------------------------------------------------------------------------------
# .env


def _decode_env_value(rest: str) -> str:
    """The value of a `KEY=rest` line as dotenv readers see it."""
    rest = rest.strip()
    if rest.startswith("'"):
        end = rest.find("'", 1)
        return rest[1:end] if end > 0 else rest[1:]
    if rest.startswith('"'):
        out: list[str] = []
        index = 1
        while index < len(rest):
            char = rest[index]
            if char == "\\" and index + 1 < len(rest):
                nxt = rest[index + 1]
                out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                index += 2
                continue
            if char == '"':
                break
            out.append(char)
            index += 1
        return "".join(out)
    # Unquoted: a ` #` starts a comment.
    comment = re.search(r"\s#", rest)
    return (rest[: comment.start()] if comment else rest).strip()


def _encode_env_value(value: str) -> str:
    """``value`` written so that dotenv readers (botserver's dotenvy included) read it back."""
    if _ENV_BARE.match(value):
        return value
    if "'" not in value and "\n" not in value and "\r" not in value:
        return f"'{value}'"  # single quotes: literal, no `$` expansion
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("$", "\\$")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )
    return f'"{escaped}"'


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``KEY=value`` pairs of a .env file ({} when it does not exist). Later lines win.

    Raises:
        ConfigError: the file exists but cannot be read.
    """
    values: dict[str, str] = {}
    for line in _read_lines(Path(path)):
        match = _ENV_LINE.match(line.rstrip("\r\n"))
        if match:
            values[match["key"]] = _decode_env_value(match["rest"])
    return values


def update_env_file(path: str | os.PathLike[str], values: Mapping[str, str]) -> None:
    """Set ``KEY=value`` lines in a .env file, leaving every other byte as it was.

    Existing keys are replaced in place (every occurrence, keeping an ``export`` prefix); new keys
    are appended in the order given. The file is created (mode 0600) when missing and replaced
    atomically.

    Raises:
        ConfigError: a key is not a valid variable name, a value holds a NUL byte, or the file
            cannot be read or written.
    """
    path = Path(path)
    for key, value in values.items():
        if not _ENV_KEY.match(key):
            raise ConfigError(
                f"{key!r} is not a valid environment variable name",
                fix="use letters, digits and underscores, not starting with a digit",
            )
        if "\0" in value:
            raise ConfigError(f"the value for {key} holds a NUL byte")
    lines = _read_lines(path)
    newline = _line_ending(lines)

    def replace_line(line: str) -> tuple[str, str] | None:
        body = line.rstrip("\r\n")
        match = _ENV_LINE.match(body)
        if not match or match["key"] not in values:
            return None
        ending = line[len(body) :]
        key = match["key"]
        return key, f"{match['lead']}{key}={_encode_env_value(values[key])}{ending}"

    result, seen = _updated_lines(lines, replace_line)
    missing = [key for key in values if key not in seen]
    if missing and result and not result[-1].endswith(("\n", "\r")):
        result[-1] += newline
    result.extend(f"{key}={_encode_env_value(values[key])}{newline}" for key in missing)
    _write_atomically(path, "".join(result))


# ---------------------------------------------------------------------------------------------
# config.csv


def _parse_csv_line(line: str) -> tuple[str, str] | None:
    """(key, value) of a `key,value` line; None for blank lines and comments."""
    body = line.rstrip("\r\n")
    if not body.strip() or body.lstrip().startswith("#") or "," not in body:
        return None
    try:
        row = next(csv.reader([body]))
    except (csv.Error, StopIteration):
        return None
    if len(row) < 2:
        return None
    # botserver splits on the first comma: an unquoted value may itself hold commas.
    if not body.split(",", 1)[1].lstrip().startswith('"'):
        key, value = body.split(",", 1)
        return key.strip(), value.strip()
    return row[0].strip(), ",".join(row[1:]).strip()


def _encode_csv_value(value: str) -> str:
    if any(char in value for char in ',"\n\r') or value != value.strip():
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow([value])
        return buffer.getvalue()
    return value


def _is_header(pair: tuple[str, str] | None) -> bool:
    return pair is not None and (pair[0].lower(), pair[1].lower()) == _CSV_HEADER


def read_config_csv(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``key,value`` pairs of a bot's config.csv ({} when missing); a ``name,value`` header
    is skipped. Later lines win.

    Raises:
        ConfigError: the file exists but cannot be read.
    """
    values: dict[str, str] = {}
    for line in _read_lines(Path(path)):
        pair = _parse_csv_line(line)
        if pair is not None and not _is_header(pair):
            values[pair[0]] = pair[1]
    return values


def update_config_csv(path: str | os.PathLike[str], values: Mapping[str, str]) -> None:
    """Set ``key,value`` lines in a bot's config.csv, leaving every other byte as it was.

    Same guarantees as :func:`update_env_file`: keys replaced in place, new ones appended,
    atomic replacement, a new file created with mode 0600 (and botserver's ``name,value`` header).

    Raises:
        ConfigError: a key is empty or holds a comma, quote or line break, a value holds a line
            break, or the file cannot be read or written.
    """
    path = Path(path)
    for key, value in values.items():
        if not key.strip() or key != key.strip() or any(c in key for c in ',"\n\r'):
            raise ConfigError(
                f"{key!r} is not a valid config.csv key",
                fix="use a key without commas, quotes, line breaks or surrounding spaces",
            )
        if "\n" in value or "\r" in value:
            raise ConfigError(f"the value for {key} holds a line break, which config.csv cannot")
    lines = _read_lines(path)
    newline = _line_ending(lines)

    def replace_line(line: str) -> tuple[str, str] | None:
        pair = _parse_csv_line(line)
        if pair is None or _is_header(pair) or pair[0] not in values:
            return None
        body = line.rstrip("\r\n")
        return pair[0], f"{pair[0]},{_encode_csv_value(values[pair[0]])}{line[len(body) :]}"

    result, seen = _updated_lines(lines, replace_line)
    if not result:
        result.append(f"{_CSV_HEADER[0]},{_CSV_HEADER[1]}{newline}")
    missing = [key for key in values if key not in seen]
    if missing and not result[-1].endswith(("\n", "\r")):
        result[-1] += newline
    result.extend(f"{key},{_encode_csv_value(values[key])}{newline}" for key in missing)
    _write_atomically(path, "".join(result))
