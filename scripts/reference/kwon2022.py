"""Runs the official code of Kwon et al. 2022 (github.com/WoosukKwon/retraining-free-pruning)
on this CPU, to compare kiln's glue-pruning against it stage by stage on one checkpoint.

Nothing of the official code is copied here: it is imported from a checkout passed with
`--reference`, and only the things it cannot do on a CPU-only machine without network access are
replaced, each as close to what it stands for as we can make it:

* CUDA: `.cuda()` and `.to("cuda")` become no-ops (the code is otherwise device-agnostic).
* cupy's LSMR: SciPy's `lsmr` on the same float32 arrays with cupyx's settings (damp 1 as the
  code passes it, atol = btol = 1e-6, conlim 1e8, maxiter 5·n, the default of cupyx 11-13).
* `datasets.load_dataset("glue", ...)`: GLUE's own TSV files (../shared/data/glue_data),
  tokenised exactly as `dataset/glue.py` tokenises (pairs, truncation at the task's max length,
  no padding; `DataCollatorWithPadding` pads each batch).
* `datasets.load_metric`: accuracy (MRPC/SST-2's target metric) or Spearman (STS-B) computed
  here, over the same masked forward passes as `evaluate/glue.py`.

`main.py` is followed step for step (seed, the 2048-draw sample set *with replacement*, batch 32,
gradients, √C teacher, MAC search, rearrangement, rescaling), and the dev metric is scored after
each stage rather than only at the end, so each stage can be compared with kiln's.

Subcommands:
  finetune  fine-tune an HF BertForSequenceClassification from a base model with a plain
            PyTorch loop (AdamW, linear decay), saved in HF's layout (safetensors + tokenizer).
  prune     run the official method over seeds and constraints and write one JSON line per cell.
  samples   write the sample sets the official code draws per seed, for kiln's `sample_indices`
            (both then prune from identical samples and compare seed by seed).

Needs torch 2.9.0 (scripts/with-torch's venv) plus transformers 4.36.2, scipy and numpy:
  ~/.cache/kiln/torch-2.9.0/bin/pip install transformers==4.36.2 scipy numpy
"""

import argparse
import csv
import json
import math
import os
import sys
import time
import types

import numpy as np
import torch

TASKS = {
    # task: (directory, sentence columns, label column, max_len, num_labels)
    "mrpc": ("MRPC", (3, 4), 0, 128, 2),
    "sst2": ("SST-2", (0, None), 1, 64, 2),
    "stsb": ("STS-B", (7, 8), 9, 128, 1),
}


def read_glue(data_dir, task, split):
    folder, (a, b), label, _, _ = TASKS[task]
    path = os.path.join(data_dir, "glue_data", folder, f"{split}.tsv")
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for i, line in enumerate(f):
            if i == 0:
                continue
            cols = line.rstrip("\n").split("\t")
            try:
                y = float(cols[label])
            except (IndexError, ValueError):
                sys.exit(f"{path}:{i + 1}: no label in column {label}: {line[:80]!r}")
            rows.append((cols[a], cols[b] if b is not None else None, y))
    return rows


def encode(rows, tokenizer, task):
    max_len, num_labels = TASKS[task][3], TASKS[task][4]
    out = []
    for s1, s2, y in rows:
        enc = tokenizer(s1, s2, padding=False, max_length=max_len, truncation=True)
        enc = dict(enc)
        enc["labels"] = float(y) if num_labels == 1 else int(y)
        out.append(enc)
    return out


