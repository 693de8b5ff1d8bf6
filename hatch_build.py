"""Hatch build hook: the wheel carries each packaged model (``edge_infer/packaged.py``) as ``edge_infer/_models/NAME``.

Ships each model's ``manifest.json`` and the files it lists of the precisions ``packaged.py`` chooses (a
manifest filtered to those when it lists more), never ``model.keras``. A packaged model not exported yet in
the checkout is left out, with a warning; the wheel still builds.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path
from types import ModuleType

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _registry(root: Path) -> ModuleType:
    """``edge_infer/packaged.py`` read by path (standard library only), without importing the package."""
    spec = importlib.util.spec_from_file_location("_edge_infer_packaged", root / "edge_infer" / "packaged.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PackagedModelsHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install reads models/ from the checkout
        self._staging = tempfile.mkdtemp(prefix="edge-infer-wheel-")  # filtered manifests; removed in finalize
        try:
            include, warnings = _registry(Path(self.root)).wheel_contents(Path(self.root), Path(self._staging))
        except BaseException:
            shutil.rmtree(self._staging, ignore_errors=True)
            raise
        for warning in warnings:
            self.app.display_warning(warning)
        build_data["force_include"].update(include)

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        staging = getattr(self, "_staging", None)
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
