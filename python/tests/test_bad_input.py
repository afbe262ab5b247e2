"""Bad input of every kind raises a typed mnv3.Error with a message naming the problem;
nothing crashes the interpreter (every test here runs in the test process itself, except
the FIFO ones, which run in a child process so that a regression would fail, not hang)."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import mnv3

# ------------------------------------------------------------------------------------------
# tensors and options
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 224, 224), (1, 3, 224, 225), (2, 3, 224, 224),
                                   (1, 224, 224, 3), (1, 4, 224, 224), (150528,)])
def test_wrong_shape(small, shape):
    with mnv3.Session(small) as s, pytest.raises(mnv3.ShapeError) as e:
        s.run(np.zeros(shape, np.float32))
    assert e.value.status == mnv3.Status.SHAPE and "[1, 3, 224, 224]" in str(e.value)
    assert isinstance(e.value, ValueError)  # generic handlers catch it too


def test_wrong_shape_names_the_layout(small):
    with mnv3.Session(small) as s, pytest.raises(mnv3.ShapeError, match="layout='nhwc'"):
        s.run(np.zeros((1, 224, 224, 3), np.float32))


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.int16, np.uint16,
                                   np.bool_, np.complex64])
def test_wrong_dtype(small, dtype):
    with mnv3.Session(small) as s, pytest.raises(mnv3.InvalidArgumentError,
                                                 match="takes float32"):
        s.run(np.zeros((1, 3, 224, 224), dtype))


def test_quantized_input_to_float_model(small):
    with mnv3.Session(small) as s:
        for dt in (np.uint8, np.int8):
            with pytest.raises(mnv3.UnsupportedError, match="needs a quantized model"):
                s.run(np.zeros((1, 3, 224, 224), dt))
        with pytest.raises(mnv3.UnsupportedError):
            s.predict_quantized(np.zeros((1, 3, 224, 224), np.int8))


def test_wrong_out(small):
    with mnv3.Session(small) as s:
        x = np.zeros((1, 3, 224, 224), np.float32)
        with pytest.raises(mnv3.ShapeError):
            s.run(x, out=np.empty((1, 999), np.float32))
        with pytest.raises(mnv3.InvalidArgumentError):
            s.run(x, out=np.empty((1, 1000), np.float64))
        ro = np.empty((1, 1000), np.float32)
        ro.flags.writeable = False
        with pytest.raises(mnv3.InvalidArgumentError):
            s.run(x, out=ro)


@pytest.mark.parametrize("kwargs,match", [
    (dict(threads=0), "threads must be in 1...256"),
    (dict(threads=257), "threads must be in"),
    (dict(threads=1.5), "threads must be an integer"),
    (dict(batch=0), "batch must be in"),
    (dict(height=16), "height must be in 32...4096"),
    (dict(width=5000), "width must be in"),
    (dict(layout="chw"), "unknown layout"),
    (dict(precision="fast"), "unknown precision"),
    (dict(isa="sse2"), "unknown kernel set"),
])
def test_bad_session_options(small, kwargs, match):
    with pytest.raises(mnv3.InvalidArgumentError, match=match):
        mnv3.Session(small, **kwargs)


def test_unavailable_isa(small):
    missing = [i for i in ("neon", "avx2", "avx512") if not mnv3.isa_available(i)]
    if not missing:
        pytest.skip("every kernel set is available on this machine")
    with pytest.raises(mnv3.UnsupportedError, match="not available on this machine"):
        mnv3.Session(small, isa=missing[0])


def test_session_needs_a_model():
    with pytest.raises(TypeError):
        mnv3.Session("small.mnv3")  # type: ignore[arg-type]


def test_bad_top(small):
    with mnv3.Session(small) as s, pytest.raises(mnv3.InvalidArgumentError, match="top"):
        s.classify(np.zeros((8, 8, 3), np.uint8), top=0)


# ------------------------------------------------------------------------------------------
# model files
# ------------------------------------------------------------------------------------------


def test_missing_model_file(tmp_path):
    path = tmp_path / "nope.mnv3"
    with pytest.raises(mnv3.FileIOError) as e:
        mnv3.Model(path)
    assert str(path) in str(e.value) and e.value.status == mnv3.Status.IO
    assert isinstance(e.value, OSError)


def test_model_path_is_a_directory(tmp_path):
    with pytest.raises(mnv3.FileIOError, match="directory"):
        mnv3.Model(tmp_path)


def test_model_path_is_a_fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    code = ("import mnv3, sys\n"
            "try:\n    mnv3.Model(sys.argv[1])\n"
            "except mnv3.FileIOError as e:\n    print(e)\n    sys.exit(0)\n"
            "sys.exit(3)\n")
    r = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "FIFO" in r.stdout


def test_empty_and_truncated_model(small, tmp_path):
    data = small.to_bytes()
    with pytest.raises(mnv3.ModelFileError):
        mnv3.Model(b"")
    empty = tmp_path / "empty.mnv3"
    empty.write_bytes(b"")
    with pytest.raises(mnv3.ModelFileError):
        mnv3.Model(empty)
    for n in (7, 64, len(data) // 2, len(data) - 1):
        with pytest.raises(mnv3.ModelFileError) as e:
            mnv3.Model(data[:n])
        assert e.value.message and isinstance(e.value, ValueError)


def test_corrupt_model(small):
    data = bytearray(small.to_bytes())
    with pytest.raises(mnv3.BadMagicError, match="magic"):
        mnv3.Model(b"XXXX" + bytes(data[4:]))
    flipped = bytearray(data)
    flipped[len(data) - 100] ^= 0x40  # a weight: the payload's CRC-32 no longer matches
    with pytest.raises(mnv3.ChecksumError) as e:
        mnv3.Model(bytes(flipped))
    assert e.value.status == mnv3.Status.CHECKSUM and e.value.code == "checksum"
    with pytest.raises(mnv3.ModelFileError):
        mnv3.Model(b"not a model at all" * 100)


def test_mutated_models_never_crash(small):
    """Random byte changes in a model file: each load succeeds or raises mnv3.Error."""
    data = small.to_bytes()
    rng = np.random.default_rng(12)
    header = min(len(data), 4096)  # the header and tables, where the structure lives
    for _ in range(300):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, header))
            b[pos] = int(rng.integers(0, 256))
        cut = len(b) if rng.random() < 0.8 else int(rng.integers(0, len(b)))
        try:
            m = mnv3.Model(bytes(b[:cut]))
        except mnv3.Error as e:
            assert e.message
            continue
        m.macs()  # a model that loads answers queries


# ------------------------------------------------------------------------------------------
# images
# ------------------------------------------------------------------------------------------


def png(width, height, color_type=2, bit_depth=8, rows=None, ihdr_size=None):
    """A minimal PNG: IHDR (optionally claiming another size), one IDAT, IEND."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    w, h = ihdr_size or (width, height)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    if rows is None:
        rows = b"".join(b"\0" + bytes(width * channels * bit_depth // 8) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) +
            chunk(b"IEND", b""))


@pytest.fixture
def session(small):
    with mnv3.Session(small) as s:
        yield s


def test_image_path_errors(session, tmp_path):
    with pytest.raises(mnv3.FileIOError, match="no such image file"):
        session.classify(tmp_path / "missing.png")
    with pytest.raises(mnv3.FileIOError, match="is a directory"):
        session.classify(tmp_path)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(mnv3.BadImageError, match="the file is empty"):
        session.classify(empty)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(mnv3.UnsupportedImageFormatError, match="not a PNG, JPEG"):
        session.classify(text)


def test_image_path_is_a_fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    code = ("import mnv3, sys\n"
            "s = mnv3.Session(mnv3.Model.builtin(arch='small'))\n"
            "try:\n    s.classify(sys.argv[1])\n"
            "except mnv3.FileIOError as e:\n    print(e)\n    sys.exit(0)\n"
            "sys.exit(3)\n")
    r = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "FIFO" in r.stdout


def test_png_claiming_a_huge_size_is_refused_before_decoding(session):
    pytest.importorskip("PIL", reason="Pillow is not installed")
    bomb = png(1, 1, ihdr_size=(60000, 60000))
    with pytest.raises(mnv3.ImageTooLargeError, match="more than the limit of 16777216"):
        session.classify(bomb)
    with pytest.raises(mnv3.ImageTooLargeError, match="no side may be longer than 65535"):
        session.classify(png(1, 1, ihdr_size=(70000, 2)))
    ok = png(64, 64)
    assert len(session.classify(ok, max_pixels=64 * 64)) == 5
    with pytest.raises(mnv3.ImageTooLargeError):
        session.classify(ok, max_pixels=64 * 64 - 1)
    with pytest.raises(mnv3.InvalidArgumentError, match="pixel limit"):
        session.classify(ok, max_pixels=0)


def test_damaged_png_and_jpeg(session):
    PIL = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    import io
    good = png(32, 24)
    assert len(session.classify(good)) == 5
    with pytest.raises(mnv3.BadImageError, match="corrupt or truncated PNG"):
        session.classify(good[:len(good) - 30])  # the IDAT cut short
    bad_crc = bytearray(good)
    bad_crc[30] ^= 1  # inside IHDR: its CRC no longer matches
    with pytest.raises(mnv3.BadImageError):
        session.classify(bytes(bad_crc))
    with pytest.raises(mnv3.BadImageError):
        session.classify(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    buf = io.BytesIO()
    PIL.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
                  ).save(buf, format="JPEG")
    jpeg = buf.getvalue()
    assert len(session.classify(jpeg)) == 5
    with pytest.raises(mnv3.BadImageError, match="JPEG"):
        session.classify(jpeg[:len(jpeg) // 2])
    with pytest.raises(mnv3.BadImageError):
        session.classify(b"\xff\xd8\xff" + b"\0" * 100)


def test_damaged_netpbm(session):
    good = b"P6\n# comment\n4 3\n255\n" + bytes(range(36))
    assert len(session.classify(good)) == 5
    cases = {
        b"P6\n4 3\n255\n" + bytes(10): "truncated PPM image",
        b"P6\n4": "truncated PPM header",
        b"P6\nx 3\n255\n": "malformed PPM header",
        b"P5\n0 3\n255\n": "invalid size",
        b"P5\n4 3\n70000\n": "invalid size or maximum value",
        b"P5\n99999999999 3\n255\n": "too large",
    }
    for data, match in cases.items():
        with pytest.raises(mnv3.BadImageError, match=match):
            session.classify(data)
    with pytest.raises(mnv3.ImageTooLargeError):
        session.classify(b"P5\n16000000 16000000\n255\n")


def test_bad_image_arrays(session):
    with pytest.raises(mnv3.InvalidArgumentError, match="uint8"):
        session.classify(np.zeros((32, 32, 3), np.float32))
    for shape in [(32, 32, 2), (32, 32, 5), (32,), (1, 32, 32, 3), (0, 32, 3)]:
        with pytest.raises(mnv3.ShapeError):
            session.classify(np.zeros(shape, np.uint8))
    with pytest.raises(TypeError):
        session.classify(12345)  # type: ignore[arg-type]


def test_mutated_images_never_crash(session):
    """Random byte changes in PNG, JPEG and PPM files: each classify succeeds or raises an
    mnv3.Error."""
    PIL = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    import io
    rng = np.random.default_rng(13)
    pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    files = [b"P6\n48 40\n255\n" + pixels.tobytes()]
    for fmt in ("PNG", "JPEG"):
        buf = io.BytesIO()
        PIL.fromarray(pixels).save(buf, format=fmt)
        files.append(buf.getvalue())
    for data in files:
        for _ in range(60):
            b = bytearray(data)
            for _ in range(int(rng.integers(1, 6))):
                b[int(rng.integers(0, min(len(b), 400)))] = int(rng.integers(0, 256))
            cut = len(b) if rng.random() < 0.7 else int(rng.integers(0, len(b)))
            try:
                session.classify(bytes(b[:cut]))
            except mnv3.Error as e:
                assert e.message


def test_errors_carry_status_and_message():
    e = mnv3.Error.__subclasses__()
    assert mnv3.ShapeError in e and mnv3.FileIOError in e
    err = mnv3.BadMagicError("x.mnv3: not an .mnv3 file")
    assert err.status == mnv3.Status.BAD_MAGIC == 21 and err.code == "bad_magic"
    assert isinstance(err, mnv3.ModelFileError) and str(err) == "x.mnv3: not an .mnv3 file"
    import pickle
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is mnv3.BadMagicError and again.message == err.message
    # one class per status of the C library and of the package
    classes = {cls.status for cls in _all_subclasses(mnv3.Error) if cls.status}
    assert classes == {s for s in mnv3.Status if s != mnv3.Status.OK}


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)
