"""PyTorch peer for `kiln bench --only finetune`: one fine-tuning step of a BERT-family encoder
with a fresh two-way classification head (HF BertForSequenceClassification, eager attention,
dropout on, fp32): forward + cross-entropy + backward + clip_grad_norm_(1.0) +
AdamW(lr 2e-5, eps 1e-8, weight decay 0.01), the loss read back with .item() as kiln does.
Timed like kiln's (2 warm-up steps, median of N). Prints JSON.

usage: peer_bert_train.py MODEL_DIR BATCH SEQ ITERS THREADS
"""
import json
import statistics
import sys
import time

import torch
from transformers import AutoModelForSequenceClassification

model_dir, batch, seq, iters, threads = sys.argv[1], *map(int, sys.argv[2:6])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained(
    model_dir, num_labels=2, attn_implementation="eager"
).train()
opt = torch.optim.AdamW(model.parameters(), lr=2e-5, eps=1e-8, weight_decay=0.01)
g = torch.Generator().manual_seed(0)
ids = torch.randint(1000, 30000, (batch, seq), generator=g)
mask = torch.ones_like(ids)
labels = torch.arange(batch) % 2


def step():
    opt.zero_grad(set_to_none=True)
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
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
