"""PyTorch peer for `kiln bench --only lottery`: the fairseq-style Transformer of
crates/models/src/seq2seq (post-LN, sinusoidal positions from padding_idx + 1, embeddings scaled
by sqrt(d), tied decoder input/output embedding) and the one-layer masked model of crates/lottery,
written in plain PyTorch (no fairseq), random weights, fp32.

Modes:
  trained  one AdamW update of the trained Transformer (biases, LayerNorm gains) on one batch:
           forward, label-smoothed CE, loss read back, backward of the per-token loss, AdamW
           step (no clipping: the mini profile's clip-norm 0).
  masked   the same for the one-layer masked model: every layer of a side on the same frozen
           random matrices, each layer its own scores (and the two embedding tables), masks
           recomputed each forward as the top `kept` of |scores| per tensor (torch.topk), the
           straight-through gradient `mask + (a - a.detach())`, only scores trained,
           clip_grad_norm_(0.5).
  beam     beam search over N source sentences as one batch, kiln's beam.rs semantics (first
           step expands beam 0 only, 2*beam candidates, an </s> among the first `beam`
           finalised, finished sentences leave the batch), cached keys/values, eval mode,
           </s> banned before max_len (min_len = max_len) so every sentence runs max_len + 1
           decoder steps, as on the kiln side.

The synthetic data follow the rule in crates/lottery/src/bench.rs (`pair`): sentence i has
source and target length 10 + i % 15, source token j = (7i + 3j) % (V - 4) + 4, target token
j = (3i + 7j) % (V - 4) + 4. CHECK is the number kiln expects (target tokens for training,
decoder steps for beam search); the script fails if its own differs.

Timed like kiln's: 2 warm-up updates (1 warm-up batch for beam search), then the median of ITERS.
Prints JSON.

usage: peer_lottery.py MODE V D FFN HEADS LAYERS DROPOUT N ITERS CHECK BEAM MAX_LEN_A MAX_LEN_B THREADS
"""
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

mode = sys.argv[1]
V, D, FFN, HEADS, LAYERS = map(int, sys.argv[2:7])
DROPOUT = float(sys.argv[7])
N, ITERS, CHECK, BEAM = map(int, sys.argv[8:12])
MAX_LEN_A, MAX_LEN_B = float(sys.argv[12]), int(sys.argv[13])
threads = int(sys.argv[14])
torch.set_num_threads(threads)
torch.manual_seed(0)

PAD, EOS = 1, 2
MAX_POSITIONS = 1024
LABEL_SMOOTHING = 0.1
LR = 5e-4
WEIGHT_DECAY = 1e-4
KEEP = 0.5


def pair(i):
    n = 10 + i % 15
    src = [(7 * i + 3 * j) % (V - 4) + 4 for j in range(n)]
    tgt = [(3 * i + 7 * j) % (V - 4) + 4 for j in range(n)]
    return src, tgt


def sinusoidal(rows, d):
    """fairseq's table: sines then cosines, the padding row zero."""
    half = d // 2
    f = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
    a = torch.arange(rows, dtype=torch.float).unsqueeze(1) * f.unsqueeze(0)
    t = torch.cat([torch.sin(a), torch.cos(a)], dim=1)
    t[PAD] = 0
    return t


def source_tensors(srcs):
    """Left-padded sources ending in </s>, positions PAD+1.. over real tokens."""
    b, s = len(srcs), max(len(x) + 1 for x in srcs)
    tok = torch.full((b, s), PAD, dtype=torch.long)
    pos = torch.full((b, s), PAD, dtype=torch.long)
    for r, x in enumerate(srcs):
        off = s - (len(x) + 1)
        tok[r, off:] = torch.tensor(x + [EOS])
        pos[r, off:] = torch.arange(PAD + 1, PAD + 2 + len(x))
    return tok, pos, tok.eq(PAD)


def batch_tensors(pairs):
    src, pos, pad = source_tensors([p[0] for p in pairs])
    t = max(len(p[1]) + 1 for p in pairs)
    prev = torch.full((len(pairs), t), PAD, dtype=torch.long)
    target = torch.full((len(pairs), t), PAD, dtype=torch.long)
    for r, (_, y) in enumerate(pairs):
        prev[r, : len(y) + 1] = torch.tensor([EOS] + y)
        target[r, : len(y) + 1] = torch.tensor(y + [EOS])
    return src, pos, pad, prev, target


