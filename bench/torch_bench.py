"""PyTorch 1.13 twins of bench/bench_train.cpp's workloads, timed the same way (images per second).

Run with Debian's python3 (/usr/bin/python3, which has python3-torch). Prints one JSON object:
{"BM_TrainStep_CPU/4": images_per_second, ...}.

With --device cuda it runs bench/bench_cuda.cpp's workloads instead, every tensor on the GPU and
cuDNN on (its autotuner too): {"BM_TrainStep_Cuda/4": ..., "_using": "PyTorch ... cuDNN ..."}.
IntegratedGradients and NoiseTunnel(IG) run through Captum itself when `import captum` works
(PYTHONPATH=<a bundle's captum/>, tools/gpu_bundle.sh --captum), else written out as Captum 0.8
computes them (one batch of all scaled inputs, one gradient call). --tf32 lets cuDNN and matmul use
TF32 tensor cores (PyTorch's default for convolutions); without it both stay float32.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class Net(nn.Module):  # the Captum CIFAR-10 tutorial's Net
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.relu1, self.relu2, self.relu3, self.relu4 = nn.ReLU(), nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        x = self.relu3(self.fc1(x))
        x = self.relu4(self.fc2(x))
        return self.fc3(x)


def timed(fn, min_time):
    """Runs fn until min_time seconds have passed (after a warm-up); returns seconds per call.
    A GPU fn must synchronize before it returns, as the C++ benchmarks do."""
    for _ in range(3):
        fn()
    iterations, start = 0, time.perf_counter()
    while True:
        fn()
        iterations += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / iterations


def scrambled_batches(batch, device):
    """32 batches with scrambled labels, as bench_train.cpp: one fixed batch would drive the
    gradients to denormals within a few thousand steps."""
    xs = [(torch.rand(batch, 3, 32, 32) * 2 - 1).to(device) for _ in range(32)]
    ys = [torch.tensor([((i * 7) % 10 * 3 + k) % 10 for i in range(batch)]).to(device)
          for k in range(32)]
    return xs, ys


def integrated_gradients(net, x, target, n_steps=50, return_delta=True):
    """Captum 0.8's IntegratedGradients with zero baselines and Gauss-Legendre steps: all scaled
    inputs in one batch (step-major), one torch.autograd.grad call, then the convergence delta."""
    import numpy as np  # here, so the CPU workloads need nothing beyond torch

    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    alphas, steps = 0.5 * (1 + nodes), 0.5 * weights
    baseline = torch.zeros_like(x)
    n = x.shape[0]
    scaled = torch.cat([baseline + float(a) * (x - baseline) for a in alphas]).requires_grad_()
    out = net(scaled)[torch.arange(scaled.shape[0], device=x.device), target.repeat(n_steps)]
    (grads,) = torch.autograd.grad(out.sum(), scaled)
    step_sizes = torch.tensor(steps, dtype=torch.float32, device=x.device)
    total = (grads.view(n_steps, n, *x.shape[1:]) * step_sizes.view(-1, *[1] * x.dim())).sum(0)
    attributions = total * (x - baseline)
    if not return_delta:
        return attributions
    with torch.no_grad():
        rows = torch.arange(n, device=x.device)
        gap = net(x)[rows, target] - net(baseline)[rows, target]
    return attributions, attributions.view(n, -1).sum(1) - gap


def noise_tunnel_ig(net, x, target, nt_samples=100, stdevs=0.2):
    """Captum's NoiseTunnel(IG).attribute(x, baselines=x * 0, nt_type='smoothgrad_sq',
    nt_samples=100, stdevs=0.2) as the tutorial calls it: the samples in one batch, no delta."""
    noisy = x.repeat_interleave(nt_samples, dim=0)
    noisy = noisy + torch.randn_like(noisy) * stdevs
    a = integrated_gradients(net, noisy, target.repeat_interleave(nt_samples), return_delta=False)
    return (a * a).view(x.shape[0], nt_samples, *x.shape[1:]).mean(1)


def cuda_workloads(min_time, tf32):
    """bench/bench_cuda.cpp's twins: names end in _Cuda/<batch>, each call synchronizes."""
    device = torch.device("cuda")
    torch.backends.cudnn.enabled = True
    torch.backends.cudnn.benchmark = True  # the best convolution algorithm per shape
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    from captum_bench import import_captum
    captum = import_captum()

    def synced(fn):
        def run():
            fn()
            torch.cuda.synchronize()
        return run

    results = {"_using": f"PyTorch {torch.__version__} + cuDNN {torch.backends.cudnn.version()} "
                         f"on {torch.cuda.get_device_name(0)}, TF32 {'on' if tf32 else 'off'}, "
                         + (f"Captum {captum.__version__}" if captum else "IG written as Captum's")}
    for batch in (4, 64, 256):
        net = Net().to(device)
        optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
        criterion = nn.CrossEntropyLoss()
        xs, ys = scrambled_batches(batch, device)
        counter = [0]

        def step():
            k = counter[0] % 32
            counter[0] += 1
            optimizer.zero_grad()
            loss = criterion(net(xs[k]), ys[k])
            loss.backward()
            optimizer.step()
            loss.item()

        results[f"BM_TrainStep_Cuda/{batch}"] = batch / timed(synced(step), min_time)

    net = Net().to(device).eval()
    for batch in (1000, 10000):
        x = (torch.rand(batch, 3, 32, 32) * 2 - 1).to(device)
        with torch.no_grad():
            results[f"BM_Inference_Cuda/{batch}"] = batch / timed(synced(lambda: net(x)), min_time)

    if captum is not None:
        ig = captum.attr.IntegratedGradients(net)
        nt = captum.attr.NoiseTunnel(ig)
        run_ig = lambda x, t: ig.attribute(x, target=t, return_convergence_delta=True)  # noqa: E731
        run_nt = lambda x, t: nt.attribute(  # noqa: E731
            x, baselines=x * 0, target=t, nt_type="smoothgrad_sq", nt_samples=100, stdevs=0.2)
    else:
        run_ig = lambda x, t: integrated_gradients(net, x, t)  # noqa: E731
        run_nt = lambda x, t: noise_tunnel_ig(net, x, t)  # noqa: E731
    for n in (1, 16, 1000):
        x = (torch.rand(n, 3, 32, 32) * 2 - 1).to(device)
        target = torch.full((n,), 3, device=device)
        results[f"BM_IntegratedGradients_Cuda/{n}"] = n / timed(
            synced(lambda: run_ig(x, target)), min_time)
        if n <= 16:  # Captum puts 1,000 images' 5M rows in one batch: about 200 GB
            results[f"BM_NoiseTunnelIG_Cuda/{n}"] = n / timed(
                synced(lambda: run_nt(x, target)), min_time)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--tf32", action="store_true", help="(cuda) allow TF32 tensor cores")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("torch_bench.py: --device cuda, but torch sees no CUDA device")
        print(json.dumps(cuda_workloads(args.min_time, args.tf32)))
        return
    results = {}

    for batch in (4, 64):
        net = Net()
        optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
        criterion = nn.CrossEntropyLoss()
        # 32 batches with scrambled labels, as bench_train.cpp: one fixed batch would drive the
        # gradients to denormals within a few thousand steps.
        xs = [torch.rand(batch, 3, 32, 32) * 2 - 1 for _ in range(32)]
        ys = [torch.tensor([((i * 7) % 10 * 3 + k) % 10 for i in range(batch)]) for k in range(32)]
        counter = [0]

        def step():
            k = counter[0] % 32
            counter[0] += 1
            optimizer.zero_grad()
            loss = criterion(net(xs[k]), ys[k])
            loss.backward()
            optimizer.step()
            loss.item()

        results[f"BM_TrainStep_CPU/{batch}"] = batch / timed(step, args.min_time)

    net = Net().eval()
    for batch in (1, 64, 1000):
        x = torch.rand(batch, 3, 32, 32) * 2 - 1
        with torch.no_grad():
            results[f"BM_Inference_CPU/{batch}"] = batch / timed(lambda: net(x), args.min_time)

    shapes = {1: ((64, 3, 32, 32), (6, 3, 5, 5)), 2: ((64, 6, 14, 14), (16, 6, 5, 5))}
    for which, (xs, ws) in shapes.items():
        x, w, b = torch.rand(*xs), torch.rand(*ws), torch.rand(ws[0])
        with torch.no_grad():
            results[f"BM_Conv2dForward_CPU/{which}"] = 64 / timed(lambda: F.conv2d(x, w, b), args.min_time)
        xg = x.clone().requires_grad_(which == 2)
        wg, bg = w.clone().requires_grad_(), b.clone().requires_grad_()
        out = F.conv2d(xg, wg, bg)
        dy = torch.rand_like(out)
        wrt = [wg, bg] + ([xg] if which == 2 else [])
        results[f"BM_Conv2dBackward_CPU/{which}"] = 64 / timed(
            lambda: torch.autograd.grad(out, wrt, dy, retain_graph=True), args.min_time)

    print(json.dumps(results))


if __name__ == "__main__":
    main()
