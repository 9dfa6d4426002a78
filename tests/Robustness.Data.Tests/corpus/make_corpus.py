#!/usr/bin/env python3
"""Writes the tiny seed files of this corpus with an encoder independent of the C# readers (stdlib only).

Contents (the tests check them):
  tiny-images-idx3-ubyte      IDX images, 3 images of 2x3, pixel[i][r][c] = (i*6 + r*3 + c) * 13 % 256
  tiny-labels-idx1-ubyte      IDX labels 0, 9, 4
  tiny-images-idx3-ubyte.gz   the images file gzipped (mtime 0, so the bytes are reproducible)
  tiny-labels-idx1-ubyte.gz   the labels file gzipped
  tiny_batch.bin              CIFAR-10 binary, 2 records, labels 3, 9, pixel byte j of record i = (i*3072 + j) % 251
  tiny-rgb.png                4x3 RGB PNG (width 4, height 3), pixel (x, y) = (x*60, y*100, 200 - x*50)
"""
import gzip, struct, zlib

def write(name, data):
    with open(name, "wb") as f:
        f.write(data)

images = bytes((i * 6 + r * 3 + c) * 13 % 256 for i in range(3) for r in range(2) for c in range(3))
idx_images = struct.pack(">iiii", 0x803, 3, 2, 3) + images
idx_labels = struct.pack(">ii", 0x801, 3) + bytes([0, 9, 4])
write("tiny-images-idx3-ubyte", idx_images)
write("tiny-labels-idx1-ubyte", idx_labels)
write("tiny-images-idx3-ubyte.gz", gzip.compress(idx_images, mtime=0))
write("tiny-labels-idx1-ubyte.gz", gzip.compress(idx_labels, mtime=0))

cifar = b"".join(bytes([label]) + bytes((i * 3072 + j) % 251 for j in range(3072)) for i, label in enumerate([3, 9]))
write("tiny_batch.bin", cifar)

def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

width, height = 4, 3
raw = b"".join(b"\x00" + b"".join(bytes([x * 60, y * 100, 200 - x * 50]) for x in range(width)) for y in range(height))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
write("tiny-rgb.png", png)
