#!/usr/bin/python3
"""Plain-PyTorch training recipes for docs/time-to-robust.md: what the same race costs in PyTorch on this machine.

    /usr/bin/python3 tests/bench/pytorch_recipes.py --threads 2 [--batches 40] [--full]

For each recipe it times --batches minibatches (after 3 warm-up batches) of the training loop on the Fashion-MNIST
training images and extrapolates to the recipe's whole run: epochs x (60,000 - 1,000 held out) images. Printed as JSON
lines: {"recipe", "model", "batch", "epochs", "images_per_s", "estimated_training_s"}.

Recipes (L-inf eps = 0.1, SGD momentum 0.9, weight decay 5e-4, batch 128):
  fgsm-rs-10   tiny-cnn,   FGSM with a random start, alpha = 1.25 eps, 10 epochs (Wong et al. 2020; the issue's yardstick)
  pgd2-20      fmnist-cnn, PGD-2 with a random start, alpha = 1.25 eps, 20 epochs (our fmnist-cnn race recipe, in float32)
  pgd7-30      fmnist-cnn, PGD-7, alpha = 2.5 eps / 7, 30 epochs (the recipe of the 40-minute run in docs/results.md)
  resnet-pgd2-16  resnet-small, PGD-2, alpha = 1.25 eps, 16 epochs (the resnet-small-pgd run of docs/results.md;
               attack in eval mode, step in train mode, as ours)
--full also runs fgsm-rs-10 end to end (one-cycle LR, peak 0.1) and reports its wall time and PGD-20 test accuracy.
"""
import argparse, gzip, json, os, platform, sys, time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "pytorch"))
from make_fixture import FmnistCnn, TinyCnn  # noqa: E402
from make_zoo_fixture import ResNetSmall  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import pgd  # noqa: E402  (random start in the eps-ball; steps = 1 is FGSM-RS)

EPS = 0.1
TRAIN_IMAGES = 60000 - 1000
RECIPES = {
    "fgsm-rs-10": ("tiny-cnn", TinyCnn, 1, 1.25 * EPS, 10),
    "pgd2-20": ("fmnist-cnn", FmnistCnn, 2, 1.25 * EPS, 20),
    "pgd7-30": ("fmnist-cnn", FmnistCnn, 7, 2.5 * EPS / 7, 30),
    "resnet-pgd2-16": ("resnet-small", ResNetSmall, 2, 1.25 * EPS, 16),
}


def load(folder, split, n=None):
    with gzip.open(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), "rb") as f:
        images = f.read()
    with gzip.open(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), "rb") as f:
        labels = f.read()
    count = int.from_bytes(images[4:8], "big") if n is None else n
    x = torch.frombuffer(bytearray(images[16:16 + count * 784]), dtype=torch.uint8).float().div(255).view(count, 1, 28, 28)
    y = torch.frombuffer(bytearray(labels[8:8 + count]), dtype=torch.uint8).long()
    return x, y


def step(model, opt, x, y, steps, alpha, gen):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    adv = pgd(model, x, y, EPS, alpha, steps, gen)
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(adv), y).backward()
    opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--only", default="fgsm-rs-10,pgd2-20,pgd7-30")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x_train, y_train = load(args.data, "train")
    common = {"threads": args.threads, "impl": "pytorch", "torch": torch.__version__, "cpu": platform.processor() or platform.machine()}
    b = args.batch_size
    for name in args.only.split(","):
        model_name, cls, steps, alpha, epochs = RECIPES[name]
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(0)
        model = cls()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        perm = torch.randperm(TRAIN_IMAGES, generator=gen)
        for i in range(3 + args.batches):
            if i == 3:
                t0 = time.perf_counter()
            idx = perm[(i * b) % (TRAIN_IMAGES - b):][:b]
            step(model, opt, x_train[idx], y_train[idx], steps, alpha, gen)
        rate = args.batches * b / (time.perf_counter() - t0)
        print(json.dumps({"recipe": name, "model": model_name, "batch": b, "epochs": epochs, "images_per_s": rate,
                          "estimated_training_s": epochs * TRAIN_IMAGES / rate, **common}), flush=True)
    if args.full:
        x_test, y_test = load(args.data, "t10k")
        torch.manual_seed(1)
        gen = torch.Generator().manual_seed(1)
        model = TinyCnn()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        epochs, per_epoch = 10, TRAIN_IMAGES // b
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=epochs * per_epoch)
        t0 = time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(TRAIN_IMAGES, generator=gen)
            for i in range(per_epoch):
                idx = perm[i * b:(i + 1) * b]
                step(model, opt, x_train[idx], y_train[idx], 1, 1.25 * EPS, gen)
                sched.step()
        wall = time.perf_counter() - t0
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        correct = clean = 0
        for i in range(0, len(y_test), 500):
            x, y = x_test[i:i + 500], y_test[i:i + 500]
            clean += (model(x).argmax(1) == y).sum().item()
            correct += (model(pgd(model, x, y, EPS, EPS / 4, 20, gen)).argmax(1) == y).sum().item()
        print(json.dumps({"recipe": "fgsm-rs-10 (full run)", "model": "tiny-cnn", "batch": b, "epochs": epochs,
                          "training_s": wall, "test_clean_accuracy": clean / len(y_test),
                          "test_pgd20_robust_accuracy": correct / len(y_test), **common}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
