"""PyTorch peer for `kiln bench --only clip-grid`: CLIP grid-feature extraction with open_clip's
own modules (ModifiedResNet for RN50: stem + layer1..4, no attention pool; VisionTransformer with
QuickGELU for ViT-B/32: patchify, class token, positions, ln_pre, the first L-1 blocks), random
weights, eval mode, no gradients. Same batch and size as kiln's; timed like kiln's (2 warm-up
batches, median of N). Prints JSON.

usage: peer_clip_grid.py NAME BATCH SIZE ITERS THREADS
"""
import json
import statistics
import sys
import time

import torch
from open_clip.model import QuickGELU
from open_clip.modified_resnet import ModifiedResNet
from open_clip.transformer import VisionTransformer

name, batch, size, iters, threads = sys.argv[1], *map(int, sys.argv[2:6])
torch.set_num_threads(threads)
torch.manual_seed(0)

if name == "RN50":
    m = ModifiedResNet(layers=(3, 4, 6, 3), output_dim=1024, heads=32, image_size=224, width=64).eval()

    def grid(x):
        x = m.stem(x)
        x = m.layer1(x)
        x = m.layer2(x)
        x = m.layer3(x)
        return m.layer4(x).permute(0, 2, 3, 1)

elif name == "ViT-B-32":
    m = VisionTransformer(image_size=224, patch_size=32, width=768, layers=12, heads=12,
                          mlp_ratio=4.0, output_dim=512, act_layer=QuickGELU).eval()

    def grid(x):
        x = m.conv1(x)
        b, c, h, w = x.shape
        x = x.reshape(b, c, h * w).permute(0, 2, 1)
        cls = m.class_embedding.to(x.dtype) + torch.zeros(b, 1, c, dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + m.positional_embedding
        x = m.ln_pre(x)
        for blk in m.transformer.resblocks[:-1]:
            x = blk(x)
        return x[:, 1:].reshape(b, h, w, c)

else:
    raise SystemExit(f"unknown tower {name}")

x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    for _ in range(2):
        grid(x).sum().item()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        grid(x).sum().item()
        times.append(time.perf_counter() - t)
print(json.dumps({"median_s": statistics.median(times), "torch": torch.__version__, "threads": threads}))
