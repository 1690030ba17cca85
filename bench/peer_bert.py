"""PyTorch peer for `kiln bench`: the same encoder forward (HF transformers BertModel, eager,
fp32, no grad), timed like kiln's (2 warm-up runs, median of N). Prints JSON.

usage: peer_bert.py MODEL_DIR BATCH SEQ ITERS THREADS
"""
import json
import statistics
import sys
import time

import torch
from transformers import AutoModel

model_dir, batch, seq, iters, threads = sys.argv[1], *map(int, sys.argv[2:6])
torch.set_num_threads(threads)
model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
g = torch.Generator().manual_seed(0)
ids = torch.randint(1000, 30000, (batch, seq), generator=g)
mask = torch.ones_like(ids)
with torch.no_grad():
    for _ in range(2):
        model(input_ids=ids, attention_mask=mask)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        model(input_ids=ids, attention_mask=mask)
        times.append(time.perf_counter() - t)
print(json.dumps({"median_s": statistics.median(times), "torch": torch.__version__, "threads": threads}))
