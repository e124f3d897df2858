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

from cpu_vs_gpu import write_baselines

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
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:  # gradlens's own message says what was wrong
        sys.exit(f"{' '.join(cmd)}\nfailed: {done.stderr.strip()}")
    return done.stdout


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
        baselines = os.path.join(work, "baselines.safetensors")  # GradientShap needs a set
        write_baselines(baselines)
        for method in METHODS:
            values = {}
            extra = ["--baselines", baselines] if method == "gradient_shap" else []
            for precision in ["float32", "tf32"]:
                out = os.path.join(work, f"{method}_{precision}.safetensors")
                run([args.gradlens, "attribute", method, "--device", "cuda", "--precision",
                     precision, "--indices", args.indices, "--model", args.model, "--data",
                     args.data, "--out", out] + extra)
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
