"""mnv3: MobileNetV3 inference. The converters are in :mod:`mnv3.convert`."""
