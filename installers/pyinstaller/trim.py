"""What the gbdesk bundle keeps of Qt and llama-cpp-python, and what it cuts.

The spec imports this module and filters PyInstaller's tables of contents through it. Each entry
is PyInstaller's ``(destination name, source path, type code)``. The rules are plain functions
so that the test suite checks them without building a bundle.

What gbdesk uses of Qt: widgets on X11 (xcb), Wayland, Windows and macOS, plus ``offscreen`` for
headless runs; SVG and PNG images (PNG is built into QtGui); SVG icons; the platform styles; the
desktop's input methods and file-dialog portal. Everything else PySide6 ships is cut, and a Qt
library is kept only when a kept binary links to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import PurePosixPath

TocEntry = tuple[str, str, str]

# Plugin folder -> the plugin names kept from it (name without "lib" prefix and suffix);
# None keeps the whole folder. Folders not listed are cut.
KEPT_QT_PLUGINS: dict[str, frozenset[str] | None] = {
    "platforms": frozenset(
        {
            "qxcb",
            "qwayland",
            "qwayland-generic",
            "qwayland-egl",
            "qoffscreen",
            "qwindows",
            "qcocoa",
            "qminimal",
        }
    ),
    "xcbglintegrations": None,
    "wayland-shell-integration": frozenset({"xdg-shell"}),
    "wayland-decoration-client": None,
    "wayland-graphics-integration-client": frozenset(
        {"qt-plugin-wayland-egl", "shm-emulation-server"}
    ),
    "platformthemes": frozenset({"qxdgdesktopportal"}),  # gtk3 would pull in GTK and cairo
    "platforminputcontexts": frozenset(
        {"composeplatforminputcontextplugin", "ibusplatforminputcontextplugin"}
    ),
    "imageformats": frozenset({"qsvg", "qico"}),
    "iconengines": frozenset({"qsvgicon"}),
    "styles": None,
}

# Python packages that a dependency imports optionally and gbdesk never needs at run time.
# Python packages that gbdesk's dependencies import only optionally, inside try blocks or for
# type checking, and that gbdesk never uses: PyInstaller would otherwise follow those imports
# (tqdm -> IPython -> jedi, llama_cpp -> openai -> pydantic and botocore, huggingface_hub ->
# PIL). Measured on Linux: about 120 MB of the untrimmed bundle.
EXCLUDED_MODULES = (
    "tkinter",
    "_tkinter",
    "IPython",
    "ipywidgets",
    "jedi",
    "parso",
    "pygments",
    "matplotlib",
    "pandas",
    "PIL",
    "openai",
    "pydantic",
    "pydantic_core",
    "jiter",
    "botocore",
    "boto3",
    "s3transfer",
    "pytest",
    "hypothesis",
    "setuptools",
    "pip",
    "pydoc_data",
    "lib2to3",
    "numpy.f2py",
    "llama_cpp.server",
)


def _plugin_stem(filename: str) -> str:
    """'libqxcb.so' -> 'qxcb', 'qwindows.dll' -> 'qwindows', 'libqcocoa.dylib' -> 'qcocoa'."""
    stem = filename.split(".", 1)[0]
    return stem[3:] if stem.startswith("lib") else stem


def qt_plugin_kept(dest_name: str) -> bool:
    """Whether a bundle path is kept by the Qt plugin rules (non-plugin paths always are)."""
    parts = PurePosixPath(dest_name.replace("\\", "/")).parts
    if "plugins" not in parts or "PySide6" not in parts:
        return True
    index = parts.index("plugins")
    if len(parts) < index + 3:
        return True
    folder, filename = parts[index + 1], parts[-1]
    if folder not in KEPT_QT_PLUGINS:
        return False
    names = KEPT_QT_PLUGINS[folder]
    return names is None or _plugin_stem(filename) in names


def is_qt_translation(dest_name: str) -> bool:
    """Qt's translation catalogues: gbdesk's interface is English only."""
    parts = PurePosixPath(dest_name.replace("\\", "/")).parts
    return "PySide6" in parts and "translations" in parts


def llama_library_kept(dest_name: str) -> bool:
    """Keep one copy of each llama.cpp library where the wheel ships three identical ones.

    On Linux the wheel has libX.so (opened by llama_cpp through ctypes), libX.so.0 (the name
    the other libraries link to) and libX.so.0.N.M (linked by nothing). The last is cut; the
    first two become one file and a symbolic link after the build (see ``link_duplicates``).
    """
    path = PurePosixPath(dest_name.replace("\\", "/"))
    if path.parts[:2] != ("llama_cpp", "lib"):
        return True
    suffixes = path.name.split(".so", 1)
    return not (len(suffixes) == 2 and suffixes[1].count(".") >= 2)


def is_linked_library(dest_name: str) -> bool:
    """A shared library that is in the bundle only because another binary links to it.

    Those are PyInstaller's collected dependencies (top-level ``lib*.so*`` files) and Qt's own
    libraries. Python extension modules, Qt plugins and the libraries llama_cpp opens through
    ctypes are loaded by name at run time, so they are never candidates for cutting.
    """
    path = PurePosixPath(dest_name.replace("\\", "/"))
    if path.suffix == ".pyd" or ".cpython-" in path.name or ".abi3." in path.name:
        return False
    if path.name.lower().startswith(("libpython", "python3")):  # the bootloader loads it
        return False
    if len(path.parts) == 1:
        return True
    return path.parts[:3] == ("PySide6", "Qt", "lib") or path.name.startswith(("libQt6", "Qt6"))


def unreachable_libraries(
    binaries: Iterable[TocEntry], imports_of: Callable[[str], Iterable[str]]
) -> set[str]:
    """Linked libraries in ``binaries`` that no kept binary needs, directly or through others.

    PyInstaller collects the dependencies of every plugin before the spec cuts plugins; this
    finds what only the cut plugins needed (GTK and cairo for the gtk3 theme, QtQuick for the
    virtual keyboard, ...).

    Args:
        binaries: the bundle's binaries after the plugin rules.
        imports_of: the library names a binary (by source path) links to.
    """
    entries = list(binaries)
    by_name = {PurePosixPath(dest.replace("\\", "/")).name: src for dest, src, _ in entries}
    roots = [src for dest, src, _ in entries if not is_linked_library(dest)]
    reached: set[str] = set()
    pending = list(roots)
    seen_sources: set[str] = set()
    while pending:
        source = pending.pop()
        if source in seen_sources:
            continue
        seen_sources.add(source)
        for name in imports_of(source):
            base = PurePosixPath(name.replace("\\", "/")).name
            if base in by_name and base not in reached:
                reached.add(base)
                pending.append(by_name[base])
    return {
        dest
        for dest, _, _ in entries
        if is_linked_library(dest) and PurePosixPath(dest.replace("\\", "/")).name not in reached
    }
