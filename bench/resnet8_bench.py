"""PyTorch 1.13 and Captum twins of bench/bench_onnx.cpp: ResNet8 (the model of
../shared/reference/resnet8, rebuilt from its README with its state_dict) in eval mode at batch
1000, Captum's IntegratedGradients (50 Gauss-Legendre steps, zero baselines, with the delta) and
NoiseTunnel over it (smoothgrad_sq, 10 samples, stdev 0.2) for 1 and 16 images. With --device
cuda, bench_onnx's _Cuda workloads instead: PyTorch + cuDNN (TF32 off) on the GPU, eval at 1000 and
10,000, IG for 16 and 256 images, NoiseTunnel over IG for 16, each call synchronized.

  PYTHONPATH=/path/to/captum /usr/bin/python3 bench/compare.py --bench bench_onnx \\
      --torch-script resnet8_bench.py

Prints one JSON object {"BM_ResNet8Eval_CPU/1000": images_per_second, ...}. Without Captum the
attribution rows are left out.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from captum_bench import import_captum, load_safetensors  # noqa: E402
from torch_bench import timed  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1, self.relu1 = nn.BatchNorm2d(cout), nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(cout), nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential()
            self.shortcut.add_module("conv", nn.Conv2d(cin, cout, 1, stride, bias=False))
            self.shortcut.add_module("bn", nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(y + self.shortcut(x))


class ResNet8(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential()
        self.stem.add_module("conv", nn.Conv2d(3, 16, 3, 1, 1, bias=False))
        self.stem.add_module("bn", nn.BatchNorm2d(16))
        self.stem.add_module("relu", nn.ReLU())
        self.layer1, self.layer2, self.layer3 = Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(64, 10)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def make_resnet8():
    net = ResNet8()
    # GRADLENS_SHARED_DIR: where gpu_check.sh's bundle puts the reference files on a GPU machine
    shared = os.environ.get("GRADLENS_SHARED_DIR") or os.path.join(HERE, "..", "..", "shared")
    path = os.path.join(shared, "reference", "resnet8", "resnet8.safetensors")
    if os.path.exists(path):
        net.load_state_dict(load_safetensors(path), strict=False)  # num_batches_tracked: I64
    return net.eval()


def print_with_folded(out):
    # gradlens's --fold-batchnorm runs of the same model: PyTorch and Captum explain it unfolded.
    for key in list(out):
        if key.startswith("BM_ResNet8"):
            out[key.replace("BM_ResNet8", "BM_ResNet8Folded")] = out[key]
    print(json.dumps(out))


def cuda_workloads(min_time):
    """bench_onnx's _Cuda workloads; every call ends with a synchronize."""
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True  # the best convolution algorithm per shape
    torch.backends.cudnn.allow_tf32 = False  # float32, as gradlens's default
    torch.backends.cuda.matmul.allow_tf32 = False
    net = make_resnet8().to(device)
    out = {}

    def synced(fn):
        def run():
            fn()
            torch.cuda.synchronize()
        return run

    with torch.no_grad():
        for batch in (1000, 10000):
            x = (torch.rand(batch, 3, 32, 32) * 2 - 1).to(device)
            out[f"BM_ResNet8Eval_Cuda/{batch}"] = batch / timed(synced(lambda: net(x)), min_time)
    captum = import_captum()
    if captum is None:
        return out
    from captum.attr import IntegratedGradients, NoiseTunnel
    out["_using"] = (f"pytorch {torch.__version__} + cuDNN {torch.backends.cudnn.version()} on "
                     f"{torch.cuda.get_device_name(0)}, captum {captum.__version__}")
    ig = IntegratedGradients(net)
    nt = NoiseTunnel(ig)
    for n, with_nt in ((16, True), (256, False)):  # Captum takes 256 x 50 rows as one batch
        xs = (torch.rand(n, 3, 32, 32) * 2 - 1).to(device)
        target = [(i * 7) % 10 for i in range(n)]
        zeros = xs * 0
        out[f"BM_ResNet8IG_Cuda/{n}"] = n / timed(synced(
            lambda: ig.attribute(xs, baselines=zeros, target=target, n_steps=50,
                                 return_convergence_delta=True)), min_time)
        if with_nt:
            out[f"BM_ResNet8NoiseTunnelIG_Cuda/{n}"] = n / timed(synced(
                lambda: nt.attribute(xs, nt_type="smoothgrad_sq", nt_samples=10, stdevs=0.2,
                                     baselines=zeros, target=target, n_steps=50,
                                     return_convergence_delta=True)), min_time)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("resnet8_bench.py: --device cuda, but torch sees no CUDA device")
        print(json.dumps(cuda_workloads(args.min_time)))
        return
    net = make_resnet8()
    out = {}
    x = torch.rand(1000, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        out["BM_ResNet8Eval_CPU/1000"] = 1000 / timed(lambda: net(x), args.min_time)
    captum = import_captum()
    if captum is None:
        print_with_folded(out)
        return
    from captum.attr import IntegratedGradients, NoiseTunnel
    out["_using"] = f"pytorch {torch.__version__}, captum {captum.__version__}"
    ig = IntegratedGradients(net)
    nt = NoiseTunnel(ig)
    for n in (1, 16):
        xs = torch.rand(n, 3, 32, 32) * 2 - 1
        target = [(i * 7) % 10 for i in range(n)]
        zeros = xs * 0
        out[f"BM_ResNet8IG_CPU/{n}"] = n / timed(
            lambda: ig.attribute(xs, baselines=zeros, target=target, n_steps=50,
                                 return_convergence_delta=True), args.min_time)
        out[f"BM_ResNet8NoiseTunnelIG_CPU/{n}"] = n / timed(
            lambda: nt.attribute(xs, nt_type="smoothgrad_sq", nt_samples=10, stdevs=0.2,
                                 baselines=zeros, target=target, n_steps=50,
                                 return_convergence_delta=True), args.min_time)
    print_with_folded(out)


if __name__ == "__main__":
    main()
