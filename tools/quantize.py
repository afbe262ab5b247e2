#!/usr/bin/env python3
"""Post-training quantization of a float .mnv3 model to int8: runs mnv3.convert.quantize from this checkout.

The converter lives in the mnv3 Python package (python/mnv3/convert/quantize.py); after
`pip install .` the same command is `mnv3-quantize`. Options: --help."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "python"))

from mnv3.convert.quantize import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
