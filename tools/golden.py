#!/usr/bin/env python3
"""Writes a golden directory for an .mnv3 model: runs mnv3.convert.golden from this checkout.

The converter lives in the mnv3 Python package (python/mnv3/convert/golden.py); after
`pip install .` the same command is `mnv3-golden`. Options: --help."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "python"))

from mnv3.convert.golden import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
