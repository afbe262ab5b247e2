"""Command-line options the converters share."""
from __future__ import annotations

from typing import Dict

#: Spellings of a weight element type, to the canonical name: the converters' float16 is
#: the command-line tool's fp16 (``--precision fp16-weights``), so both are accepted.
WEIGHT_DTYPE_NAMES: Dict[str, str] = {
    "float32": "float32", "fp32": "float32", "f32": "float32",
    "float16": "float16", "fp16": "float16", "f16": "float16", "half": "float16",
}


def weights_dtype(value: str) -> str:
    """argparse type of ``--weights-dtype``: the canonical name (``float32``, ``float16``)
    of any accepted spelling. Other values are returned as given, so that argparse's
    ``choices`` refuses them, listing the canonical names."""
    key = value.strip().lower()
    return WEIGHT_DTYPE_NAMES.get(key, key)


#: What ``--help`` says about the other spellings.
WEIGHTS_DTYPE_SPELLINGS = "fp32 and fp16 are accepted for float32 and float16"