# ---------------------------------------------------------------- weights


class Dense(nn.Module):
    """A learnt linear map (fairseq init: Xavier-uniform, gain 1/sqrt(2) for q/k/v), zero bias."""

    def __init__(self, d_in, d_out, qkv):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        nn.init.xavier_uniform_(self.weight, gain=1 / math.sqrt(2) if qkv else 1.0)
        self.bias = nn.Parameter(torch.zeros(d_out))

    def w(self):
        return self.weight, self.bias


def kept(n):
    return n - math.floor((1 - KEEP) * n)


def supermask(scores):
    """1 at the `kept` largest |scores| of the tensor, 0 elsewhere; straight-through to |S|."""
    a = scores.abs()
    flat = a.detach().flatten()
    top = torch.topk(flat, kept(flat.numel()), sorted=False).indices
    m = torch.zeros_like(flat).scatter_(0, top, 1.0).view_as(a)
    return m + (a - a.detach())


class Masked(nn.Module):
    """W ⊙ M(S) with a frozen (possibly shared) W and this layer's own scores, no bias."""

    def __init__(self, weight):
        super().__init__()
        self.register_buffer("weight", weight, persistent=False)
        d_out, d_in = weight.shape
        self.scores = nn.Parameter(torch.empty(d_out, d_in).uniform_(-1 / math.sqrt(d_in), 1 / math.sqrt(d_in)))

    def w(self):
        return self.weight * supermask(self.scores), None


class DenseTable(nn.Module):
    def __init__(self, vocab, d):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(vocab, d) * d**-0.5)
        with torch.no_grad():
            self.weight[PAD] = 0

    def table(self):
        return self.weight


class MaskedTable(nn.Module):
    def __init__(self, vocab, d):
        super().__init__()
        w = torch.empty(vocab, d).uniform_(-math.sqrt(6 / d), math.sqrt(6 / d))  # Kaiming-uniform, fan d
        w[PAD] = 0
        self.register_buffer("weight", w, persistent=False)
        self.scores = nn.Parameter(torch.empty(vocab, d).uniform_(-1 / math.sqrt(d), 1 / math.sqrt(d)))

    def table(self):
        return self.weight * supermask(self.scores)


# ---------------------------------------------------------------- model


def lin(x, p):
    w, b = p.w()
    return F.linear(x, w, b)


