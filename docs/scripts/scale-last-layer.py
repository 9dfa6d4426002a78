#!/usr/bin/python3
"""Scale one layer of a Robustness .safetensors model file (weight and bias) by a factor.

Used for the saturated-softmax model of docs/results.md: logits x1000 leave every prediction unchanged but
saturate the softmax, so cross-entropy gradients vanish (gradient masking) while DLR, margin and FAB are unaffected.

    /usr/bin/python3 docs/scripts/scale-last-layer.py data/models/tiny-cnn-standard.safetensors \
        runs/tiny-cnn-saturated.safetensors --layer fc2 --factor 1000

Needs only numpy. Keeps every other tensor and the metadata (adds 'modified' and 'modified_from_sha256');
writes a temporary file next to OUT and renames it, so nothing half-written is left.
"""
import argparse, hashlib, json, os, struct, sys
import numpy as np

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input"); ap.add_argument("output")
    ap.add_argument("--layer", default="fc2"); ap.add_argument("--factor", type=float, default=1000.0)
    a = ap.parse_args()
    raw = open(a.input, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = bytearray(raw[8 + n:])
    names = [f"{a.layer}.weight", f"{a.layer}.bias"]
    for name in names:
        if name not in header:
            sys.exit(f"{a.input}: no tensor '{name}' (tensors: {', '.join(k for k in header if k != '__metadata__')})")
        info = header[name]
        if info["dtype"] != "F32":
            sys.exit(f"{a.input}: '{name}' is {info['dtype']}, expected F32")
        b, e = info["data_offsets"]
        values = np.frombuffer(bytes(data[b:e]), dtype="<f4") * np.float32(a.factor)
        data[b:e] = values.astype("<f4").tobytes()
    meta = header.setdefault("__metadata__", {})
    meta["modified"] = f"{', '.join(names)} multiplied by {a.factor:g} (docs/scripts/scale-last-layer.py)"
    meta["modified_from_sha256"] = hashlib.sha256(raw).hexdigest()
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = a.output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text))); f.write(text); f.write(data)
    os.replace(tmp, a.output)
    print(f"{a.output}: {', '.join(names)} x {a.factor:g}")

if __name__ == "__main__":
    main()
