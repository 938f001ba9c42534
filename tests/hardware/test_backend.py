"""The llama-cpp-python build, told from its files: the real install here and fake layouts."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from gbdesk.hardware.backend import (
    backends_from_library_names,
    load_backend_info,
    parse_system_info,
    probe_backend,
)
from tests.hardware.fakes import write_files

CPU_LINUX = ["libggml-base.so", "libggml-cpu.so", "libggml.so", "libllama.so", "libmtmd.so"]


def _package(tmp_path: Path, names: list[str], contents: bytes = b"\x7fELF") -> Path:
    lib = tmp_path / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    for name in names:
        (lib / name).write_bytes(contents)
    write_files(tmp_path / "llama_cpp", {"__init__.py": ""})
    return tmp_path / "llama_cpp"


def test_installed_cpu_build_is_read_from_its_files() -> None:
    info = probe_backend()
    assert info.installed
    assert info.version == importlib.metadata.version("llama-cpp-python")
    # The CPU build gbdesk installs carries llama.cpp's RPC backend (gbdesk worker).
    assert info.backends == ("cpu", "rpc")
    assert not info.gpu_offload
    assert Path(info.library_dir, "libggml-cpu.so").exists()


def test_the_loaded_library_agrees_with_the_files() -> None:
    loaded = load_backend_info()
    assert loaded.gpu_offload == probe_backend().gpu_offload
    assert loaded.system_info.startswith("CPU : ")
    assert parse_system_info(loaded.system_info) == ("cpu",)


@pytest.mark.parametrize(
    ("names", "backends"),
    [
        (CPU_LINUX, ("cpu",)),
        ([*CPU_LINUX, "libggml-cuda.so", "libggml-cuda.so.0"], ("cpu", "cuda")),
        (
            [
                "libggml-base.dylib",
                "libggml-cpu.dylib",
                "libggml-blas.dylib",
                "libggml-metal.dylib",
            ],
            ("cpu", "blas", "metal"),
        ),
        (["ggml-base.dll", "ggml-cpu.dll", "ggml-vulkan.dll", "llama.dll"], ("cpu", "vulkan")),
        (["libggml-cpu-haswell.so", "libggml-cpu-skylakex.so", "libggml-hip.so"], ("cpu", "hip")),
        (["libggml-base.so.0.25.3", "libggml-sycl.so.0.25.3"], ("sycl",)),
    ],
)
def test_backends_from_library_names(names: list[str], backends: tuple[str, ...]) -> None:
    assert backends_from_library_names(names) == backends


def test_version_comes_from_the_dist_info_folder(tmp_path: Path) -> None:
    package = _package(tmp_path, CPU_LINUX)
    (tmp_path / "llama_cpp_python-0.3.99.dist-info").mkdir()
    info = probe_backend(package)
    assert (info.installed, info.version) == (True, "0.3.99")


def test_cuda_layout_means_gpu_offload(tmp_path: Path) -> None:
    package = _package(tmp_path, [*CPU_LINUX, "libggml-cuda.so"])
    info = probe_backend(package, version="0.3.36")
    assert (info.backends, info.gpu_offload) == (("cpu", "cuda"), True)
    assert info.library_dir == str(package / "lib")


def test_single_library_layout_is_read_from_its_symbols(tmp_path: Path) -> None:
    package = _package(tmp_path, ["libllama.so"], b"\x7fELF...ggml_backend_cuda_init\x00...")
    info = probe_backend(package, version="0.2.90")
    assert (info.backends, info.gpu_offload) == (("cuda",), True)


def test_single_library_without_gpu_symbols_is_cpu(tmp_path: Path) -> None:
    package = _package(tmp_path, ["libllama.so"], b"\x7fELF...ggml_graph_compute\x00")
    assert probe_backend(package, version="0.2.90").backends == ("cpu",)


def test_system_info_backends() -> None:
    line = "CPU : AVX2 = 1 | CUDA : ARCHS = 890 | USE_GRAPHS = 1 | MTL : EMBED_LIBRARY = 1 |"
    assert parse_system_info(line) == ("cpu", "cuda", "metal")