class Attention(nn.Module):
    def __init__(self, make):
        super().__init__()
        self.q, self.k, self.v, self.o = make("q"), make("k"), make("v"), make("o")

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, HEADS, D // HEADS).transpose(1, 2)

    def kv(self, x):
        return self.split(lin(x, self.k)), self.split(lin(x, self.v))

    def attend(self, x, k, v, bias):
        b, t, _ = x.shape
        q = self.split(lin(x, self.q) * (D // HEADS) ** -0.5)
        s = q @ k.transpose(2, 3)
        if bias is not None:
            s = s + bias
        ctx = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(b, t, D)
        return lin(ctx, self.o)

    def forward(self, x, keys, bias):
        k, v = self.kv(keys)
        return self.attend(x, k, v, bias)


class Model(nn.Module):
    def __init__(self, masked):
        super().__init__()
        self.masked = masked
        shared = {}

        def proj(side, kind, d_in, d_out):
            if not masked:
                return Dense(d_in, d_out, kind in ("q", "k", "v", "cq", "ck", "cv"))
            # One random matrix per (side, kind), shared by every layer of that side.
            if (side, kind) not in shared:
                w = torch.empty(d_out, d_in)
                if kind in ("q", "k", "v", "cq", "ck", "cv"):
                    nn.init.xavier_uniform_(w, gain=1 / math.sqrt(2))
                elif kind in ("o", "co"):
                    nn.init.xavier_uniform_(w)
                else:
                    nn.init.kaiming_uniform_(w, nonlinearity="relu")
                shared[(side, kind)] = w
            return Masked(shared[(side, kind)])

        def layer(side, cross):
            m = nn.Module()
            m.self_attn = Attention(lambda k: proj(side, k, D, D))
            if cross:
                m.cross_attn = Attention(lambda k: proj(side, "c" + k, D, D))
            m.fc1 = proj(side, "fc1", D, FFN)
            m.fc2 = proj(side, "fc2", FFN, D)
            n = 3 if cross else 2
            m.norms = nn.ModuleList(nn.LayerNorm(D, elementwise_affine=not masked) for _ in range(n))
            return m

        table = MaskedTable if masked else DenseTable
        self.enc_embed, self.dec_embed = table(V, D), table(V, D)
        self.enc = nn.ModuleList(layer("enc", False) for _ in range(LAYERS))
        self.dec = nn.ModuleList(layer("dec", True) for _ in range(LAYERS))
        self.register_buffer("positions", sinusoidal(MAX_POSITIONS + PAD + 1, D), persistent=False)

    def drop(self, x):
        return F.dropout(x, DROPOUT, self.training)

    def embed(self, table, tokens, pos):
        return self.drop(table[tokens] * math.sqrt(D) + self.positions[pos])

    def ffn(self, l, x):
        return lin(F.relu(lin(x, l.fc1)), l.fc2)

    def encode(self, src, pos, pad):
        b, s = src.shape
        key_bias = pad.float().view(b, 1, 1, s) * -1e9
        x = self.embed(self.enc_embed.table(), src, pos)
        for l in self.enc:
            x = l.norms[0](x + self.drop(l.self_attn(x, x, key_bias)))
            x = l.norms[1](x + self.drop(self.ffn(l, x)))
        return x, key_bias

    def forward(self, src, pos, pad, prev):
        enc, key_bias = self.encode(src, pos, pad)
        b, t = prev.shape
        table = self.dec_embed.table()  # once: input embedding and tied output
        x = self.embed(table, prev, torch.arange(PAD + 1, PAD + 1 + t).expand(b, t))
        causal = torch.triu(torch.full((t, t), -1e9), 1).view(1, 1, t, t)
        for l in self.dec:
            x = l.norms[0](x + self.drop(l.self_attn(x, x, causal)))
            x = l.norms[1](x + self.drop(l.cross_attn(x, enc, key_bias)))
            x = l.norms[2](x + self.drop(self.ffn(l, x)))
        return x @ table.t()

    def step(self, enc, key_bias, tokens, step, caches):
        """One incremental decoder step for tokens [r, 1]; log-probabilities [r, V]."""
        r = tokens.shape[0]
        table = self.dec_embed.table()
        x = self.embed(table, tokens, torch.full((r, 1), PAD + 1 + step, dtype=torch.long))
        for l, c in zip(self.dec, caches):
            k, v = l.self_attn.kv(x)
            if "self" in c:
                pk, pv = c["self"]
                k, v = torch.cat([pk, k], 2), torch.cat([pv, v], 2)
            c["self"] = (k, v)
            x = l.norms[0](x + l.self_attn.attend(x, k, v, None))
            if "cross" not in c:
                c["cross"] = l.cross_attn.kv(enc)
            ck, cv = c["cross"]
            x = l.norms[1](x + l.cross_attn.attend(x, ck, cv, key_bias))
            x = l.norms[2](x + self.ffn(l, x))
        return torch.log_softmax((x @ table.t()).view(r, V), dim=-1)


def label_smoothed_loss(logits, target, eps):
    lp = torch.log_softmax(logits.view(-1, V), dim=-1)
    target = target.view(-1, 1)
    keep = target.ne(PAD).float().view(-1)
    ntok = keep.sum().item()
    nll = -lp.gather(1, target).view(-1)
    smooth = -lp.sum(-1)
    loss = ((nll * (1 - eps) + smooth * (eps / V)) * keep).sum()
    return loss, (nll * keep).sum(), int(round(ntok))


def train_seconds(masked):
    model = Model(masked).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.98), eps=1e-8, weight_decay=WEIGHT_DECAY)
    src, pos, pad, prev, target = batch_tensors([pair(i) for i in range(N)])
    clip = 0.5 if masked else 0.0

    def step():
        opt.zero_grad(set_to_none=True)
        loss, nll, ntok = label_smoothed_loss(model(src, pos, pad, prev), target, LABEL_SMOOTHING)
        l = loss.item()
        nll.item()
        if not math.isfinite(l):
            raise SystemExit(f"non-finite loss {l}")
        (loss / ntok).backward()
        if clip > 0:  # kiln's train.rs skips clipping (and the norm) at clip-norm 0
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        return ntok

    ntok = int(target.ne(PAD).sum())
    if ntok != CHECK:
        raise SystemExit(f"peer batch has {ntok} target tokens, kiln's has {CHECK}")
    for _ in range(2):
        step()
    times = []
    for _ in range(ITERS):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return times, {"tokens": ntok, "sentences": N, "padded": list(target.shape)}


