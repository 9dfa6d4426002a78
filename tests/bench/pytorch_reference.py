#!/usr/bin/python3
"""Plain-PyTorch reference for `robust bench`: the same workloads, models and settings, the same JSON lines.

Run with Debian's python3-torch (needs libopenblas0 for a fast BLAS):
    /usr/bin/python3 tests/bench/pytorch_reference.py --threads 2 [--quick] [--only attack,train,matmul,certify,scaling]
Each line: {"workload", "model", "batch", "threads", "impl": "pytorch", <figure>_per_s | <figure>_s}.
`robust bench --compare "/usr/bin/python3 tests/bench/pytorch_reference.py"` runs it one group at a time (--only),
interleaved with its own groups. `--scaling` (or --only scaling) times the attack over batch sizes 8..512 and the
models tiny-cnn, lenet5 and fmnist-cnn.
"""
import argparse, gzip, json, os, platform, statistics, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F


# The reference definitions, shared with the PyTorch parity fixture (one copy of each architecture in Python).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "pytorch"))
from make_fixture import FmnistCnn, IbpSmall, LeNet5, TinyCnn  # noqa: E402


MODELS = {"tiny-cnn": TinyCnn, "fmnist-cnn": FmnistCnn}
SCALING_MODELS = {"tiny-cnn": TinyCnn, "lenet5": LeNet5, "fmnist-cnn": FmnistCnn}
SCALING_BATCHES = (8, 32, 128, 256, 512)
GROUPS = ("matmul", "attack", "train", "certify")
U32 = 2.0 ** -24  # float32 unit roundoff: the rounding slack `robust certify` widens IBP bounds by (4·γ(n+1))


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


def attack_line(name, model, x_all, y_all, batch, gen, warmup, reps, with_flops):
    eps, steps = 0.1, 10
    x, y = x_all[:batch], y_all[:batch]
    t = timed(lambda: pgd(model, x, y, eps, eps / 4, steps, gen), warmup, reps)
    d = {"workload": "attack-pgd-linf", "model": name, "batch": batch, "img_steps_per_s": batch * steps / t}
    if with_flops:
        flops = 3 * forward_flops(model, batch) * steps  # forward + input-gradient backward ≈ 3× forward
        d["gflop_per_s"] = flops / t / 1e9
    return d


def slack(terms):
    k = terms + 1
    return 4 * k * U32 / (1 - k * U32)


def ibp_margins(model, x, y, eps, with_slack):
    """IBP through ibp-small (centre/radius), last layer folded into the margins z_y - z_j; optionally the float32
    rounding slack of every layer. The same arithmetic as Robustness.Certification.IntervalBoundPropagation."""
    lo, hi = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
    layers = [model.conv1, model.conv2, "flatten", model.fc1]
    for layer in layers:
        if layer == "flatten":
            lo, hi = lo.flatten(1), hi.flatten(1)
            continue
        dtype = lo.dtype
        w, b = layer.weight.to(dtype), layer.bias.to(dtype)
        c, r, m = (hi + lo) / 2, (hi - lo) / 2, torch.maximum(lo.abs(), hi.abs())
        if isinstance(layer, nn.Conv2d):
            stride = layer.stride
            mu, rad = F.conv2d(c, w, b, stride), F.conv2d(r, w.abs(), None, stride)
            if with_slack:
                rad = rad + F.conv2d(m, w.abs(), b.abs(), stride) * slack(w[0].numel())
        else:
            mu, rad = F.linear(c, w, b), F.linear(r, w.abs())
            if with_slack:
                rad = rad + (F.linear(m, w.abs()) + b.abs()) * slack(w.shape[1])
        lo, hi = (mu - rad).relu(), (mu + rad).relu()
    w, b = model.fc2.weight.to(lo.dtype), model.fc2.bias.to(lo.dtype)
    c, r = (hi + lo) / 2, (hi - lo) / 2
    diff = w[y].unsqueeze(1) - w.unsqueeze(0)                      # [N, K, H]
    margin = torch.bmm(diff, c.unsqueeze(2)).squeeze(2) - torch.bmm(diff.abs(), r.unsqueeze(2)).squeeze(2) + (b[y].unsqueeze(1) - b.unsqueeze(0))
    if with_slack:
        m = torch.maximum(lo.abs(), hi.abs())
        row = F.linear(m, w.abs()) + b.abs()
        margin = margin - (row.gather(1, y.unsqueeze(1)) + row) * slack(w.shape[1])
    return margin.scatter(1, y.unsqueeze(1), 0.0)


