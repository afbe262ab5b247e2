"""Imports torchvision's model definitions in environments where its compiled operators do
not match the installed torch (torchvision installed with --no-deps): registering fake
kernels for its C++ ops is turned into a no-op, and when Pillow is absent a stand-in module
satisfies torchvision's import-time references (no image I/O is used here).

    from mnv3.convert._torchvision_compat import import_torchvision
    tv = import_torchvision()
    model = tv.models.mobilenet_v3_large()
"""
from __future__ import annotations

import importlib.util
import sys
import types


class _Placeholder:
    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return _Placeholder()

    def __call__(self, *args, **kwargs):
        return _Placeholder()

    def __mro_entries__(self, bases):
        return (object,)


def _stub_module(name: str) -> types.ModuleType:
    mod = types.ModuleType(name)

    def __getattr__(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Placeholder()

    mod.__getattr__ = __getattr__
    return mod


def _install_pillow_stub() -> None:
    pil = _stub_module("PIL")
    pil.__path__ = []
    pil.__version__ = "0.0.0"
    sys.modules["PIL"] = pil
    for sub in ("Image", "ImageColor", "ImageDraw", "ImageFont", "ImageOps", "ImageEnhance",
                "ImageFilter", "ImageFile"):
        mod = _stub_module("PIL." + sub)
        sys.modules["PIL." + sub] = mod
        setattr(pil, sub, mod)


def import_torchvision():
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    import torch

    original = getattr(torch.library, "register_fake", None)
    torch.library.register_fake = lambda *args, **kwargs: (lambda fn: fn)
    try:
        if importlib.util.find_spec("PIL") is None:
            _install_pillow_stub()
        importlib.import_module("torchvision")
    finally:
        if original is not None:
            torch.library.register_fake = original
    return sys.modules["torchvision"]