@torch.no_grad()
def beam_search(model, srcs, beam, min_len):
    """kiln's beam.rs on cached decoding; returns (hypotheses, decoder steps run)."""
    n = len(srcs)
    src, pos, pad = source_tensors(srcs)
    src_len = src.shape[1]
    max_len = min(int(MAX_LEN_A * src_len) + MAX_LEN_B, MAX_POSITIONS - 1)
    enc, key_bias = model.encode(src, pos, pad)
    rows = torch.arange(n).repeat_interleave(beam)
    enc, key_bias = enc[rows], key_bias[rows]
    caches = [dict() for _ in model.dec]
    active = list(range(n))
    history = [[] for _ in range(n * beam)]
    scores = [0.0] * (n * beam)
    finalized = [[] for _ in range(n)]
    last = [EOS] * (n * beam)
    steps = 0
    for step in range(max_len + 1):
        a = len(active)
        r = a * beam
        lprobs = model.step(enc, key_bias, torch.tensor(last).view(r, 1), step, caches)
        steps += 1
        ban = torch.zeros(V)
        ban[PAD] = -math.inf
        if step < min_len:
            ban[EOS] = -math.inf
        if step >= max_len:
            ban[:] = -math.inf
            ban[EOS] = 0.0
        cand = (lprobs + ban + torch.tensor(scores).view(r, 1)).view(a, beam, V)
        cand = cand[:, 0] if step == 0 else cand.reshape(a, beam * V)
        k = min(2 * beam, cand.shape[1])
        vals, idx = cand.topk(k, dim=1)
        vals, idx = vals.tolist(), idx.tolist()
        next_rows, next_active, next_history, next_scores, next_last = [], [], [], [], []
        for ai, sent in enumerate(active):
            chosen = []
            for c in range(k):
                v, flat = vals[ai][c], idx[ai][c]
                if v == -math.inf:
                    continue
                b, tok = divmod(flat, V)
                row = ai * beam + b
                if tok == EOS:
                    if c < beam and len(finalized[sent]) < beam:
                        finalized[sent].append((history[row], v / (step + 1) ** 1.0))
                elif len(chosen) < beam:
                    chosen.append((row, tok, v))
            if len(finalized[sent]) >= beam or step >= max_len or len(chosen) < beam:
                continue
            next_active.append(sent)
            for row, tok, v in chosen:
                next_rows.append(row)
                next_history.append(history[row] + [tok])
                next_scores.append(v)
                next_last.append(tok)
        if not next_active:
            break
        sel = torch.tensor(next_rows)
        removed = len(next_active) != len(active)
        for c in caches:
            c["self"] = tuple(t.index_select(0, sel) for t in c["self"])
            if removed:
                c["cross"] = tuple(t.index_select(0, sel) for t in c["cross"])
        if removed:
            enc, key_bias = enc.index_select(0, sel), key_bias.index_select(0, sel)
        active, history, scores, last = next_active, next_history, next_scores, next_last
    best = [max(f, key=lambda h: h[1])[0] if f else [] for f in finalized]
    return best, steps


def beam_seconds():
    model = Model(False).eval()
    srcs = [pair(i)[0] for i in range(N)]
    src_len = max(len(s) for s in srcs) + 1
    max_len = min(int(MAX_LEN_A * src_len) + MAX_LEN_B, MAX_POSITIONS - 1)
    out = {}

    def run():
        hyps, steps = beam_search(model, srcs, BEAM, max_len)
        out["steps"], out["lengths"] = steps, {len(h) for h in hyps}

    run()
    times = []
    for _ in range(ITERS):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    if out["steps"] != CHECK or out["lengths"] != {max_len}:
        raise SystemExit(f"peer ran {out['steps']} decoder steps (hypothesis lengths {out['lengths']}), kiln expects {CHECK} and {max_len}")
    return times, {"sentences": N, "decoder_steps": out["steps"], "max_len": max_len}


if mode in ("trained", "masked"):
    times, extra = train_seconds(mode == "masked")
elif mode == "beam":
    times, extra = beam_seconds()
else:
    raise SystemExit(f"unknown mode {mode}")
print(json.dumps({"median_s": statistics.median(times), "torch": torch.__version__, "threads": threads, "mode": mode, **extra}))
