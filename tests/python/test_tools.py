"""Tests of the Python tools: .mnv3 round trip, architecture parameter counts, exporter
errors, the TFLite importer on the real model (when ../shared is present)."""
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tools")
sys.path.insert(0, TOOLS)
sys.path.insert(0, os.path.join(ROOT, "python"))

from mnv3.convert import modelfile as mnv3file  # noqa: E402
from mnv3.convert import reference as mnv3ref  # noqa: E402
from mnv3.convert.arch import describe, torch_param_count  # noqa: E402
from mnv3.convert.modelfile import FormatError  # noqa: E402

SHARED = os.environ.get("MNV3_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
TFLITE_MODEL = os.path.join(SHARED, "models", "mobilenet_v3_small_1.0_224_uint8.tflite")


def filled(arch="small", flavor="torchvision", width=0.5, classes=7, seed=0):
    """An architecture skeleton with random weights, biases and some finite clamps."""
    rng = np.random.default_rng(seed)
    net, _ = describe(arch, flavor, width, classes)
    for c in net.convs():
        c.weight = rng.normal(0, 0.2, c.weight_shape()).astype(np.float32)
        c.bias = rng.normal(0, 0.1, c.out_channels).astype(np.float32)
    net.blocks[0].residual_clamp = (-3.0, 5.0)
    net.stem.pre_clamp = (-8.0, 8.0)
    net.pool_clamp = (0.0, 100.0)
    net.labels = [f"class {i}" for i in range(classes)]
    return net


def same_network(a, b):
    assert mnv3file.to_bytes(a) == mnv3file.to_bytes(b)
    for x, y in zip(a.convs(), b.convs()):
        assert np.array_equal(x.weight.reshape(-1), y.weight.reshape(-1))


# --- file format ---------------------------------------------------------------------------

def test_round_trip_and_layout():
    net = filled()
    data = mnv3file.to_bytes(net)
    assert data[:8] == b"MNV3\x00MDL"
    major, minor, bom, size, hsize, nsec, toff, crc, flags = struct.unpack_from(
        "<2HIQIIQII", data, 8)
    assert (major, minor, bom, size, hsize, toff, flags) == (1, 0, 0x01020304, len(data), 64,
                                                            64, 0)
    assert nsec == 4
    assert crc == zlib.crc32(data[64:]) & 0xFFFFFFFF
    # Every tensor 64-byte aligned, in canonical conv order, weight before bias.
    sections = {struct.unpack_from("<I", data, 64 + 24 * i)[0]:
                struct.unpack_from("<2Q", data, 64 + 24 * i + 8) for i in range(nsec)}
    for off, _ in sections.values():
        assert off % 8 == 0
    toff, _ = sections[2]
    count = struct.unpack_from("<I", data, toff)[0]
    convs = net.convs()
    assert count == 2 * len(convs)
    for i in range(count):
        dtype, _, off, n = struct.unpack_from("<2I2Q", data, toff + 8 + 24 * i)
        assert dtype == 1 and off % 64 == 0
        c = convs[i // 2]
        assert n == (c.weight_count() if i % 2 == 0 else c.out_channels)
    back = mnv3file.from_bytes(data)
    same_network(net, back)
    assert back.labels == net.labels
    assert back.blocks[0].residual_clamp == (-3.0, 5.0)
    assert back.stem.pre_clamp == (-8.0, 8.0)
    for f in ("height", "width", "channel_order", "layout"):
        assert getattr(back.preprocess, f) == getattr(net.preprocess, f)
    for f in ("scale", "mean", "std"):  # stored as float32
        assert np.allclose(getattr(back.preprocess, f), getattr(net.preprocess, f), rtol=1e-7)


def test_file_round_trip(tmp_path):
    net = filled("large", "walkthrough", 0.35, 3)
    net.labels = None
    p = tmp_path / "m.mnv3"
    mnv3file.write_file(net, str(p))
    back = mnv3file.read_file(str(p))
    assert back.labels is None
    same_network(net, back)


def test_reader_refuses_corruption():
    data = bytearray(mnv3file.to_bytes(filled()))
    bad = bytearray(data)
    bad[200] ^= 1
    with pytest.raises(FormatError, match="CRC"):
        mnv3file.from_bytes(bad)
    with pytest.raises(FormatError, match="magic"):
        mnv3file.from_bytes(b"XXXX" + bytes(data[4:]))
    with pytest.raises(FormatError):
        mnv3file.from_bytes(bytes(data[:-4]))
    bad = bytearray(data)
    bad[8:10] = struct.pack("<H", 2)
    with pytest.raises(FormatError, match="version"):
        mnv3file.from_bytes(bad)


def test_writer_validates():
    net = filled()
    net.blocks[1].project.in_channels += 1
    with pytest.raises(FormatError):
        mnv3file.to_bytes(net)
    net = filled()
    net.labels = ["a"]
    with pytest.raises(FormatError, match="labels"):
        mnv3file.to_bytes(net)


def test_non_finite_weights_refused():
    net = filled()
    net.blocks[2].depthwise.weight.reshape(-1)[3] = np.nan
    with pytest.raises(FormatError, match="block 2 depthwise: weight element 3 is NaN"):
        mnv3file.to_bytes(net)
    net = filled()
    net.head[1].bias[4] = -np.inf
    with pytest.raises(FormatError, match="head 1: bias element 4 is infinite"):
        mnv3file.to_bytes(net)
    # The reader refuses such a file too (written by hand: the writer would not).
    net = filled()
    data = bytearray(mnv3file.to_bytes(net))
    stem_weight = net.stem.weight.astype("<f4").tobytes()
    at = bytes(data).index(stem_weight)
    data[at:at + 4] = struct.pack("<f", float("inf"))
    data[40:44] = struct.pack("<I", zlib.crc32(bytes(data[64:])) & 0xFFFFFFFF)
    with pytest.raises(FormatError, match="stem: weight element 0 is infinite"):
        mnv3file.from_bytes(bytes(data))


def test_same_padding_ignores_stored_pads():
    from mnv3.convert.modelfile import PAD_EXPLICIT, PAD_SAME
    net = filled()
    for c in (net.stem, net.blocks[0].depthwise):
        c.padding_mode = PAD_SAME
    x = np.random.default_rng(1).normal(size=(1, 3, 48, 40)).astype(np.float32)
    want, _ = mnv3ref.forward(net, x)
    data = mnv3file.to_bytes(net)  # the stored (k-1)/2 pads are written as 0
    net.stem.pads = (5, 3, 9, 4)  # >= kernel: meaningless under SAME, and ignored
    assert mnv3file.to_bytes(net) == data
    assert np.array_equal(mnv3ref.forward(net, x)[0], want)
    back = mnv3file.from_bytes(data)
    assert back.stem.pads == (0, 0, 0, 0) and back.blocks[0].depthwise.pads == (0, 0, 0, 0)
    assert np.array_equal(mnv3ref.forward(back, x)[0], want)
    # A file storing such pads under SAME loads; the same pads under explicit do not.
    buf = bytearray(data)
    stem_at = struct.unpack_from("<Q", buf, 64 + 8)[0] + 24  # NETWORK section + header
    assert struct.unpack_from("<I", buf, stem_at + 20)[0] == PAD_SAME
    struct.pack_into("<4I", buf, stem_at + 24, 5, 3, 9, 4)
    struct.pack_into("<I", buf, 40, zlib.crc32(bytes(buf[64:])) & 0xFFFFFFFF)
    assert mnv3file.from_bytes(bytes(buf)).stem.pads == (0, 0, 0, 0)
    struct.pack_into("<I", buf, stem_at + 20, PAD_EXPLICIT)
    struct.pack_into("<I", buf, 40, zlib.crc32(bytes(buf[64:])) & 0xFFFFFFFF)
    with pytest.raises(FormatError, match="must be smaller than kernel"):
        mnv3file.from_bytes(bytes(buf))


def test_class_count_beyond_channel_limit():
    # The last head layer's outputs are classes (up to 100000), not feature-map channels.
    net = filled("small", "torchvision", 0.25, 21843)
    back = mnv3file.from_bytes(mnv3file.to_bytes(net))
    assert back.num_classes == 21843
    same_network(net, back)
    net = filled("small", "torchvision", 0.25, 100001)
    with pytest.raises(FormatError, match="out_channels 100001 outside 1..100000"):
        mnv3file.to_bytes(net)
    net = filled("small", "torchvision", 0.25, 10)
    net.head[0].out_channels = net.head[1].in_channels = 16385
    with pytest.raises(FormatError, match="head 0: out_channels 16385 outside 1..16384"):
        mnv3file.validate(net)


# --- architectures ---------------------------------------------------------------------------

@pytest.mark.parametrize("arch,flavor,count", [
    ("large", "torchvision", 5_483_032),
    ("small", "torchvision", 2_542_856),
    ("large", "walkthrough", 5_476_416),
])
def test_parameter_counts(arch, flavor, count):
    net, slots = describe(arch, flavor, 1.0, 1000)
    assert torch_param_count(slots) == count
    for c, s in zip(net.convs(), slots):  # folded BatchNorms and plain biases
        if s.bn or s.bias:
            c.bias = np.zeros(c.out_channels, np.float32)
    assert net.params() == count




def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("arch,flavor,count", [
    ("large", "torchvision", 5_483_032),
    ("small", "torchvision", 2_542_856),
    ("large", "walkthrough", 5_476_416),
])
def test_torch_models_parameter_counts(arch, flavor, count):
    _torch()
    from mnv3.convert.export_torchvision import build_torch_model
    model = build_torch_model(arch, flavor, 1.0, 1000)
    assert sum(p.numel() for p in model.parameters()) == count


@pytest.mark.parametrize("arch,flavor,width", [("small", "torchvision", 0.75),
                                               ("small", "walkthrough", 0.5),
                                               ("large", "torchvision", 0.5)])
def test_export_matches_pytorch(arch, flavor, width):
    torch = _torch()
    from mnv3.convert.export_torchvision import (imagelike_input, network_from_state_dict,
                                                 random_model, torch_features)
    x = imagelike_input(2, 96, 64, 3)
    model = random_model(arch, flavor, width, 10, 5, x=x)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
        feats = torch_features(model, torch.from_numpy(x)).numpy()
    net = network_from_state_dict(arch, flavor, width, 10, model.state_dict())
    net = mnv3file.from_bytes(mnv3file.to_bytes(net))
    logits, f = mnv3ref.forward(net, x)
    assert np.abs(logits - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())
    assert np.abs(f - feats).max() <= 1e-4 * max(1.0, np.abs(feats).max())
    assert abs(ref).max() > 1.0  # realistic weights: logits far from zero


# torch.nn.Module.parameters() of tools/walkthrough_model.py with 1000 classes: every
# channel count, the head's included, is int(c * width).
WALKTHROUGH_PARAMS = {
    ("large", 0.35): 988_433, ("large", 0.5): 1_719_292, ("large", 0.75): 3_342_766,
    ("large", 1.0): 5_476_416, ("large", 1.25): 8_119_150,
    ("small", 0.35): 558_130, ("small", 0.5): 908_460, ("small", 0.75): 1_631_626,
    ("small", 1.0): 2_534_656, ("small", 1.25): 3_617_130,
}


@pytest.mark.parametrize("arch,width", sorted(WALKTHROUGH_PARAMS))
def test_walkthrough_parameter_counts(arch, width):
    net, slots = describe(arch, "walkthrough", width, 1000)
    assert torch_param_count(slots) == WALKTHROUGH_PARAMS[arch, width]
    hidden = int((1280 if arch == "large" else 1024) * width)
    assert net.head[0].out_channels == hidden and net.head[1].in_channels == hidden
    assert net.last_conv.out_channels == int((960 if arch == "large" else 576) * width)


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.25])
def test_walkthrough_widths_match_pytorch(width):
    torch = _torch()
    from mnv3.convert.export_torchvision import (build_torch_model, imagelike_input,
                                                 network_from_state_dict, random_model,
                                                 torch_features)
    for arch in ("large", "small"):
        model = build_torch_model(arch, "walkthrough", width, 1000)
        assert sum(p.numel() for p in model.parameters()) == WALKTHROUGH_PARAMS[arch, width]
        last = int((960 if arch == "large" else 576) * width)
        hidden = int((1280 if arch == "large" else 1024) * width)
        assert tuple(model.third_conv.conv.weight.shape) == (hidden, last, 1, 1)
        assert tuple(model.output.conv.weight.shape) == (1000, hidden, 1, 1)
        inputs = [imagelike_input(1, h, w, 11 + i) for i, (h, w) in enumerate(((64, 96),
                                                                              (112, 80)))]
        model = random_model(arch, "walkthrough", width, 10, 7, x=np.concatenate(
            [x[:, :, :64, :80] for x in inputs]))
        net = network_from_state_dict(arch, "walkthrough", width, 10, model.state_dict())
        net = mnv3file.from_bytes(mnv3file.to_bytes(net))
        assert net.params() == sum(p.numel() for p in model.parameters())
        # PyTorch in float64 against the float64 numpy evaluation: what remains is the
        # float32 rounding of the folded weights (~1e-5), far below any mismatch.
        model = model.double()
        for x in inputs:
            h, w = x.shape[2:]
            with torch.no_grad():
                ref = model(torch.from_numpy(x).double()).numpy()
                feats = torch_features(model, torch.from_numpy(x).double()).numpy()
            logits, f = mnv3ref.forward(net, x)
            where = f"{arch} width {width} at {h}x{w}"
            assert np.abs(logits - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max()), where
            assert np.abs(f - feats).max() <= 1e-4 * max(1.0, np.abs(feats).max()), where
            assert np.abs(ref).max() > 1.0  # realistic weights: logits far from zero


