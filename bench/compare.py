"""Runs our benchmarks and PyTorch's twins in one go, with the same thread count, and prints our
speed as a ratio to PyTorch's (images per second; higher is better for us).

  /usr/bin/python3 bench/compare.py --build build --threads 2 [--bench bench_train] [--json out.json]
  PYTHONPATH=/path/to/captum /usr/bin/python3 bench/compare.py --bench bench_attr \
      --torch-script captum_bench.py
  /usr/bin/python3 bench/compare.py --build build-gpu --bench bench_cuda   # GPU: PyTorch + cuDNN
  PYTHONPATH=/path/to/captum /usr/bin/python3 bench/compare.py --bench bench_onnx \
      --torch-script resnet8_bench.py                          # the imported ResNet8

--device cuda (implied by --bench bench_cuda) passes --device cuda to the torch script, whose
workloads are then bench_cuda's (BM_<Workload>_Cuda/<batch>).

The torch script prints one JSON object {name: images_per_second}; keys starting with "_" are not
workloads: "_using" names the yardstick, "_targets" adds {name: ratio} targets to TARGETS.

Machines here are noisy: the two sides run back to back in the same invocation, and each side is
run `--repeats` times, keeping the best, so a ratio compares like with like.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def gradient_methods(build):
    """The Captum classes of the registry's gradient methods (`gradlens methods --json`): the
    issue's targets are for those, not for occlusion and ablation."""
    out = subprocess.run([os.path.join(build, "gradlens"), "methods", "--json"], check=True,
                         capture_output=True, text=True).stdout
    return [m["captum_class"] for m in json.loads(out)["methods"] if not m["perturbation"]]


def issue_targets(build, bench):
    """The issue targets of one benchmark program: our speed / theirs."""
    if bench == "bench_attr":  # against Captum 0.8 on PyTorch 1.13
        methods = gradient_methods(build)
        return {**{f"BM_{m}_CPU/1": 3.0 for m in methods},
                **{f"BM_{m}_CPU/16": 2.0 for m in methods},
                "BM_NoiseTunnelIG_CPU/1": 2.0}
    return TARGETS.get(bench, {})


TARGETS = {  # issue targets per benchmark program: our speed / theirs
    "bench_onnx": {  # against PyTorch 1.13 and Captum 0.8 (bench/resnet8_bench.py)
        "BM_ResNet8Eval_CPU/1000": 1.5,
        "BM_ResNet8IG_CPU/1": 2.0,
        "BM_ResNet8IG_CPU/16": 2.0,
        "BM_ResNet8NoiseTunnelIG_CPU/1": 2.0,
        "BM_ResNet8NoiseTunnelIG_CPU/16": 2.0,
        "BM_ResNet8FoldedEval_CPU/1000": 1.5,
        "BM_ResNet8FoldedIG_CPU/1": 2.0,
        "BM_ResNet8FoldedIG_CPU/16": 2.0,
        "BM_ResNet8FoldedNoiseTunnelIG_CPU/1": 2.0,
        "BM_ResNet8FoldedNoiseTunnelIG_CPU/16": 2.0,
    },
    "bench_train": {
        "BM_TrainStep_CPU/4": 5.0,
        "BM_TrainStep_CPU/64": 1.5,
        "BM_Inference_CPU/1000": 1.0,
    },
}


def ours_from_json(path):
    """Our figures from a Google Benchmark JSON file written earlier in the same run."""
    with open(path) as f:
        return {b["name"].removesuffix("/real_time").removesuffix("/manual_time"):
                b["items_per_second"] for b in json.load(f)["benchmarks"] if "items_per_second" in b}


def ours(build, bench, threads, min_time, extra_env=None):
    env = dict(os.environ, GRADLENS_NUM_THREADS=str(threads), **(extra_env or {}))
    out = subprocess.run(
        [os.path.join(build, "bench", bench), "--benchmark_format=json",
         f"--benchmark_min_time={min_time}"],
        check=True, capture_output=True, text=True, env=env).stdout
    # UseRealTime() benchmarks (threaded kernels, synchronized GPU steps) carry a "/real_time"
    # suffix, UseManualTime() ones "/manual_time".
    return {b["name"].removesuffix("/real_time").removesuffix("/manual_time"): b["items_per_second"]
            for b in json.loads(out)["benchmarks"] if "items_per_second" in b}


