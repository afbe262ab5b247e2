#!/usr/bin/env python3
"""Exports a PyTorch MobileNetV3 state dict to an .mnv3 file: runs mnv3.convert.export_torchvision from this checkout.

The converter lives in the mnv3 Python package (python/mnv3/convert/export_torchvision.py); after
`pip install .` the same command is `mnv3-export-torchvision`. Options: --help."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "python"))

from mnv3.convert.export_torchvision import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