def test_exporter_key_errors(tmp_path):
    torch = _torch()
    from mnv3.convert.export_torchvision import (ExportError, build_torch_model,
                                                 network_from_state_dict)
    sd = build_torch_model("small", "walkthrough", 0.5, 10).state_dict()
    network_from_state_dict("small", "walkthrough", 0.5, 10, sd)
    missing = dict(sd)
    del missing["blocks.3.semodule.fc1.weight"]
    with pytest.raises(ExportError, match=r"missing key 'blocks\.3\.semodule\.fc1\.weight'"):
        network_from_state_dict("small", "walkthrough", 0.5, 10, missing)
    wrong = dict(sd)
    wrong["second_conv.bn.running_var"] = torch.ones(7)
    with pytest.raises(ExportError, match=r"'second_conv\.bn\.running_var' has shape"):
        network_from_state_dict("small", "walkthrough", 0.5, 10, wrong)
    extra = dict(sd)
    extra["blocks.99.conv0.conv.weight"] = torch.ones(1)
    with pytest.raises(ExportError, match="unexpected key"):
        network_from_state_dict("small", "walkthrough", 0.5, 10, extra)
    # The command line says which key and exits non-zero.
    bad = tmp_path / "bad.pth"
    torch.save(missing, str(bad))
    r = subprocess.run([sys.executable, os.path.join(TOOLS, "export_torchvision.py"),
                        "--arch", "small", "--flavor", "walkthrough", "--width-mult", "0.5",
                        "--num-classes", "10", "--weights", str(bad), "-o",
                        str(tmp_path / "x.mnv3")], capture_output=True, text=True)
    assert r.returncode != 0
    assert "blocks.3.semodule.fc1.weight" in r.stderr
    tv = build_torch_model("small", "torchvision", 1.0, 10).state_dict()
    with pytest.raises(ExportError, match="classifier.3.weight"):
        network_from_state_dict("small", "torchvision", 1.0, 1000, tv)


