"""PyTorch peer for `kiln bench`: GPT-2 decoder training throughput. The same configuration as
kiln's (HF GPT2LMHeadModel, random init, dropout 0.1 in train mode, fp32), one optimizer step =
forward + LM loss + backward + AdamW(betas (0.9, 0.98), eps 1e-6, weight decay 0); timed like
kiln's (2 warm-up steps, median of N). Prints JSON.

torch's AdamW applies bias correction, which the staged-training optimiser does not; the cost
difference is two scalar multiplies per tensor.

usage: peer_gpt2_train.py VOCAB N_EMBD N_LAYER N_HEAD SEQ BATCH ITERS THREADS
"""
import json
import statistics
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

vocab, d, layers, heads, seq, batch, iters, threads = map(int, sys.argv[1:9])
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = GPT2Config(vocab_size=vocab, n_positions=seq, n_embd=d, n_layer=layers, n_head=heads)
model = GPT2LMHeadModel(cfg).train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.0)
g = torch.Generator().manual_seed(0)
ids = torch.randint(0, vocab, (batch, seq), generator=g)


def step():
    opt.zero_grad(set_to_none=True)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    return loss.item()


for _ in range(2):
    step()
times = []
for _ in range(iters):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
print(json.dumps({"median_s": statistics.median(times), "torch": torch.__version__, "threads": threads}))
