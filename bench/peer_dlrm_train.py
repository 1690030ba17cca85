"""PyTorch peer for `kiln bench --only dlrm`: DLRM training throughput, structured as the
reference facebookresearch/dlrm builds it for Criteo (nn.EmbeddingBag(mode="sum") per table with
one index per bag, ReLU MLPs, a sigmoid top, the bmm dot interaction without self-interaction,
BCELoss), one step = forward + loss + backward + clip_grad_norm_(100) + SGD. Same shapes and
random data as kiln's benchmark; timed like kiln's (3 warm-up steps, median of N). Prints JSON.

usage: peer_dlrm_train.py N_DENSE N_CAT ROWS D HIDDEN BATCH ITERS THREADS
"""
import json
import statistics
import sys
import time

import torch
from torch import nn

n_dense, n_cat, rows, d, hidden, batch, iters, threads = map(int, sys.argv[1:9])
torch.set_num_threads(threads)
torch.manual_seed(0)


def mlp(sizes, sigmoid_last):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], bias=True))
        last = i == len(sizes) - 2
        layers.append(nn.Sigmoid() if (last and sigmoid_last) else nn.ReLU())
    return nn.Sequential(*layers)


class Dlrm(nn.Module):
    def __init__(self):
        super().__init__()
        self.bot = mlp([n_dense, hidden, d], False)
        self.emb = nn.ModuleList(nn.EmbeddingBag(rows, d, mode="sum") for _ in range(n_cat))
        t = n_cat + 1
        self.li = torch.tensor([i for i in range(t) for j in range(i)])
        self.lj = torch.tensor([j for i in range(t) for j in range(i)])
        self.top = mlp([d + t * (t - 1) // 2, hidden, 1], True)

    def forward(self, x, ids, offsets):
        z0 = self.bot(x)
        ly = [e(ids[k], offsets) for k, e in enumerate(self.emb)]
        T = torch.cat([z0] + ly, dim=1).view(x.shape[0], -1, d)
        Z = torch.bmm(T, T.transpose(1, 2))
        R = torch.cat([z0, Z[:, self.li, self.lj]], dim=1)
        return self.top(R).squeeze(1)


model = Dlrm()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.BCELoss()
g = torch.Generator().manual_seed(0)
x = torch.log1p(torch.rand(batch, n_dense, generator=g) * 100)
ids = [torch.randint(0, rows, (batch,), generator=g) for _ in range(n_cat)]
offsets = torch.arange(batch)
y = (torch.rand(batch, generator=g) < 0.25).float()


def step():
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x, ids, offsets), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
    opt.step()
    return loss.item()


for _ in range(3):
    step()
times = []
for _ in range(iters):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
print(json.dumps({"median_s": statistics.median(times), "torch": torch.__version__, "threads": threads}))