# --- TFLite import ------------------------------------------------------------------------------

@pytest.mark.skipif(not os.path.exists(TFLITE_MODEL), reason="../shared TFLite model absent")
def test_import_real_tflite_model():
    pytest.importorskip("tflite")
    from mnv3.convert.export_torchvision import read_labels
    from mnv3.convert.golden import preprocess_uint8
    from mnv3.convert.import_tflite import import_tflite
    labels = read_labels(os.path.join(SHARED, "models", "imagenet_labels_1001.txt"))
    net = import_tflite(TFLITE_MODEL, labels, float_model=True)
    net = mnv3file.from_bytes(mnv3file.to_bytes(net))
    assert len(net.blocks) == 11 and net.num_classes == 1001
    p = net.preprocess
    assert p.layout == mnv3file.NHWC and p.mean == (128.0, 128.0, 128.0)
    assert abs(p.std[0] - 127.0) < 1e-3 and p.scale == 1.0
    for name, want in (("chelsea", 286), ("coffee", 968)):
        img = np.load(os.path.join(SHARED, "images", f"{name}_224_nhwc_uint8.npy"))
        ref = np.load(os.path.join(SHARED, "images", f"{name}_tflite_uint8_probs.npy"))[0]
        logits, _ = mnv3ref.forward(net, preprocess_uint8(net, img, mnv3file.NHWC),
                                    mnv3file.NHWC)
        top5 = set(np.argsort(-logits[0])[:5])
        assert int(np.argmax(logits[0])) == want
        assert len(top5 & set(np.argsort(-ref)[:5])) >= 3


