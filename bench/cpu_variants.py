"""The training and inference benchmarks (bench_train) once per CPU kernel variant this machine runs
(GRADLENS_CPU=generic, avx2, avx512), optionally a -march=native build, and PyTorch's twins
(torch_bench.py), all interleaved in one invocation, best of --repeats; prints images per second and
each figure's ratio to PyTorch and to the default (dispatched) build.

  /usr/bin/python3 bench/cpu_variants.py --build build [--native-build build-native] --threads 2
"""
import argparse
import os
import subprocess

from compare import best, ours, theirs

WORKLOADS = ["BM_TrainStep_CPU/4", "BM_TrainStep_CPU/64", "BM_Inference_CPU/1",
             "BM_Inference_CPU/64", "BM_Inference_CPU/1000"]


def runnable(build, isa):
    """Whether this CPU runs the variant (gradlens info refuses one it lacks)."""
    return subprocess.run([os.path.join(build, "gradlens"), "info"], capture_output=True,
                          env=dict(os.environ, GRADLENS_CPU=isa)).returncode == 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build")
    parser.add_argument("--native-build", help="a -DGRADLENS_NATIVE=ON build to compare with")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    variants = [isa for isa in ("generic", "avx2", "avx512") if runnable(args.build, isa)]
    skipped = [isa for isa in ("generic", "avx2", "avx512") if isa not in variants]
    configs = [("default", args.build, None)]
    configs += [(isa, args.build, isa) for isa in variants]
    if args.native_build:
        configs.append(("native", args.native_build, None))
    runs = {name: [] for name, _, _ in configs}
    torch_runs = []
    for _ in range(args.repeats):
        torch_runs.append(theirs("torch_bench.py", args.threads, args.min_time, "cpu"))
        for name, build, isa in configs:
            forced = {"GRADLENS_CPU": isa} if isa else {}
            runs[name].append(ours(build, "bench_train", args.threads, args.min_time, forced))
    torch = best(torch_runs)
    figures = {name: best(r) for name, r in runs.items()}
    if skipped:
        print(f"variants this CPU cannot run: {', '.join(skipped)}")
    header = "| workload | PyTorch | " + " | ".join(
        f"{name} | /torch | /default" for name, _, _ in configs) + " |"
    print(header)
    print("|---|---:|" + "---:|---:|---:|" * len(configs))
    for w in WORKLOADS:
        row = [w, f"{torch.get(w, 0):.0f}"]
        base = figures["default"].get(w, 0)
        for name, _, _ in configs:
            v = figures[name].get(w, 0)
            row += [f"{v:.0f}", f"{v / torch[w]:.2f}" if torch.get(w) else "-",
                    f"{v / base:.3f}" if base else "-"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