def finetune(args):
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, get_linear_schedule_with_warmup)

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    tok = AutoTokenizer.from_pretrained(args.base, use_fast=True)
    num_labels = TASKS[args.task][4]
    model = AutoModelForSequenceClassification.from_pretrained(args.base, num_labels=num_labels)
    train = encode(read_glue(args.data, args.task, "train"), tok, args.task)
    dev = encode(read_glue(args.data, args.task, "dev"), tok, args.task)
    collate = DataCollatorWithPadding(tok)
    loader = torch.utils.data.DataLoader(train, batch_size=args.batch, shuffle=True,
                                         collate_fn=collate)
    steps = len(loader) * args.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)
    t0 = time.time()
    step = 0
    for epoch in range(args.epochs):
        model.train()
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 20 == 0:
                print(f"epoch {epoch} step {step}/{steps} loss {loss.item():.4f} "
                      f"{time.time() - t0:.0f}s", flush=True)
        metric = score(model, dev, collate, args.task, None, None)
        print(f"epoch {epoch}: dev {metric:.4f}", flush=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tok.save_pretrained(args.out)
    with open(os.path.join(args.out, "hf-finetune.json"), "w") as f:
        json.dump({"base": args.base, "task": args.task, "epochs": args.epochs, "lr": args.lr,
                   "batch": args.batch, "seed": args.seed, "dev": metric,
                   "torch": torch.__version__,
                   "transformers": __import__("transformers").__version__}, f, indent=1)


@torch.no_grad()
def score(model, dev, collate, task, head_mask, neuron_mask):
    """The dev metric of `evaluate/glue.py` (batch 128, masks applied the same way)."""
    from scipy.stats import spearmanr
    model.eval()
    handles = []
    if neuron_mask is not None:
        from utils.arch import apply_neuron_mask
        handles = apply_neuron_mask(model, neuron_mask)
    preds, labels = [], []
    for i in range(0, len(dev), 128):
        batch = collate(dev[i:i + 128])
        logits = model(head_mask=head_mask, **batch).logits
        preds.append(logits.squeeze(-1) if TASKS[task][4] == 1 else logits.argmax(-1))
        labels.append(batch["labels"])
    for h in handles:
        h.remove()
    p, y = torch.cat(preds).numpy(), torch.cat(labels).numpy()
    if TASKS[task][4] == 1:
        return float(spearmanr(p, y)[0])
    return float((p == y).mean())


def cpu_stand_ins():
    """Lets the official code run here: CUDA calls become no-ops; cupy/cupyx/datasets are
    stand-in modules (the real ones are not installable without a GPU or network)."""
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    to = torch.Tensor.to

    def to_cpu(self, *a, **k):
        a = tuple("cpu" if isinstance(x, str) and x.startswith("cuda") else x for x in a)
        if isinstance(k.get("device"), str) and k["device"].startswith("cuda"):
            k["device"] = "cpu"
        k.pop("non_blocking", None)
        return to(self, *a, **k)

    torch.Tensor.to = to_cpu

    from scipy.sparse.linalg import lsmr as scipy_lsmr

    def lsmr(A, b, x0=None, damp=0.0, atol=1e-6, btol=1e-6, conlim=1e8, maxiter=None):
        n = A.shape[1]
        return scipy_lsmr(np.asarray(A, np.float32), np.asarray(b, np.float32), damp=damp,
                          atol=atol, btol=btol, conlim=conlim,
                          maxiter=5 * n if maxiter is None else maxiter, x0=x0)

    cupy = types.ModuleType("cupy")
    cupy.asarray = np.asarray
    cupy.asnumpy = np.asarray
    cupyx = types.ModuleType("cupyx")
    for name in ["cupyx.scipy", "cupyx.scipy.sparse", "cupyx.scipy.sparse.linalg"]:
        sys.modules[name] = types.ModuleType(name)
    sys.modules["cupyx.scipy.sparse.linalg"].lsmr = lsmr
    sys.modules["cupy"] = cupy
    sys.modules["cupyx"] = cupyx
    datasets = types.ModuleType("datasets")

    def unavailable(*a, **k):
        raise RuntimeError("the harness reads GLUE from ../shared/data; datasets is not used")

    datasets.load_dataset = unavailable
    datasets.load_metric = unavailable
    sys.modules["datasets"] = datasets


def stopped_at(tuned_h, tuned_n, rh, rn):
    """Where `rescale_mask` broke out of its loop (it says nothing itself): the first block it
    would have tuned, in its order (layer l's heads for l > 0, then layer l's neurons, each only
    if any unit is kept), whose mask it left as it was; None if it tuned every block. A solved
    scale of exactly 1.0 for every unit of a block would read as a stop, which float32 LSMR
    does not produce."""
    for layer in range(rh.shape[0]):
        blocks = []
        if layer > 0 and rh[layer].any():
            blocks.append(("heads", tuned_h[layer], rh[layer]))
        if rn[layer].any():
            blocks.append(("FFN", tuned_n[layer], rn[layer]))
        for name, tuned, before in blocks:
            if torch.equal(tuned, before):
                return f"layer {layer} {name}"
    return None


def prune(args):
    sys.path.insert(0, os.path.abspath(args.reference))
    import transformers  # noqa: F401  (before the stand-ins: it probes for `datasets`)
    cpu_stand_ins()
    from torch.utils.data import DataLoader, Subset
    from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, set_seed)
    from dataset.glue import avg_seq_length
    from efficiency.mac import compute_mask_mac
    from prune.fisher import collect_mask_grads
    from prune.search import search_mac
    from prune.rearrange import rearrange_mask
    from prune.rescale import rescale_mask
    from utils.schedule import get_pruning_schedule

    torch.set_num_threads(args.threads)
    config = AutoConfig.from_pretrained(args.ckpt)
    model = AutoModelForSequenceClassification.from_pretrained(args.ckpt, config=config)
    tok = AutoTokenizer.from_pretrained(args.ckpt, use_fast=True)
    train = encode(read_glue(args.data, args.task, "train"), tok, args.task)
    dev = encode(read_glue(args.data, args.task, "dev"), tok, args.task)
    collate = DataCollatorWithPadding(tok)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    seq_len = avg_seq_length(args.task)
    unpruned = score(model, dev, collate, args.task, None, None)
    print(f"unpruned dev {unpruned:.4f}", flush=True)
    out = open(args.out, "a")
    for seed in args.seeds:
        set_seed(seed)
        picks = np.random.choice(len(train), args.num_samples).tolist()
        loader = DataLoader(Subset(train, picks), batch_size=32, collate_fn=collate,
                            shuffle=False)
        t0 = time.time()
        head_grads, neuron_grads = collect_mask_grads(
            model,
            torch.ones(config.num_hidden_layers, config.num_attention_heads),
            torch.ones(config.num_hidden_layers, config.intermediate_size),
            loader,
        )
        grads_s = time.time() - t0
        for c in args.constraints:
            t0 = time.time()
            teacher_c = get_pruning_schedule(target=c, num_iter=2)[0]
            th, tn = search_mac(config, head_grads, neuron_grads, seq_len, teacher_c)
            hm, nm = search_mac(config, head_grads, neuron_grads, seq_len, c)
            mac, orig = compute_mask_mac(hm, nm, seq_len, config.hidden_size)
            # `rearrange_mask` writes into `mask.cpu()`, a copy on the GPU the code was written
            # for but the mask itself on a CPU: pass copies so `hm`/`nm` stay the search result.
            rh = rearrange_mask(hm.clone(), head_grads)
            rn = rearrange_mask(nm.clone(), neuron_grads)
            tune = args.tune_at is None or any(abs(c - t) < 1e-9 for t in args.tune_at)
            if tune:
                tuned_h, tuned_n = rescale_mask(model, config, th, tn, rh, rn, loader,
                                                classification_task=True)
            prune_s = time.time() - t0 + grads_s
            cell = {
                "task": args.task, "constraint": c, "seed": seed,
                "num_samples": args.num_samples, "unpruned": unpruned,
                "search": score(model, dev, collate, args.task, hm, nm),
                "rearrange": score(model, dev, collate, args.task, rh, rn),
                "tuned": score(model, dev, collate, args.task, tuned_h, tuned_n) if tune else None,
                "mac_ratio": float(mac / orig),
                "heads_kept": int(hm.sum()), "neurons_kept": int(nm.sum()),
                "tuned_layers_changed": int(((tuned_h != rh).any(1) | (tuned_n != rn).any(1)).sum())
                if tune else None,
                "tuning_stopped_at": stopped_at(tuned_h, tuned_n, rh, rn) if tune else None,
                "prune_s": prune_s,
            }
            print(json.dumps(cell), flush=True)
            out.write(json.dumps(cell) + "\n")
            out.flush()