# --- peer benchmark, int8 rows (tools/bench_peers.py --precision int8) -------------------------

def test_bench_peers_calibration_inputs():
    import bench_peers as bp
    rng = np.random.default_rng(3)
    photos = [rng.integers(0, 256, (1, 32, 40, 3), dtype=np.uint8) for _ in range(2)]
    cal = bp.photo_variations(photos, 6, 0, originals=True)
    assert len(cal) == 6 and all(v.shape == (1, 32, 40, 3) and v.dtype == np.uint8 for v in cal)
    assert np.array_equal(cal[0], photos[0]) and np.array_equal(cal[1], photos[1])
    again = bp.photo_variations(photos, 6, 0, originals=True)
    assert all(np.array_equal(a, b) for a, b in zip(cal, again))  # deterministic
    held_out = bp.photo_variations(photos, 3, 1)
    assert not any(np.array_equal(h, c) for h in held_out for c in cal)
    x = bp.imagenet_nchw(photos[0])
    assert x.shape == (1, 3, 32, 40) and x.dtype == np.float32
    want = (photos[0][0, 5, 7, 2] / 255.0 - 0.406) / 0.225
    assert abs(x[0, 2, 5, 7] - want) < 1e-5


def test_bench_peers_quantized_helpers():
    import bench_peers as bp
    q = bp.quantize(np.array([-2.0, -0.01, 0.0, 0.3, 9.0]), 0.01, -1, np.int8)
    assert q.dtype == np.int8 and q.tolist() == [-128, -2, -1, 29, 127]
    a, b = np.array([-128, 5], dtype=np.int8), np.array([127, 5], dtype=np.int8)
    assert bp.quantized_max_diff(a, b) == 255  # no int8 wrap-around
    assert bp.top1_agreement([np.array([0, 3, 1]), np.array([2, 0, 0])],
                             [np.array([1, 5, 0]), np.array([0, 0, 1])]) == 1
    r = bp.int8_ratios({"mnv3-int8": 1.0, "onnxruntime-int8": 4.0, "onnxruntime": 2.0})
    assert r == {"mnv3-int8 / onnxruntime-int8": 0.25, "onnxruntime-int8 / onnxruntime": 2.0}


