#!/usr/bin/python3
"""Plain-PyTorch reference for `robust bench`: the same workloads, models and settings, the same JSON lines.

Run with Debian's python3-torch (needs libopenblas0 for a fast BLAS):
    /usr/bin/python3 tests/bench/pytorch_reference.py --threads 2 [--quick]
Each line: {"workload", "model", "batch", "threads", "impl": "pytorch", <figure>_per_s | <figure>_s}.
"""
import argparse, gzip, json, os, platform, statistics, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class TinyCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class FmnistCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * 7 * 7, 1024)
        self.fc2 = nn.Linear(1024, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


MODELS = {"tiny-cnn": TinyCnn, "fmnist-cnn": FmnistCnn}


def forward_flops(model, batch):
    """FLOPs of one forward pass (2 per multiply-add) over conv and linear layers."""
    total = 0
    x = torch.zeros(1, 1, 28, 28)
    hooks = []

    def conv_hook(m, inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels
        total += 2 * k * out.numel()

    def lin_hook(m, inp, out):
        nonlocal total
        total += 2 * m.in_features * m.out_features

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return total * batch


def load_images(path, n):
    with gzip.open(path, "rb") as f:
        data = f.read()
    count = int.from_bytes(data[4:8], "big")
    n = min(n, count)
    x = torch.frombuffer(bytearray(data[16:16 + n * 784]), dtype=torch.uint8).float().div(255).view(n, 1, 28, 28)
    return x


def load_labels(path, n):
    with gzip.open(path, "rb") as f:
        data = f.read()
    return torch.frombuffer(bytearray(data[8:8 + n]), dtype=torch.uint8).long()


def pgd(model, x, y, eps, alpha, steps, gen):
    delta = (torch.rand(x.shape, generator=gen) * 2 - 1) * eps
    adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y)
        (g,) = torch.autograd.grad(loss, [adv])
        adv = adv.detach() + alpha * g.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "data", "fashion-mnist"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    reps, warmup = (3, 1) if args.quick else (5, 2)
    x_all = load_images(os.path.join(args.data, "t10k-images-idx3-ubyte.gz"), 2048)
    y_all = load_labels(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz"), 2048)
    common = {"threads": args.threads, "impl": "pytorch", "torch": torch.__version__,
              "cpu": platform.processor() or platform.machine()}

    def emit(d):
        d.update(common)
        print(json.dumps(d), flush=True)

    eps, steps = 0.1, 10
    for name, cls in MODELS.items():
        model = cls().eval()
        for p in model.parameters():
            p.requires_grad_(False)
        for batch in (256, 32):
            x, y = x_all[:batch], y_all[:batch]
            t = timed(lambda: pgd(model, x, y, eps, eps / 4, steps, gen), warmup, reps)
            d = {"workload": "attack-pgd-linf", "model": name, "batch": batch, "img_steps_per_s": batch * steps / t}
            if name == "fmnist-cnn" and batch == 256:
                flops = 3 * forward_flops(model, batch) * steps  # forward + input-gradient backward ≈ 3× forward
                d["gflop_per_s"] = flops / t / 1e9
            emit(d)

    batch = 128
    n_batches = 4 if args.quick else 8
    for workload in ("train-standard", "train-fgsm-rs", "train-pgd7"):
        model = TinyCnn()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def epoch():
            for b in range(n_batches):
                x = x_all[b * batch:(b + 1) * batch]
                y = y_all[b * batch:(b + 1) * batch]
                if workload == "train-standard":
                    inp = x
                else:
                    model.eval()
                    for p in model.parameters():
                        p.requires_grad_(False)
                    if workload == "train-fgsm-rs":
                        inp = pgd(model, x, y, eps, 1.25 * eps, 1, gen)
                    else:
                        inp = pgd(model, x, y, eps, eps / 4, 7, gen)
                    for p in model.parameters():
                        p.requires_grad_(True)
                    model.train()
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(inp), y).backward()
                opt.step()

        t = timed(epoch, 1, reps)
        emit({"workload": workload, "model": "tiny-cnn", "batch": batch, "images_per_s": n_batches * batch / t})

    size = 2048
    a, b = torch.randn(size, size), torch.randn(size, size)
    t = timed(lambda: a @ b, 2, reps)
    emit({"workload": "matmul-peak", "model": f"{size}x{size}", "batch": 1, "gflop_per_s": 2 * size ** 3 / t / 1e9})


if __name__ == "__main__":
    sys.exit(main())
