"""float16 weights in the Python tools: .mnv3 1.1 files with float16 tensors, the
exporter's --weights-dtype, and the native import of a float16-quantized TFLite graph
(FLOAT16 weights behind DEQUANTIZE ops), checked against LiteRT running that graph."""
import os
import struct
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "python"))

from mnv3.convert import modelfile as mnv3file  # noqa: E402
from mnv3.convert import reference as mnv3ref  # noqa: E402
from mnv3.convert.arch import describe  # noqa: E402
from mnv3.convert.modelfile import FormatError, with_weight_dtype  # noqa: E402


def random_net(seed=0):
    rng = np.random.default_rng(seed)
    net, _ = describe("small", "torchvision", 0.5, 7)
    for c in net.convs():
        c.weight = rng.normal(0, 0.2, c.weight_shape()).astype(np.float32)
        c.bias = rng.normal(0, 0.1, c.out_channels).astype(np.float32)
    return net


def tensor_dtypes(data):
    (count,) = struct.unpack_from("<I", data, 28)
    for i in range(count):
        typ, _, off, size = struct.unpack_from("<2I2Q", data, 64 + 24 * i)
        if typ == mnv3file.SECTION_TENSORS:
            (n,) = struct.unpack_from("<I", data, off)
            return [struct.unpack_from("<I", data, off + 8 + 24 * k)[0] for k in range(n)]
    raise AssertionError("no TENSORS section")


def test_float16_file_round_trip():
    net = random_net()
    full = mnv3file.to_bytes(net)
    ref = [c.weight.astype(np.float16) for c in net.convs()]
    with_weight_dtype(net, "float16")
    data = mnv3file.to_bytes(net)
    assert struct.unpack_from("<2H", data, 8) == (1, 1) and struct.unpack_from("<H", full, 10) == (0,)
    dtypes = tensor_dtypes(data)
    assert dtypes[0::2] == [mnv3file.DTYPE_F16] * len(ref)  # weights; biases float32
    assert dtypes[1::2] == [mnv3file.DTYPE_F32] * len(ref)
    assert len(data) < 0.56 * len(full)
    back = mnv3file.from_bytes(data)
    for c, w in zip(back.convs(), ref):
        assert c.weight.dtype == np.float16
        assert np.array_equal(c.weight.reshape(-1).view(np.uint16), w.reshape(-1).view(np.uint16))
    assert mnv3file.to_bytes(back) == data  # canonical
    # float32 again: exactly the float16 values, a 1.0 file.
    with_weight_dtype(back, "float32")
    assert struct.unpack_from("<H", mnv3file.to_bytes(back), 10) == (0,)
    assert np.array_equal(back.stem.weight, ref[0].astype(np.float32))


def test_float16_refusals():
    net = random_net()
    net.blocks[0].depthwise.weight[0, 0, 3] = 70000.0
    with pytest.raises(FormatError, match=r"block 0 depthwise: weight element 3 .*float16"):
        with_weight_dtype(net, "float16")
    net = random_net()
    with_weight_dtype(net, "float16")
    net.blocks[1].project.weight = net.blocks[1].project.weight.astype(np.float32)
    with pytest.raises(FormatError, match="block 1 project: float32 weights"):
        mnv3file.to_bytes(net)
    net.blocks[1].project.weight = net.blocks[1].project.weight.astype(np.float16)
    net.blocks[1].project.weight[0, 0] = np.inf
    with pytest.raises(FormatError, match="block 1 project: weight element 0 is infinite"):
        mnv3file.to_bytes(net)


def test_export_torchvision_float16(tmp_path):
    pytest.importorskip("torch")
    from mnv3.convert import export_torchvision
    out16, out32 = tmp_path / "h.mnv3", tmp_path / "f.mnv3"
    args = ["--arch", "small", "--flavor", "torchvision", "--width-mult", "0.5",
            "--num-classes", "10", "--seed", "3"]
    assert export_torchvision.main(args + ["-o", str(out32)]) == 0
    assert export_torchvision.main(args + ["--weights-dtype", "float16", "-o", str(out16)]) == 0
    a, b = mnv3file.read_file(str(out32)), mnv3file.read_file(str(out16))
    assert os.path.getsize(out16) < 0.56 * os.path.getsize(out32)
    for x, y in zip(a.convs(), b.convs()):
        assert np.array_equal(x.weight.astype(np.float16), y.weight)
        assert np.array_equal(x.bias, y.bias)
    # fp16 (the spelling of the command-line tool's --precision fp16-weights) is float16
    out_fp16, out_fp32 = tmp_path / "h2.mnv3", tmp_path / "f2.mnv3"
    assert export_torchvision.main(args + ["--weights-dtype", "fp16", "-o", str(out_fp16)]) == 0
    assert export_torchvision.main(args + ["--weights-dtype", "FP32", "-o", str(out_fp32)]) == 0
    assert out_fp16.read_bytes() == out16.read_bytes()
    assert out_fp32.read_bytes() == out32.read_bytes()