def test_bench_peers_int8_skips_say_why():
    import bench_peers as bp
    reason = bp.ncnn_int8_skip_reason(lambda tool: None)
    assert "ncnn2table and ncnn2int8 not found" in reason
    assert "ncnn2int8 not found" in bp.ncnn_int8_skip_reason(
        lambda tool: "/bin/ncnn2table" if tool == "ncnn2table" else None)
    # without the library (neither `make lib` nor `pip install .`), the mnv3 rows say so
    with pytest.raises(bp.Skip, match="make lib.*pip install"):
        bp.prepare_mnv3_quantized(None, "mnv3-int8", 1, np.zeros((1, 224, 224, 3), np.int8),
                                  1000)
    with pytest.raises(bp.Skip, match="make lib.*pip install"):
        bp.prepare_mnv3(None, None, np.zeros((1, 3, 224, 224), np.float32), 1, None, "small",
                        None)


def test_bench_peers_int8_options_and_table():
    import argparse
    import bench_peers as bp
    with pytest.raises(SystemExit):
        bp.main(["--precision", "int8", "--resolution", "160"])
    with pytest.raises(SystemExit):
        bp.main(["--engines", "litert-int8"])  # an int8 row without --precision int8
    stat = {"median_ms": 2.0, "p10_ms": 1.9, "p90_ms": 2.2}
    results = [{"arch": "small", "threads": 1, "loadavg_1min": [0.5, 0.6],
                "engines": {"litert-int8": stat, "litert-xnnpack": dict(stat, median_ms=1.0)},
                "ratios": {"litert-int8 / litert-xnnpack": 2.0},
                "checks": {"litert-int8": "max |Δ| 3"}}]
    machine = {"cpu": "cpu", "arch": "x86_64", "flags": ["avx2"], "usable_cpus": 2,
               "logical_cpus": 2, "os": "Linux", "python": "3", "versions": {}}
    args = argparse.Namespace(precision="int8", resolution=224, warmup=1, runs=2)
    md = bp.markdown(machine, results, args)
    assert "| small | 1 | litert-int8 | 2.00 (1.90–2.20) |" in md
    assert "| small | 1 | 2.00 | 0.5→0.6 |" in md
    assert "- small, litert-int8: max |Δ| 3" in md