def theirs(script, threads, min_time, device, extra=()):
    # The interpreter running this script: Debian's /usr/bin/python3 here, the image's python3
    # (with CUDA PyTorch) on a lent GPU machine.
    cmd = [sys.executable, os.path.join(HERE, script), "--threads", str(threads),
           "--min-time", str(min_time)]
    if device != "cpu":  # the CPU scripts (captum_bench.py too) take no --device
        cmd += ["--device", device]
    cmd += list(extra)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def best(runs):
    merged = {}
    for run in runs:
        for name, value in run.items():
            merged[name] = max(merged.get(name, 0.0), value)
    return merged


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build")
    parser.add_argument("--bench", default="bench_train")
    parser.add_argument("--torch-script", default="torch_bench.py")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        help="where the torch script runs (default: cuda for bench_cuda, else cpu)")
    parser.add_argument("--ours-json", help="take our figures from this benchmark JSON instead "
                        "of running the benchmark again (gpu_check.sh: the GPU time is short)")
    parser.add_argument("--tf32", action="store_true",
                        help="(cuda) let PyTorch use TF32 tensor cores, and take our _Tf32 "
                        "figures (--precision tf32) where the benchmark has them")
    args = parser.parse_args()
    device = args.device or ("cuda" if args.bench == "bench_cuda" else "cpu")

    mine, torch_runs = [], []
    for _ in range(args.repeats):  # interleaved, so a slow spell hits both sides
        mine.append(ours_from_json(args.ours_json) if args.ours_json else
                    ours(args.build, args.bench, args.threads, args.min_time))
        torch_runs.append(theirs(args.torch_script, args.threads, args.min_time, device,
                                 ["--tf32"] if args.tf32 else []))
    meta = {k: v for run in torch_runs for k, v in run.items() if k.startswith("_")}
    torch_runs = [{k: v for k, v in run.items() if not k.startswith("_")} for run in torch_runs]
    mine, torch_side = best(mine), best(torch_runs)
    if args.tf32:  # BM_X_Cuda_Tf32/N stands in for BM_X_Cuda/N; rows without one stay float32
        mine.update({k.replace("_Tf32", ""): v for k, v in mine.items() if "_Tf32" in k})
    mine = {k: v for k, v in mine.items() if "_Tf32" not in k}
    targets = dict(issue_targets(args.build, args.bench), **meta.get("_targets", {}))

    rows, failed = [], []
    if "_using" in meta:
        print(f"yardstick: {meta['_using']}")
    print(f"{'workload':32s} {'gradlens img/s':>15s} {'pytorch img/s':>15s} {'ratio':>7s} {'target':>7s}")
    for name in sorted(mine):
        if name not in torch_side:
            continue
        ratio = mine[name] / torch_side[name]
        target = targets.get(name)
        mark = "" if target is None else ("  ok" if ratio >= target else "  BELOW")
        if target is not None and ratio < target:
            failed.append(name)
        print(f"{name:32s} {mine[name]:15.1f} {torch_side[name]:15.1f} {ratio:7.2f} "
              f"{'' if target is None else f'{target:.1f}x':>7s}{mark}")
        rows.append({"name": name, "gradlens": mine[name], "pytorch": torch_side[name], "ratio": ratio,
                     "target": target})
    if args.json:
        with open(args.json, "w") as f:
            figures = {"threads": args.threads, "using": meta.get("_using"), "results": rows}
            if device != "cpu":
                figures["device"] = device
            json.dump(figures, f, indent=1)
    print(f"threads: {args.threads}; targets missed: {', '.join(failed) if failed else 'none'}")


if __name__ == "__main__":
    sys.exit(main())