@pytest.mark.parametrize("module", ["export_torchvision", "import_tflite"])
def test_weights_dtype_spellings(module, capsys):
    """--weights-dtype takes float16/fp16/f16 and float32/fp32/f32 (any case) as one
    canonical value; --help shows the canonical names; anything else is refused with them."""
    import importlib
    m = importlib.import_module(f"mnv3.convert.{module}")
    base = (["--arch", "small", "--flavor", "torchvision", "-o", "x.mnv3"]
            if module == "export_torchvision" else ["m.tflite", "-o", "x.mnv3"])
    for spelling, canonical in [("float16", "float16"), ("fp16", "float16"), ("F16", "float16"),
                                ("float32", "float32"), ("fp32", "float32"), ("f32", "float32")]:
        args = m.parser().parse_args(base + ["--weights-dtype", spelling])
        assert args.weights_dtype == canonical
    help_text = m.parser().format_help()
    assert "{float32,float16}" in help_text or "{auto,float32,float16}" in help_text
    assert "fp16" in help_text  # the other spelling is mentioned, not listed as a choice
    with pytest.raises(SystemExit):
        m.parser().parse_args(base + ["--weights-dtype", "fp8"])
    assert "invalid choice: 'fp8'" in capsys.readouterr().err


def test_import_float16_tflite(tmp_path):
    """A float16-quantized graph as TensorFlow's converter writes it, from the same torch
    model as a float32 one: imported natively, its weights are exactly the graph's
    float16 values, and the numpy forward pass of the import matches LiteRT on the graph."""
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    pytest.importorskip("tflite")
    pytest.importorskip("flatbuffers")
    from mnv3.convert import import_tflite
    from mnv3.convert.export_torchvision import random_model
    from peers_tflite_builder import build_tflite
    model = random_model("small", "torchvision", 0.5, 10, 5).eval()
    path16, path32 = tmp_path / "h.tflite", tmp_path / "f.tflite"
    path16.write_bytes(build_tflite(model, 96, "float16"))
    path32.write_bytes(build_tflite(model, 96))
    net16 = import_tflite.import_tflite(str(path16))
    net32 = import_tflite.import_tflite(str(path32))
    assert net16.stem.weight.dtype == np.float16 and net32.stem.weight.dtype == np.float32
    for x, y in zip(net32.convs(), net16.convs()):
        # The graph rounded float64 to float16 directly, the float32 graph's values round
        # again: at most one unit apart (where the first rounding made a tie).
        ulps = np.abs(x.weight.astype(np.float16).view(np.int16).astype(np.int32) -
                      y.weight.view(np.int16).astype(np.int32))
        assert ulps.max() <= 1 and np.mean(ulps) < 1e-3
        assert y.bias.dtype == np.float32
    forced = import_tflite.import_tflite(str(path16), weights_dtype="float32")
    assert forced.stem.weight.dtype == np.float32
    out = tmp_path / "h.mnv3"
    assert import_tflite.main([str(path16), "-o", str(out)]) == 0
    net = mnv3file.read_file(str(out))
    assert net.stem.weight.dtype == np.float16
    x = np.random.default_rng(1).uniform(-1, 1, (1, 96, 96, 3)).astype(np.float32)
    logits, _ = mnv3ref.forward(net, x, mnv3file.NHWC)
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        pytest.skip("ai-edge-litert absent: import checked, LiteRT comparison skipped")
    it = Interpreter(model_path=str(path16))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    want = it.get_tensor(it.get_output_details()[0]["index"])
    err = np.max(np.abs(logits - want)) / np.max(np.abs(want))
    assert err < 1e-4, err
