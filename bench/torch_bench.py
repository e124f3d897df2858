"""PyTorch 1.13 twins of bench/bench_train.cpp's workloads, timed the same way (images per second).

Run with Debian's python3 (/usr/bin/python3, which has python3-torch). Prints one JSON object:
{"BM_TrainStep_CPU/4": images_per_second, ...}.
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
    """Runs fn until min_time seconds have passed (after a warm-up); returns seconds per call."""
    for _ in range(3):
        fn()
    iterations, start = 0, time.perf_counter()
    while True:
        fn()
        iterations += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / iterations


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
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