def frozen(cls):
    torch.manual_seed(0)
    model = cls().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=",".join(GROUPS), help="comma-separated groups: matmul, attack, train, certify, scaling")
    ap.add_argument("--scaling", action="store_true", help="add the batch-size / model-size sweep")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "data", "fashion-mnist"))
    args = ap.parse_args()
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    if args.scaling and "scaling" not in groups:
        groups.append("scaling")
    for g in groups:
        if g not in GROUPS + ("scaling", "eval"):
            ap.error(f"--only: unknown group {g!r}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    reps, warmup = (1, 0) if args.quick else (5, 2)
    x_all = load_images(os.path.join(args.data, "t10k-images-idx3-ubyte.gz"), 2048)
    y_all = load_labels(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz"), 2048)
    common = {"threads": args.threads, "impl": "pytorch", "torch": torch.__version__,
              "cpu": platform.processor() or platform.machine()}

    def emit(d):
        d.update(common)
        print(json.dumps(d), flush=True)

    eps = 0.1
    if "matmul" in groups:
        size = 2048
        a, b = torch.randn(size, size), torch.randn(size, size)
        t = timed(lambda: a @ b, max(1, warmup), max(3, reps))
        emit({"workload": "matmul-peak", "model": f"{size}x{size}", "batch": 1, "gflop_per_s": 2 * size ** 3 / t / 1e9})

    if "attack" in groups:
        for name, cls in MODELS.items():
            model = frozen(cls)
            for batch in (256, 32):
                emit(attack_line(name, model, x_all, y_all, batch, gen, warmup, reps,
                                 name == "fmnist-cnn" and batch == 256))

    if "train" in groups:
        batch = 128
        n_batches = 1 if args.quick else 8
        for workload in ("train-standard", "train-fgsm-rs", "train-pgd7"):
            torch.manual_seed(0)
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

            t = timed(epoch, min(1, warmup), reps)
            emit({"workload": workload, "model": "tiny-cnn", "batch": batch, "images_per_s": n_batches * batch / t})

    if "certify" in groups:
        # Randomized smoothing's inner loop: class counts of tiny-cnn over noisy copies of one image.
        model = frozen(TinyCnn)
        samples, noise_batch, sigma = (1000 if args.quick else 10000), 250, 0.25  # the batch `robust certify` uses
        x = x_all[:1]

        def counts():
            total = torch.zeros(10, dtype=torch.long)
            with torch.no_grad():
                done = 0
                while done < samples:
                    b = min(noise_batch, samples - done)
                    noisy = x + torch.randn((b,) + tuple(x.shape[1:]), generator=gen) * sigma
                    total += torch.bincount(model(noisy).argmax(1), minlength=10)
                    done += b
            return total

        t = timed(counts, warmup, reps)
        emit({"workload": "certify-smoothing", "model": "tiny-cnn", "batch": noise_batch, "image_samples_per_s": samples / t})

        # IBP verification of one batch in float64 with the rounding slack.
        model = frozen(IbpSmall)
        xb, yb = x_all[:256].double(), y_all[:256]
        with torch.no_grad():
            t = timed(lambda: ibp_margins(model, xb, yb, eps, True), warmup, reps)
        emit({"workload": "certify-ibp", "model": "ibp-small", "batch": 256, "images_per_s": 256 / t, "dtype": "float64"})

        # IBP training: clean CE and worst-case CE at full eps (kappa 0.5), backward, Adam.
        torch.manual_seed(0)
        model = IbpSmall()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
        batch, n_batches = 128, (1 if args.quick else 8)

        def ibp_epoch():
            model.train()
            for bi in range(n_batches):
                x = x_all[bi * batch:(bi + 1) * batch]
                y = y_all[bi * batch:(bi + 1) * batch]
                worst = -ibp_margins(model, x, y, eps, False)
                loss = 0.5 * F.cross_entropy(model(x), y) + 0.5 * F.cross_entropy(worst, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        t = timed(ibp_epoch, min(1, warmup), reps)
        emit({"workload": "train-ibp", "model": "ibp-small", "batch": batch, "images_per_s": n_batches * batch / t})

    if "scaling" in groups:
        s_reps, s_warmup = (1, 0) if args.quick else (3, 1)
        for name, cls in SCALING_MODELS.items():
            model = frozen(cls)
            for batch in SCALING_BATCHES:
                emit(attack_line(name, model, x_all, y_all, batch, gen, s_warmup, s_reps, False))


if __name__ == "__main__":
    sys.exit(main())
