#!/usr/bin/env python3
"""Imports a TFLite MobileNetV3 into an .mnv3 file: runs mnv3.convert.import_tflite from this checkout.

The converter lives in the mnv3 Python package (python/mnv3/convert/import_tflite.py); after
`pip install .` the same command is `mnv3-import-tflite`. Options: --help."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "python"))

from mnv3.convert.import_tflite import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
