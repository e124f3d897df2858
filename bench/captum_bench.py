"""Captum twins of bench/bench_attr.cpp's workloads, timed the same way (images per second).

Run with Debian's python3 (/usr/bin/python3, which has python3-torch 1.13). Captum 0.8 is used
when `import captum` works (e.g. PYTHONPATH=/path/to/captum; a missing tqdm is replaced by a no-op
stand-in); otherwise the gradient methods are run in plain PyTorch the way Captum runs them (IG: one
batched autograd.grad over every step; NoiseTunnel: repeat_interleave + noise), and the methods that
need Captum's hooks (DeepLift, DeepLiftShap, LRP) are left out. Prints one JSON object:
{"BM_Saliency_CPU/1": images_per_second, ..., "_using": "captum 0.8.0"}.
"""
import argparse
import json
import os
import struct
import sys
import time
import types
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import Net, timed  # noqa: E402  (one Net and one timer for both yardsticks)
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def load_safetensors(path):
    """F32 tensors of a safetensors file (python3 here has no safetensors package)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__" or e["dtype"] != "F32":
            continue
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[8 + n + b:8 + n + end], dtype="<f4").reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def make_net():
    """The tutorial's pretrained weights when ../shared has them, as bench_attr.cpp does."""
    torch.manual_seed(0)
    net = Net()
    path = os.path.join(HERE, "..", "..", "shared", "reference", "cifar_net.safetensors")
    if os.path.exists(path):
        net.load_state_dict(load_safetensors(path))
    return net.eval()


def import_captum():
    try:
        import tqdm  # noqa: F401
    except ImportError:  # Captum imports tqdm.auto at module level; it only draws progress bars
        class _NoTqdm:
            def __init__(self, iterable=None, *args, **kwargs):
                self.iterable = iterable

            def __iter__(self):
                return iter(self.iterable)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def update(self, *args, **kwargs):
                pass

            def close(self):
                pass

            def set_description(self, *args, **kwargs):
                pass

        stub, auto = types.ModuleType("tqdm"), types.ModuleType("tqdm.auto")
        stub.tqdm = auto.tqdm = _NoTqdm
        stub.auto = auto
        sys.modules["tqdm"], sys.modules["tqdm.auto"] = stub, auto
    try:
        import captum
        import captum.attr
        return captum
    except ImportError:
        return None


def superpixel_mask():
    h = torch.arange(32).view(32, 1) // 8
    w = torch.arange(32).view(1, 32) // 8
    return (h * 4 + w).view(1, 1, 32, 32)


def captum_workloads(net, ca):
    """name -> (images list, fn(x, targets, baselines))."""
    mask = superpixel_mask()
    return {
        "Saliency": lambda x, t, b: ca.Saliency(net).attribute(x, target=t),
        "InputXGradient": lambda x, t, b: ca.InputXGradient(net).attribute(x, target=t),
        "IntegratedGradients": lambda x, t, b: ca.IntegratedGradients(net).attribute(
            x, baselines=x * 0, target=t, return_convergence_delta=True),
        "DeepLift": lambda x, t, b: ca.DeepLift(net).attribute(x, baselines=x * 0, target=t),
        "DeepLiftShap": lambda x, t, b: ca.DeepLiftShap(net).attribute(x, baselines=b, target=t),
        "GradientShap": lambda x, t, b: ca.GradientShap(net).attribute(x, baselines=b, target=t),
        "GuidedBackprop": lambda x, t, b: ca.GuidedBackprop(net).attribute(x, target=t),
        "Deconvolution": lambda x, t, b: ca.Deconvolution(net).attribute(x, target=t),
        "LayerGradCam": lambda x, t, b: ca.LayerGradCam(net, net.conv2).attribute(x, target=t),
        "GuidedGradCam": lambda x, t, b: ca.GuidedGradCam(net, net.conv2).attribute(x, target=t),
        "LRP": lambda x, t, b: ca.LRP(net).attribute(x, target=t),
        "Occlusion": lambda x, t, b: ca.Occlusion(net).attribute(
            x, sliding_window_shapes=(3, 8, 8), strides=(3, 4, 4), baselines=0, target=t),
        "FeatureAblation": lambda x, t, b: ca.FeatureAblation(net).attribute(
            x, target=t, feature_mask=mask),
        "NoiseTunnelIG": lambda x, t, b: ca.NoiseTunnel(ca.IntegratedGradients(net)).attribute(
            x, nt_type="smoothgrad_sq", nt_samples=100, stdevs=0.2, baselines=x * 0, target=t),
    }


# Plain PyTorch, the way Captum computes each method (no Captum installed).
def grads(net, x, t):
    x = x.detach().requires_grad_()
    out = net(x)
    return torch.autograd.grad(out.gather(1, t.view(-1, 1)).sum(), x)[0]


def plain_ig(net, x, t, n_steps=50):
    xs, ws = np.polynomial.legendre.leggauss(n_steps)
    alphas, steps = [0.5 * (1 + a) for a in xs], [0.5 * w for w in ws]
    b = x * 0
    scaled = torch.cat([b + a * (x - b) for a in alphas])  # one batch, step-major
    g = grads(net, scaled, t.repeat(n_steps))
    g = (g.view(n_steps, -1) * torch.tensor(steps).float().view(n_steps, 1)).sum(0)
    attr = g.view_as(x) * (x - b)
    with torch.no_grad():  # convergence delta, as return_convergence_delta=True does
        gap = net(x).gather(1, t.view(-1, 1)) - net(b).gather(1, t.view(-1, 1))
        _ = attr.view(len(x), -1).sum(1) - gap.view(-1)
    return attr