@pytest.mark.skipif(not os.path.exists(os.path.join(SHARED, "reference")),
                    reason="../shared reference outputs absent")
def test_bench_peers_litert_reference_check():
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert not installed")
    import bench_peers as bp
    stem = "mobilenet_v3_small_int8_seed1"
    x = np.load(os.path.join(SHARED, "reference", f"{stem}__chelsea__input.npy"))
    r = bp.litert_reference_check(os.path.join(SHARED, "models", f"{stem}.tflite"),
                                  {"chelsea": x})
    want = np.load(os.path.join(SHARED, "reference", f"{stem}__chelsea__ref_logits.npy"))
    assert np.array_equal(r["ref_logits"]["chelsea"], want)
    assert r["logits_quantization"][1] in range(-128, 128)
    assert r["output_max_diff"] >= 0 and r["logits_max_diff"] >= 0


def bench_peers_mnv3():
    """bench_peers' mnv3 package with the library of `make lib` (or MNV3_LIB), or a skip."""
    import bench_peers as bp
    if not (os.environ.get("MNV3_LIB") or os.path.exists(os.path.join(ROOT, "build",
                                                                        "libmnv3.so"))):
        pytest.skip("build/libmnv3.so not built (make lib)")
    m = bp.load_mnv3()
    if m is None:
        pytest.skip("the mnv3 package could not load its library")
    return bp, m


def test_bench_peers_mnv3_rows_run_the_package():
    """The fp32 and int8 rows of mnv3 go through the package: their outputs are those of
    mnv3.Session on the same model and input."""
    bp, m = bench_peers_mnv3()
    x = np.random.default_rng(4).standard_normal((1, 3, 96, 96)).astype(np.float32)
    paths = {"mnv3": os.path.join(ROOT, "build", "no-such-dir", "model.mnv3")}
    for variant in ("fp32", "fp16w", "relaxed"):
        e = bp.prepare_mnv3(paths, None, x, 1, m, "small", "missing.pth", variant)
        e.run()
        net = m.Model.builtin(arch="small", seed=1)
        if variant == "fp16w":
            net = net.converted("float16")
        with m.Session(net, height=96, width=96,
                       precision="relaxed" if variant == "relaxed" else "exact") as s:
            assert np.array_equal(e.output(), s.run(x))
        assert "Python package" in e.detail and not e.same_weights
        e.close()
    q = np.random.default_rng(5).integers(-128, 128, (1, 64, 64, 3), dtype=np.int8)
    e = bp.prepare_mnv3_quantized(m, "mnv3-int8", 1, q, 1000, builtin_arch="small")
    e.run()
    net = m.Model.builtin(arch="small", seed=1, precision="int8")
    with m.Session(net, layout="nhwc", height=64, width=64) as s:
        assert np.array_equal(e.output(), s.predict_quantized(q).quantized_logits)
    assert e.output().dtype == np.int8 and "pseudo-random" in e.detail


@pytest.mark.skipif(not os.path.exists(os.path.join(SHARED, "reference")),
                    reason="../shared reference outputs absent")
