"""The comparison gradlens exists for: each attribution method over the CIFAR-10 test set through
the streaming engine (`gradlens attribute METHOD --out DIR/`), on the CPU and, when there is one,
the GPU. Prints a markdown table and writes JSON: images per second on each device (the run's own
streaming rate; the JSON also has the rate with the process start and data loading), the GPU/CPU
ratio, the time for all 10,000 test images (measured on fewer and extrapolated where marked "~"),
and the fraction of the device's float32 peak reached, from counted FLOPs. Each run is repeated
(--repeats, default 3) and the median rate reported, with the slowest and fastest run beside it:
on a shared machine one run of the same binary moves by a fifth. Captum's figures for 16 images
come from bench/captum_bench.py when python3 has PyTorch (and Captum on PYTHONPATH).

  python3 bench/cpu_vs_gpu.py --gradlens build/gradlens --model M --data DIR [--json out.json]
      [--cpu-images 512] [--gpu-images 10000] [--repeats 3] [--captum]

Counted FLOPs (multiply-adds x 2) of the Net per image row: forward 1.30 MFLOP (conv1 0.71, conv2
0.48, fc 0.12); a gradient row is a forward and the input gradient (every layer's dx, about one
forward again; no weight gradients): 2.61 MFLOP. Each method's rows per image are listed in
METHODS; the forward that picks each image's target and predicted class is counted too.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FORWARD = 2 * (6 * 3 * 25 * 28 * 28 + 16 * 6 * 25 * 10 * 10 + 400 * 120 + 120 * 84 + 84 * 10)
GRADIENT = 2 * FORWARD

# name, gradlens attribute arguments, gradient rows and forward rows per image, the share of the
# CPU images it runs on (the slow ones run fewer), captum_bench.py's name
METHODS = [
    ("Saliency", ["saliency"], 1, 1, 1.0, "Saliency"),
    ("IntegratedGradients (50 steps)", ["integrated_gradients"], 50, 3, 0.25, "IntegratedGradients"),
    ("DeepLift", ["deeplift"], 2, 1, 1.0, "DeepLift"),
    ("NoiseTunnel(IG) 100 x 50", ["integrated_gradients", "--noise-tunnel", "smoothgrad_sq",
                                  "--nt-samples", "100", "--stdevs", "0.2"], 5000, 201, 0.008,
     "NoiseTunnelIG"),
    ("GradientShap (5 samples)", ["gradient_shap", "--baselines", "{baselines}"], 5, 1, 1.0,
     "GradientShap"),
    ("GuidedBackprop", ["guided_backprop"], 1, 1, 1.0, "GuidedBackprop"),
    ("LayerGradCam (conv2)", ["layer_grad_cam", "--layer", "conv2"], 1, 1, 1.0, "LayerGradCam"),
    ("Occlusion (3x8x8, stride 4)", ["occlusion"], 0, 51, 0.5, "Occlusion"),
]


def write_baselines(path):
    """A 'baseline_set' of 4 rows for GradientShap: zeros and three flat grays (no numpy here)."""
    values = []
    for level in (0.0, -0.5, 0.25, 0.5):
        values += [level] * (3 * 32 * 32)
    data = struct.pack(f"<{len(values)}f", *values)
    header = json.dumps({"baseline_set": {"dtype": "F32", "shape": [4, 3, 32, 32],
                                          "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + data)


def info(gradlens):
    return subprocess.run([gradlens, "info"], capture_output=True, text=True).stdout


def cpu_peak(info_text):
    """Float32 FLOP/s of this CPU with the variant gradlens picked: cores x clock x FLOPs a cycle
    (2 FMA pipes x lanes x 2; SSE2 without FMA: an add and a multiply of 4 lanes). AMD's Zen 4
    (family 25) runs AVX-512 on its two 256-bit pipes: 32 a cycle, as AVX2, not 64."""
    variant = re.search(r"^kernels:\s+(\w+)", info_text, re.M)  # gradlens info's chosen variant
    isa = variant.group(1) if variant else "avx2"
    per_cycle = {"avx512": 64, "avx2": 32, "generic": 8}.get(isa, 32)
    mhz, vendor, family = 0.0, "", ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "cpu MHz":
                mhz = max(mhz, float(value))
            elif key == "vendor_id":
                vendor = value
            elif key == "cpu family":
                family = value
    if isa == "avx512" and vendor == "AuthenticAMD" and family == "25":
        per_cycle = 32
    cores = os.cpu_count() or 1
    return cores * mhz * 1e6 * per_cycle, f"{cores} cores x {mhz / 1000:.2f} GHz x {per_cycle} ({isa})"


def gpu_peak(info_text):
    """Float32 FLOP/s of the first CUDA device by name (the SXM parts' datasheet figures)."""
    table = {"H200": 67e12, "H100": 67e12, "A100": 19.5e12, "L40S": 91.6e12, "L4": 30.3e12}
    for name, peak in table.items():
        if re.search(rf"\b{name}\b", info_text):
            return peak, f"{name} datasheet"
    return None, "unknown device"


def run_method(gradlens, args, device, count, model, data, work):
    out = os.path.join(work, f"run_{device}")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [gradlens, "attribute", *args, "--device", device, "--indices", f"0:{count}",
           "--model", model, "--data", data, "--out", out + "/", "--images-per-shard",
           str(min(count, 256))]
    start = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = count / (time.perf_counter() - start)
    # The streaming rate the run reports (its "took" line: reading, attributing and writing the
    # images), without the process start and the data set load, a fixed cost that a 10,000-image
    # run pays once but that would dominate the 4 images the slowest method runs on the CPU.
    # Its images/s figure (3 digits), not count / its seconds (2 decimals: 0.20 s for 2,000
    # images read as exactly 10,000 images/s).
    took = re.search(r"^took [0-9.]+ s \(([0-9.e+-]+) images/s\)", done.stdout, re.M)
    return (float(took.group(1)) if took and float(took.group(1)) > 0 else wall), wall


def run_repeated(repeats, *args):
    """run_method `repeats` times: the median streaming rate, its range and the median wall rate."""
    runs = [run_method(*args) for _ in range(max(1, repeats))]
    rates = [rate for rate, _ in runs]
    return statistics.median(rates), (min(rates), max(rates)), statistics.median(w for _, w in runs)


def captum_figures():
    """images/s of captum_bench.py's 16-image workloads, or {} without PyTorch."""
    try:
        out = subprocess.run([sys.executable, os.path.join(HERE, "captum_bench.py"), "--threads",
                              str(os.cpu_count() or 1), "--min-time", "0.5"],
                             capture_output=True, text=True, timeout=1800)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
    except Exception:  # no torch, no captum: the column stays empty
        return {}
    return {k.split("_CPU/")[0][3:]: v for k, v in figures.items() if k.endswith("_CPU/16")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gradlens", default="build/gradlens")
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--cpu-images", type=int, default=512)
    parser.add_argument("--gpu-images", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per method and device")
    parser.add_argument("--captum", action="store_true", help="also run bench/captum_bench.py")
    parser.add_argument("--json")
    args = parser.parse_args()

    text = info(args.gradlens)
    has_gpu = re.search(r"^cuda: +[1-9]\d* device", text, re.M) is not None
    cpu_flops, cpu_how = cpu_peak(text)
    gpu_flops, gpu_how = gpu_peak(text) if has_gpu else (None, "no GPU")
    captum = captum_figures() if args.captum else {}
    commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        baselines = os.path.join(work, "baselines.safetensors")
        write_baselines(baselines)
        for name, method_args, grads, forwards, share, captum_name in METHODS:
            method_args = [a.replace("{baselines}", baselines) for a in method_args]
            flops = grads * GRADIENT + forwards * FORWARD
            cpu_count = max(2, int(args.cpu_images * share))
            cpu, cpu_range, cpu_wall = run_repeated(args.repeats, args.gradlens, method_args, "cpu",
                                                    cpu_count, args.model, args.data, work)
            gpu, gpu_range, gpu_wall = run_repeated(
                args.repeats, args.gradlens, method_args, "cuda", args.gpu_images, args.model,
                args.data, work) if has_gpu else (None, None, None)
            # as it goes: a run cut short by a time limit (gpu_check.sh) keeps what it measured
            print(f"{name}: CPU {cpu:.4g} images/s ({cpu_count} images)"
                  + (f", GPU {gpu:.4g} images/s ({args.gpu_images} images)" if gpu else ""),
                  file=sys.stderr, flush=True)
            rows.append({
                "method": name, "mflop_per_image": flops / 1e6, "repeats": args.repeats,
                "cpu_images": cpu_count, "cpu_images_per_s": cpu,
                "cpu_images_per_s_range": cpu_range, "gpu_images_per_s_range": gpu_range,
                "cpu_peak_fraction_range": [v * flops / cpu_flops for v in cpu_range]
                if cpu_flops else None,
                "cpu_images_per_s_with_start": cpu_wall, "gpu_images_per_s_with_start": gpu_wall,
                "cpu_peak_fraction": cpu * flops / cpu_flops if cpu_flops else None,
                "cpu_10000_s": 10000 / cpu, "cpu_extrapolated": cpu_count < 10000,
                "gpu_images": args.gpu_images if has_gpu else None, "gpu_images_per_s": gpu,
                "gpu_peak_fraction": gpu * flops / gpu_flops if gpu and gpu_flops else None,
                "gpu_10000_s": 10000 / gpu if gpu else None,
                "gpu_over_cpu": gpu / cpu if gpu else None,
                "captum_16_images_per_s": captum.get(captum_name),
            })
    meta = {"date": datetime.date.today().isoformat(), "commit": commit, "cpu_peak": cpu_how,
            "gpu": gpu_how, "threads": os.cpu_count()}

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    def spread(r):  # "median (slowest-fastest)" of the CPU's % of peak
        low, high = r["cpu_peak_fraction_range"] or (None, None)
        median = fmt(r["cpu_peak_fraction"] and 100 * r["cpu_peak_fraction"], ".1f")
        return median if low is None else f"{median} ({100 * low:.1f}-{100 * high:.1f})"

    print(f"{meta['date']}, commit {meta['commit']}; CPU peak {cpu_how}; GPU: {gpu_how}; "
          + (f"median of {args.repeats} runs" if args.repeats > 1 else "one run each"))
    print("| method | MFLOP/img | CPU img/s | CPU % peak | CPU 10k s | GPU img/s | GPU % peak | "
          "GPU 10k s | GPU/CPU | Captum img/s (16, CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['method']} | {r['mflop_per_image']:.1f} | {r['cpu_images_per_s']:.1f} "
              f"({r['cpu_images']}) | {spread(r)} | "
              f"~{r['cpu_10000_s']:.0f} | {fmt(r['gpu_images_per_s'], '.1f')} | "
              f"{fmt(r['gpu_peak_fraction'] and 100 * r['gpu_peak_fraction'], '.1f')} | "
              f"{fmt(r['gpu_10000_s'], '.2f')} | {fmt(r['gpu_over_cpu'], '.1f')} | "
              f"{fmt(r['captum_16_images_per_s'], '.1f')} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