def relu_rule(net, x, t, guided):
    def hook(module, grad_in, grad_out):
        return (F.relu(grad_in[0]),) if guided else (F.relu(grad_out[0]),)
    handles = [m.register_full_backward_hook(hook) for m in (net.relu1, net.relu2, net.relu3,
                                                              net.relu4)]
    try:
        return grads(net, x, t)
    finally:
        for h in handles:
            h.remove()


def grad_cam(net, x, t, relu=False):
    acts = {}
    h = net.conv2.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
    try:
        out = net(x.detach().requires_grad_())
    finally:
        h.remove()
    g = torch.autograd.grad(out.gather(1, t.view(-1, 1)).sum(), acts["a"])[0]
    cam = (g.mean(dim=(2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True)
    return F.relu(cam) if relu else cam


def perturbation(net, x, t, masks):
    with torch.no_grad():
        base = net(x).gather(1, t.view(-1, 1)).view(-1)
        total = torch.zeros_like(x)
        weights = torch.zeros_like(x[:1])
        for m in masks:  # one perturbation per forward (perturbations_per_eval=1)
            out = net(x * (1 - m)).gather(1, t.view(-1, 1)).view(-1)
            total += (base - out).view(-1, 1, 1, 1) * m
            weights += m
        return total / weights.clamp(min=1)


def plain_workloads(net):
    windows = []
    for k in range(49):
        m = torch.zeros(1, 3, 32, 32)
        r, c = (k % 7) * 4, (k // 7) * 4
        m[:, :, r:r + 8, c:c + 8] = 1
        windows.append(m)
    feats = [(superpixel_mask() == k).float().expand(1, 3, 32, 32) for k in range(16)]

    def gradient_shap(x, t, b, n=5):
        xs = x.repeat_interleave(n, 0)
        idx = torch.from_numpy(np.random.choice(len(b), len(xs)))
        noise = torch.normal(0.0, torch.zeros_like(xs))  # stdevs=0.0, still drawn
        alpha = torch.tensor(np.random.uniform(0.0, 1.0, len(xs)), dtype=torch.float32)
        xn, bb = xs + noise, b[idx]
        a = alpha.view(-1, 1, 1, 1)
        g = grads(net, a * xn + (1 - a) * bb, t.repeat_interleave(n))
        return ((xn - bb) * g).view(len(x), n, 3, 32, 32).mean(1)

    def nt_ig(x, t, b, nt=100, stdev=0.2):
        xs = x.repeat_interleave(nt, 0)
        xs = xs + torch.normal(0.0, torch.full_like(xs, stdev))
        a = plain_ig(net, xs, t.repeat_interleave(nt))
        return (a * a).view(len(x), nt, 3, 32, 32).mean(1)

    return {
        "Saliency": lambda x, t, b: grads(net, x, t).abs(),
        "InputXGradient": lambda x, t, b: grads(net, x, t) * x,
        "IntegratedGradients": lambda x, t, b: plain_ig(net, x, t),
        "GradientShap": gradient_shap,
        "GuidedBackprop": lambda x, t, b: relu_rule(net, x, t, True),
        "Deconvolution": lambda x, t, b: relu_rule(net, x, t, False),
        "LayerGradCam": lambda x, t, b: grad_cam(net, x, t),
        "GuidedGradCam": lambda x, t, b: relu_rule(net, x, t, True) * F.interpolate(
            grad_cam(net, x, t, relu=True), (32, 32), mode="nearest"),
        "Occlusion": lambda x, t, b: perturbation(net, x, t, windows),
        "FeatureAblation": lambda x, t, b: perturbation(net, x, t, feats),
        "NoiseTunnelIG": nt_ig,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--filter", default="", help="only workloads whose name contains this")
    parser.add_argument("--nt-images", default="1",
                        help="image counts of NoiseTunnelIG, e.g. 1,16 (16 takes Captum minutes)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # Captum warns about its hooks on every call
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)

    net = make_net()
    captum = import_captum()
    if captum is not None:
        work, using = captum_workloads(net, captum.attr), f"captum {captum.__version__}"
    else:
        work, using = plain_workloads(net), "plain pytorch (no captum)"
    using += f" on torch {torch.__version__}, {args.threads} threads"

    gen = torch.Generator().manual_seed(1)
    baselines = torch.rand(8, 3, 32, 32, generator=gen) * 2 - 1  # DeepLiftShap / GradientShap
    results = {}
    for name, fn in work.items():
        counts = [int(c) for c in args.nt_images.split(",")] if name == "NoiseTunnelIG" else (1, 16)
        for n in counts:
            key = f"BM_{name}_CPU/{n}"
            if args.filter not in key:
                continue
            x = torch.rand(n, 3, 32, 32, generator=gen) * 2 - 1
            t = torch.tensor([(i * 7) % 10 for i in range(n)])
            results[key] = n / timed(lambda: fn(x, t, baselines), args.min_time)
    results["_using"] = using
    print(json.dumps(results))


if __name__ == "__main__":
    main()
