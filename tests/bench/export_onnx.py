#!/usr/bin/python3
"""Exports zoo architectures for `robust bench --only onnx`: the same weights as a PyTorch state dict (which
`robust` loads into its own zoo network with --arch) and as an ONNX graph (which it executes with its graph
executor), so the two attack-throughput figures compare the executor with the native network and nothing else.

  /usr/bin/python3 tests/bench/export_onnx.py OUT_DIR [ARCH ...]     (default: tiny-cnn fmnist-cnn preact-resnet18)

Writes OUT_DIR/<arch>.pt and OUT_DIR/<arch>.onnx (opset 13, dynamic batch axis, seed 0, eval mode).
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures", "pytorch"))
from make_fixture import FmnistCnn, PreActResNet18, TinyCnn  # noqa: E402

ARCHS = {"tiny-cnn": (TinyCnn, (1, 28, 28)), "fmnist-cnn": (FmnistCnn, (1, 28, 28)), "preact-resnet18": (PreActResNet18, (3, 32, 32))}


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(ARCHS)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    for name in names:
        cls, shape = ARCHS[name]
        torch.manual_seed(0)
        model = cls().eval()
        torch.save(model.state_dict(), os.path.join(out, name + ".pt"))
        torch.onnx.export(model, torch.rand(2, *shape), os.path.join(out, name + ".onnx"), opset_version=13,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        print("wrote", name)


if __name__ == "__main__":
    main()