def samples(args):
    """The sample sets `main.py` draws (`set_seed(seed)`, then `np.random.choice(len(train),
    num_samples)`), as {"<seed>": [training indices]}, for kiln's `sample_indices`."""
    from transformers import set_seed
    n = len(read_glue(args.data, args.task, "train"))
    picks = {}
    for seed in args.seeds:
        set_seed(seed)
        picks[str(seed)] = np.random.choice(n, args.num_samples).tolist()
    with open(args.out, "w") as f:
        json.dump(picks, f)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("finetune")
    f.add_argument("--base", required=True, help="HF directory of the pre-trained encoder")
    f.add_argument("--task", default="mrpc", choices=sorted(TASKS))
    f.add_argument("--data", default="../shared/data")
    f.add_argument("--out", required=True)
    f.add_argument("--epochs", type=int, default=3)
    f.add_argument("--lr", type=float, default=5e-5)
    f.add_argument("--batch", type=int, default=32)
    f.add_argument("--seed", type=int, default=42)
    r = sub.add_parser("prune")
    r.add_argument("--reference", required=True, help="checkout of retraining-free-pruning")
    r.add_argument("--ckpt", required=True, help="fine-tuned HF checkpoint directory")
    r.add_argument("--task", default="mrpc", choices=sorted(TASKS))
    r.add_argument("--data", default="../shared/data")
    r.add_argument("--constraints", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7])
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--num-samples", type=int, default=2048)
    r.add_argument("--tune-at", type=float, nargs="*", default=None,
                   help="tune only at these constraints (none: no tuning; tuning costs minutes "
                        "per cell on a CPU; gradients, search and rearrangement run at every "
                        "constraint)")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--out", required=True, help="JSON-lines file (appended)")
    d = sub.add_parser("samples", help="write the official code's sample sets for kiln")
    d.add_argument("--task", default="mrpc", choices=sorted(TASKS))
    d.add_argument("--data", default="../shared/data")
    d.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    d.add_argument("--num-samples", type=int, default=2048)
    d.add_argument("--out", required=True)
    args = p.parse_args()
    {"finetune": finetune, "prune": prune, "samples": samples}[args.cmd](args)


if __name__ == "__main__":
    main()
