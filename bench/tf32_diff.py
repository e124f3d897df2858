"""What --precision tf32 changes in the attributions: runs `gradlens attribute` for each method on
the same test images with float32 and with tf32 on the GPU, and prints, per method, the largest
difference relative to the largest float32 value, the mean relative difference, and how often the
two agree on the sign; `gradlens eval` gives the accuracy both ways. Needs a GPU.

  python3 bench/tf32_diff.py --gradlens build/gradlens --model M --data DIR [--json out.json]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

METHODS = ["saliency", "integrated_gradients", "deeplift", "guided_backprop", "layer_grad_cam",
           "gradient_shap"]


def read_tensor(path, name):
    with open(path, "rb") as f:
        data = f.read()
    size = struct.unpack("<Q", data[:8])[0]
    info = json.loads(data[8:8 + size])[name]
    begin, end = info["data_offsets"]
    return np.frombuffer(data[8 + size + begin:8 + size + end], dtype=np.float32).reshape(
        info["shape"])


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gradlens", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--indices", default="0:64")
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for method in METHODS:
            values = {}
            for precision in ["float32", "tf32"]:
                out = os.path.join(work, f"{method}_{precision}.safetensors")
                run([args.gradlens, "attribute", method, "--device", "cuda", "--precision",
                     precision, "--indices", args.indices, "--model", args.model, "--data",
                     args.data, "--out", out])
                values[precision] = read_tensor(out, "attributions").astype(np.float64)
            ref, tf32 = values["float32"], values["tf32"]
            diff = np.abs(tf32 - ref)
            rows.append({
                "method": method,
                "max_diff_over_max": float(diff.max() / max(np.abs(ref).max(), 1e-30)),
                "mean_diff_over_mean": float(diff.mean() / max(np.abs(ref).mean(), 1e-30)),
                "sign_agreement": float(np.mean(np.sign(tf32) == np.sign(ref))),
            })
    accuracy = {}
    for precision in ["float32", "tf32"]:
        text = run([args.gradlens, "eval", "--device", "cuda", "--precision", precision, "--model",
                    args.model, "--data", args.data])
        line = next(l for l in text.splitlines() if l.startswith("Accuracy of the network"))
        accuracy[precision] = line.split(":")[1].strip()
    print(f"{'method':24s} {'max|d|/max|f32|':>16s} {'mean|d|/mean|f32|':>18s} {'same sign':>10s}")
    for r in rows:
        print(f"{r['method']:24s} {r['max_diff_over_max']:16.2e} {r['mean_diff_over_mean']:18.2e} "
              f"{r['sign_agreement']:10.4f}")
    print(f"accuracy: float32 {accuracy['float32']}, tf32 {accuracy['tf32']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"indices": args.indices, "methods": rows, "accuracy": accuracy}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
