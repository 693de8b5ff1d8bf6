"""Hatch build hook: the wheel carries the default model (``models/default``) as ``edge_infer/_default_model``.

Ships ``manifest.json`` and exactly the files it lists (``model.int8.onnx`` only when the export kept it),
never ``model.keras``. Without an exported default model the wheel is built without one, with a warning.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = PurePosixPath("models/default")
TARGET = PurePosixPath("edge_infer/_default_model")


class DefaultModelHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install reads models/default from the checkout
        folder = Path(self.root) / SOURCE
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            self.app.display_warning(f"{manifest} not found: building a wheel WITHOUT the default model")
            return
        files = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
        names = ["manifest.json", *(entry["path"] for entry in files.values())]
        for name in names:
            path = folder / name
            if not path.is_file():
                raise FileNotFoundError(f"{path} is listed in {manifest} but missing")
            build_data["force_include"][str(path)] = str(TARGET / name)