def test_bench_peers_mnv3_int8_row_matches_tflite_reference(monkeypatch, tmp_path):
    """The mnv3 int8 row on the shared int8 Small: imported with tools/import_tflite.py, fed
    TFLite's quantized input, its logits equal the reference kernels' (0 units off)."""
    pytest.importorskip("tflite", reason="python package tflite not installed")
    bp, m = bench_peers_mnv3()
    monkeypatch.setattr(bp, "PEERS_DIR", str(tmp_path))
    stem = "mobilenet_v3_small_int8_seed1"
    x = np.load(os.path.join(SHARED, "reference", f"{stem}__chelsea__input.npy"))
    ref = np.load(os.path.join(SHARED, "reference", f"{stem}__chelsea__ref_logits.npy"))
    expected = {"inputs": {"chelsea": x}, "ref_logits": {"chelsea": ref}}
    e = bp.prepare_mnv3_quantized(m, "mnv3-int8", 1, x, 1000,
                                  tflite_path=os.path.join(SHARED, "models", f"{stem}.tflite"),
                                  expected=expected)
    assert "logits vs BUILTIN_REF max |Δ| 0 quantized units" in e.detail
    e.run()
    assert np.array_equal(e.output(), ref) and not e.same_weights


GENERATORS = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "tools", "generate"))
                    if f.endswith(".py"))


def test_every_generated_header_has_its_generator():
    headers = sorted(f[:-len("_loops.h")] for f in
                     os.listdir(os.path.join(ROOT, "csrc", "kernels", "generated")))
    assert headers == GENERATORS


@pytest.mark.parametrize("name", GENERATORS)
def test_generated_loops_are_current(name):
    """tools/generate/NAME.py writes csrc/kernels/generated/NAME_loops.h, and the header in
    the tree is what it writes now (`make generate`; one generator builds on another's loops:
    a change there must not leave a header stale)."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "generate", name + ".py")],
                         check=True, capture_output=True, text=True).stdout
    with open(os.path.join(ROOT, "csrc", "kernels", "generated", name + "_loops.h"),
              encoding="utf-8") as f:
        assert out == f.read()


# What each csrc folder may use, by include or by call (docs/architecture.md): one way, no
# circle. A new edge is a design decision, taken here and in that table together.
LAYERS = {
    "base": set(),
    "model": {"base"},
    "format": {"base", "model"},
    "plan": {"base", "model"},
    "kernels": {"base"},
    "runtime": {"base", "model", "plan", "kernels"},
    "api": {"base", "model", "format", "plan", "runtime"},
}


def csrc_layer_edges():
    """(user folder, used folder) -> an example, from the quoted includes and from calls of
    functions defined in another folder's .c files."""
    import re
    csrc = os.path.join(ROOT, "csrc")
    files = {}
    for d, _, names in os.walk(csrc):
        for n in names:
            if n.endswith((".c", ".h")):
                path = os.path.join(d, n)
                rel = os.path.relpath(path, csrc)
                with open(path, encoding="utf-8") as f:  # comments may name anything
                    files[rel] = re.sub(r"/\*.*?\*/|//[^\n]*", " ", f.read(), flags=re.S)
    layer = lambda rel: rel.split(os.sep)[0]
    defined = {}
    for rel, text in files.items():
        if rel.endswith(".c"):
            for m in re.finditer(r"^[A-Za-z][^;{}#/]*?\b(mnv3_\w+)\([^;]*?\)\s*\{", text, re.M):
                defined[m.group(1)] = layer(rel)
    edges = {}
    for rel, text in files.items():
        me = layer(rel)
        for m in re.finditer(r'#include "(\w+)/', text):
            if m.group(1) in LAYERS and m.group(1) != me:
                edges.setdefault((me, m.group(1)), f"{rel} includes {m.group(0)[10:]}")
        for m in re.finditer(r"\b(mnv3_\w+)\(", text):
            other = defined.get(m.group(1))
            if other and other != me:
                edges.setdefault((me, other), f"{rel} calls {m.group(1)}")
    return edges


def test_csrc_layers_point_one_way():
    edges = csrc_layer_edges()
    assert {a for a, _ in edges} <= set(LAYERS), "a csrc folder outside the layer table"
    wrong = {k: v for k, v in edges.items() if k[1] not in LAYERS[k[0]]}
    assert not wrong, wrong
    # the check reads what it should: the runtime does call the kernels and the plan
    assert ("runtime", "kernels") in edges and ("runtime", "plan") in edges
