"""Writes the fuzz targets' seed inputs, small valid files of each format, into DIR/<target>/
(tools/fuzz.sh runs it; generated, so no data file is kept in the repository).

  python3 fuzz/make_seeds.py DIR
"""
import json
import os
import random
import struct
import sys
import zlib


def safetensors(tensors, meta=None):
    header = {"__metadata__": meta} if meta else {}
    offset, data = 0, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def png(width, height, rng, rgba=False):
    channels, color_type = (4, 6) if rgba else (3, 2)
    raw = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(width * channels))
                   for _ in range(height))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main(out):
    rng = random.Random(1)
    pixels = lambda n: bytes(rng.randrange(256) for _ in range(n))
    seeds = {
        "safetensors": {
            "f32_with_metadata": safetensors(
                {"w": ("F32", [2, 3], struct.pack("<6f", *range(6)))}, {"format": "pt"}),
            "every_dtype": safetensors({
                "a": ("F64", [2], struct.pack("<2d", 1.5, -2)),
                "b": ("I64", [3], struct.pack("<3q", 1, -2, 3)),
                "c": ("I32", [1], struct.pack("<i", 7)),
                "d": ("U8", [4], bytes([1, 2, 3, 250])),
                "e": ("F16", [2], struct.pack("<2e", 1.0, -0.5)),
                "f": ("BF16", [1], b"\x80\x3f"),
                "g": ("BOOL", [2], b"\x01\x00")}),
            "empty": safetensors({}),
        },
        "cifar10": {  # records: a label byte, then 3072 pixel bytes
            "one_record": bytes([3]) + pixels(3072),
            "two_records": bytes([0]) + pixels(3072) + bytes([9]) + pixels(3072),
        },
        "png": {"rgb_3x2": png(3, 2, rng), "rgba_2x2": png(2, 2, rng, rgba=True)},
        "tfjs_rows": {  # fuzz_tfjs_rows.cpp: label count, labels, then the rows
            "one_row": bytes([1, 4]) + pixels(3072),
            "two_rows": bytes([2, 0, 9]) + pixels(6144),
        },
    }
    for target, files in seeds.items():
        os.makedirs(os.path.join(out, target), exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(out, target, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
