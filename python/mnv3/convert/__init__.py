"""Converters into the .mnv3 format and the reference data `mnv3 validate` compares against.

- :mod:`mnv3.convert.export_torchvision`: a PyTorch state dict (torchvision's or the
  walkthrough model's key names) to ``.mnv3``; needs torch.
- :mod:`mnv3.convert.import_tflite`: a float32, uint8 or int8 TFLite MobileNetV3 to
  ``.mnv3``; needs the ``tflite`` flatbuffer package.
- :mod:`mnv3.convert.quantize`: post-training quantization of a float ``.mnv3`` model to
  int8 (numpy only; Pillow for image folders).
- :mod:`mnv3.convert.golden`: a golden directory (input, reference logits and features)
  for ``mnv3 validate``.
- :mod:`mnv3.convert.modelfile`: the ``.mnv3`` reader and writer (docs/FORMAT.md).
- :mod:`mnv3.convert.arch`: the built-in architectures as data, and state-dict key names.
- :mod:`mnv3.convert.reference`: a float64 numpy forward pass of an ``.mnv3`` network.
- :mod:`mnv3.convert.quant`: the integer arithmetic of quantized models, as TFLite's
  reference kernels compute it.
- :mod:`mnv3.convert.walkthrough_model`: the paper's "walkthrough" MobileNetV3 in PyTorch.

None of them needs the compiled runtime (the scripts in tools/ run them from a checkout).
"""
