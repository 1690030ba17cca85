"""PyTorch peer for `kiln bench --only radar-cdc`: RODNet-CDC training throughput (spec §5.1:
encoder of six (9,5,5) Conv3d + BatchNorm3d + ReLU, decoder of three ConvTranspose3d with one
shared PReLU, linear head, MSE loss, Adam), channels scaled by WIDTH as kiln's `NetConfig`
scales them (round(n·width), at least 1). One step = forward + MSE + backward + Adam. Same
shapes as kiln's benchmark, random inputs; timed like kiln's (3 warm-up steps, median of N).
Prints JSON.

usage: peer_radar_cdc.py BATCH T R A WIDTH N_OUT ITERS THREADS
"""
import json
import statistics
import sys
import time

import torch
from torch import nn

batch, t, r, a = map(int, sys.argv[1:5])
width = float(sys.argv[5])
n_out, iters, threads = map(int, sys.argv[6:9])
torch.set_num_threads(threads)
torch.manual_seed(0)


def ch(n):
    return max(1, round(n * width))


def cbr(i, o, stride):
    return nn.Sequential(
        nn.Conv3d(i, o, (9, 5, 5), stride=stride, padding=(4, 2, 2)),
        nn.BatchNorm3d(o),
        nn.ReLU(),
    )


class Cdc(nn.Module):
    def __init__(self):
        super().__init__()
        c64, c128, c256 = ch(64), ch(128), ch(256)
        self.enc = nn.Sequential(
            cbr(2, c64, 1),
            cbr(c64, c64, (2, 2, 2)),
            cbr(c64, c128, 1),
            cbr(c128, c128, (2, 2, 2)),
            cbr(c128, c256, 1),
            cbr(c256, c256, (1, 2, 2)),
        )
        self.t1 = nn.ConvTranspose3d(c256, c128, (4, 6, 6), (2, 2, 2), (1, 2, 2))
        self.t2 = nn.ConvTranspose3d(c128, c64, (4, 6, 6), (2, 2, 2), (1, 2, 2))
        self.t3 = nn.ConvTranspose3d(c64, n_out, (3, 6, 6), (1, 2, 2), (1, 2, 2))
        self.prelu = nn.PReLU()

    def forward(self, x):
        x = self.enc(x)
        x = self.prelu(self.t1(x))
        x = self.prelu(self.t2(x))
        return self.t3(x)


model = Cdc().train()
opt = torch.optim.Adam(model.parameters(), lr=1e-4)
g = torch.Generator().manual_seed(0)
x = torch.randn(batch, 2, t, r, a, generator=g)
y = torch.rand(batch, n_out, t, r, a, generator=g)


def step():
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()


for _ in range(3):
    step()
times = []
for _ in range(iters):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
print(json.dumps({"median_s": statistics.median(times), "torch": torch.__version__}))
