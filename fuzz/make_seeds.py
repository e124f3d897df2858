"""Writes the fuzz targets' seed inputs, small valid files of each format, into DIR/<target>/, and
the command line's dictionary, every flag, subcommand and method name read from the sources, to
DIR/cli.dict (tools/fuzz.sh runs it; generated, so no data file is kept in the repository and the
dictionary follows the flags).

  python3 fuzz/make_seeds.py DIR
"""
import glob
import json
import os
import random
import re
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
    seeds["cli"] = {name: b"\0".join(a.encode() for a in args) for name, args in CLI_SEEDS.items()}
    for target, files in seeds.items():
        os.makedirs(os.path.join(out, target), exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(out, target, name), "wb") as f:
                f.write(data)

    with open(os.path.join(out, "cli.dict"), "w") as f:
        for word in sorted(cli_words()):
            f.write(json.dumps(word) + "\n")


CLI_SEEDS = {  # argument lists the program accepts
    "train": ["train", "--epochs", "2", "--batch-size", "4", "--lr", "0.001", "--limit", "400",
              "--checkpoint-every", "50", "--resume", "--threads", "1"],
    "eval": ["eval", "--model", "m.safetensors", "--batch-size", "1000", "--device", "cpu"],
    "ig": ["attribute", "integrated_gradients", "--n-steps", "50", "--method", "riemann_trapezoid",
           "--indices", "0:4", "--target", "label", "--delta", "--memory-budget", "16M"],
    "nt": ["attribute", "saliency", "--noise-tunnel", "--nt-samples", "10", "--nt-type",
           "smoothgrad_sq", "--stdevs", "0.2", "--nt-samples-batch-size", "5", "--seed", "1"],
    "gradcam": ["attribute", "layer_grad_cam", "--layer", "conv2", "--out", "shards/",
                "--shard", "1/4", "--split", "test", "--indices", "all"],
    "report": ["report", "--indices", "0,3,5", "--methods", "saliency,integrated_gradients",
               "--scale", "4", "--out", "r"],
    "other": ["shards", "merge", "dir", "--out", "x.safetensors"],
}


def cli_words():
    """Subcommand, flag, method and option names as they appear in the sources."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    words = set()
    for path in glob.glob(os.path.join(root, "tools", "gradlens", "*.cpp")):
        text = open(path).read()
        words |= set(re.findall(r'"(--[a-z0-9-]+)"', text))
        words |= set(re.findall(r'add_subcommand\("([a-z_]+)"', text))
    for path in glob.glob(os.path.join(root, "gradlens", "attr", "*.cpp")):
        text = open(path).read()
        words |= set(re.findall(r'\.name = "([a-z_0-9]+)"', text))
        words |= {"--" + w.replace("_", "-") for w in re.findall(r'\.name = "([a-z_0-9]+)"', text)}
        for choices in re.findall(r'\.choices = "([a-z_0-9,]+)"', text):
            words |= set(choices.split(","))
    return words


if __name__ == "__main__":
    main(sys.argv[1])
