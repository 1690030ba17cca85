"""PyTorch goldens for kiln-radar's networks (crates/radar/src/nets/golden.rs reads them).

Regenerate from the repository root with the PyTorch kiln keeps (2.9, CPU; no numpy needed):

  ~/.cache/kiln/torch-2.9.0/bin/python scripts/reference/radar_nets_golden.py

It writes crates/radar/tests/data/nets_*.json (under 300 KB together):
* nets_conv3d.json: Conv3d 2->3, kernel (9,5,5), stride (2,2,2), padding (4,2,2);
* nets_conv_transpose3d.json: ConvTranspose3d 3->2 with kernel (4,6,6), stride 2, padding
  (1,2,2) and with kernel (3,6,6), stride (1,2,2), padding (1,2,2), on one input;
* nets_trilinear.json: F.interpolate(mode="trilinear", align_corners=False) by (2,2,2) and
  (1,2,2), as the ResNet decoder A's nn.Upsample does;
* nets_cdc_tiny.json: RODNet-CDC (spec §5.1) with channels 64/128/256 -> 1/2/4 (kiln's width
  1/64), n_out 3, BatchNorm in eval mode with non-trivial running statistics;
* nets_hashed.json: whole networks whose weights and inputs are not stored: every value comes
  from `hashed(name, shape)` below (integer arithmetic, so Rust reproduces it bit for bit) and
  only the outputs are stored (every 8th value for the ResNets): C21D (§5.2), RODNet-HG with
  2 stacks and a sigmoid head (§5.3), HGwI (§5.4), and the ResNet-(2+1)D with stem b +
  decoder A ("Resnet18b") and with the torchvision stem + decoder B (§5.5), each at a tiny
  width, BatchNorm in eval mode.

Stored weights and inputs are rounded to 6 significant digits *before* the outputs are computed,
so the JSON holds exactly the numbers the outputs came from. Parameter names are kiln's burn
field paths (e.g. `conv1a.conv.weight`, `decoder.convt1.bias`), in PyTorch's layouts, which
burn shares for Conv3d ([out, in, k...]) and ConvTranspose3d ([in, out, k...]).

The networks here are written from the spec, not copied from the reference repositories.
"""

import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates", "radar", "tests", "data")
MASK = (1 << 64) - 1


def r6(t):
    """Rounds a tensor to 6 significant digits (in place) and returns it."""
    with torch.no_grad():
        t.copy_(torch.tensor([float("%.6g" % v) for v in t.flatten().tolist()]).view_as(t))
    return t


def flat(t, digits=7):
    return [float("%.*g" % (digits, v)) for v in t.detach().flatten().tolist()]


def entry(t):
    return {"shape": list(t.shape), "data": flat(t)}


def save(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
    print(f"{path}: {os.path.getsize(path)} bytes")


def rand(*shape, scale=1.0):
    return r6(torch.randn(*shape) * scale)


# --- hashed values (the ResNet golden) ---------------------------------------------------------


def fnv1a(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def unit(name, n):
    """n values in [0, 1): splitmix64(fnv1a(name) + k) >> 11, times 2^-53 (exact in f64)."""
    h = fnv1a(name)
    return [(splitmix64((h + k) & MASK) >> 11) * 2.0**-53 for k in range(n)]


def hashed(name, shape):
    """The value rule by the name's last part, as golden.rs applies it."""
    n = math.prod(shape)
    u = unit(name, n)
    last = name.rsplit(".", 1)[-1]
    if last == "weight" and len(shape) == 5:  # convolutions: U(±sqrt(6 / (numel / shape[0])))
        s = math.sqrt(6.0 / (n // shape[0]))
        v = [(2.0 * x - 1.0) * s for x in u]
    elif last in ("gamma", "running_var"):
        v = [0.75 + 0.5 * x for x in u]
    elif last == "alpha":
        v = [0.1 + 0.3 * x for x in u]
    else:  # biases, beta, running_mean, the input
        v = [(2.0 * x - 1.0) * 0.1 for x in u]
    return torch.tensor(v, dtype=torch.float64).to(torch.float32).view(*shape)


# --- networks in kiln's field names ----------------------------------------------------------


class BR(nn.Module):
    """Conv3d + BatchNorm3d + ReLU ("BR" in spec §5)."""

    def __init__(self, cin, cout, kernel, stride=(1, 1, 1), bias=True):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel, stride, tuple(k // 2 for k in kernel), bias=bias)
        self.bn = nn.BatchNorm3d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class CdcDecoder(nn.Module):
    def __init__(self, c64, c128, c256, n_out):
        super().__init__()
        self.convt1 = nn.ConvTranspose3d(c256, c128, (4, 6, 6), (2, 2, 2), (1, 2, 2))
        self.convt2 = nn.ConvTranspose3d(c128, c64, (4, 6, 6), (2, 2, 2), (1, 2, 2))
        self.convt3 = nn.ConvTranspose3d(c64, n_out, (3, 6, 6), (1, 2, 2), (1, 2, 2))
        self.prelu = nn.PReLU()

    def forward(self, x):
        x = self.prelu(self.convt1(x))
        x = self.prelu(self.convt2(x))
        return self.convt3(x)


class Cdc(nn.Module):
    def __init__(self, cin, c64, c128, c256, n_out):
        super().__init__()
        k = (9, 5, 5)
        self.conv1a = BR(cin, c64, k)
        self.conv1b = BR(c64, c64, k, (2, 2, 2))
        self.conv2a = BR(c64, c128, k)
        self.conv2b = BR(c128, c128, k, (2, 2, 2))
        self.conv3a = BR(c128, c256, k)
        self.conv3b = BR(c256, c256, k, (1, 2, 2))
        self.decoder = CdcDecoder(c64, c128, c256, n_out)

    def forward(self, x):
        for layer in [self.conv1a, self.conv1b, self.conv2a, self.conv2b, self.conv3a, self.conv3b]:
            x = layer(x)
        return self.decoder(x)


def m2p1(cin, planes):
    return (cin * planes * 27) // (cin * 9 + 3 * planes)


class Conv2Plus1d(nn.Module):
    def __init__(self, cin, cout, mid, s):
        super().__init__()
        self.spatial = nn.Conv3d(cin, mid, (1, 3, 3), (1, s, s), (0, 1, 1), bias=False)
        self.bn = nn.BatchNorm3d(mid)
        self.temporal = nn.Conv3d(mid, cout, (3, 1, 1), (s, 1, 1), (1, 0, 0), bias=False)

    def forward(self, x):
        return self.temporal(F.relu(self.bn(self.spatial(x))))


class Shortcut(nn.Module):
    def __init__(self, cin, cout, s):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 1, s, bias=False)
        self.bn = nn.BatchNorm3d(cout)


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, s):
        super().__init__()
        mid = m2p1(cin, planes)
        self.conv1 = Conv2Plus1d(cin, planes, mid, s)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = Conv2Plus1d(planes, planes, mid, 1)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = Shortcut(cin, planes, s) if (s != 1 or cin != planes) else None

    def forward(self, x):
        res = x if self.downsample is None else self.downsample.bn(self.downsample.conv(x))
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + res)


class ResNetAe(nn.Module):
    """R(2+1)D-18 layers with stem "tv" or "b" and decoder "A" or "B"."""

    def __init__(self, cin, c45, c64, c128, c256, c512, n_out, stem, decoder):
        super().__init__()
        self.encoder = nn.Module()
        e = self.encoder
        if stem == "b":
            e.stem1 = BR(cin, c45, (9, 1, 1), bias=False)
            e.stem2 = BR(c45, c64, (1, 5, 5), (1, 2, 2), bias=False)
        else:
            e.stem1 = BR(cin, c45, (1, 7, 7), (1, 2, 2), bias=False)
            e.stem2 = BR(c45, c64, (3, 1, 1), bias=False)
        inp = c64
        for i, (p, s) in enumerate([(c64, 1), (c128, 2), (c256, 2), (c512, 2)]):
            setattr(e, f"layer{i + 1}", nn.ModuleList([BasicBlock(inp, p, s), BasicBlock(p, p, 1)]))
            inp = p
        self.decoder = nn.Module()
        self.kind = decoder
        d = self.decoder
        k = (3, 7, 7)
        if decoder == "A":
            d.conv4, d.conv3, d.conv2 = BR(c512, c256, k), BR(c256, c128, k), BR(c128, c64, k)
            d.conv1 = BR(c64, n_out, k)
            d.conv_x3, d.conv_x2, d.conv_x1 = BR(c256, c512, k), BR(c128, c256, k), BR(c64, c128, k)
        else:
            two = (2, 2, 2)
            d.conv_x3, d.conv_x2 = BR(c256, c512, k, two), BR(c128, c256, k, two)
            d.conv_x1 = BR(c64, c128, k, two)
            t, p = (4, 6, 6), (1, 2, 2)
            d.convt4 = nn.ConvTranspose3d(c512, c256, t, two, p)
            d.convt3 = nn.ConvTranspose3d(c256, c128, t, two, p)
            d.convt2 = nn.ConvTranspose3d(c128, c64, t, two, p)
            d.convt1 = nn.ConvTranspose3d(c64, n_out, (3, 6, 6), (1, 2, 2), p)
            d.prelu = nn.PReLU()

    def forward(self, x):
        e, d = self.encoder, self.decoder
        x = e.stem2(e.stem1(x))
        skips = []
        for layer in [e.layer1, e.layer2, e.layer3, e.layer4]:
            for block in layer:
                x = block(x)
            skips.append(x)
        x1, x2, x3, x4 = skips
        if self.kind == "B":
            y = d.prelu(d.convt4(x4 + d.conv_x3(x3)))
            y = d.prelu(d.convt3(y + d.conv_x2(x2)))
            y = d.prelu(d.convt2(y + d.conv_x1(x1)))
            return d.convt1(y)
        up = lambda t, s: F.interpolate(t, scale_factor=s, mode="trilinear", align_corners=False)
        y = d.conv4(up(x4, (2, 2, 2)) + d.conv_x3(x3))
        y = d.conv3(up(y, (2, 2, 2)) + d.conv_x2(x2))
        y = d.conv2(up(y, (2, 2, 2)) + d.conv_x1(x1))
        return d.conv1(up(y, (1, 2, 2)))


class C21dConv(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        m = (cin * cout * 225) // (cin * 25 + 3 * cout)
        self.temporal = BR(cin, m, (9, 1, 1), (stride[0], 1, 1))
        self.spatial = BR(m, cout, (1, 5, 5), (1, stride[1], stride[2]))

    def forward(self, x):
        return self.spatial(self.temporal(x))


class C21d(nn.Module):
    def __init__(self, cin, c64, c128, c256, n_out):
        super().__init__()
        one, two, ra = (1, 1, 1), (2, 2, 2), (1, 2, 2)
        self.conv1a, self.conv1b = C21dConv(cin, c64, one), C21dConv(c64, c64, two)
        self.conv2a, self.conv2b = C21dConv(c64, c128, one), C21dConv(c128, c128, two)
        self.conv3a, self.conv3b = C21dConv(c128, c256, one), C21dConv(c256, c256, ra)
        self.decoder = CdcDecoder(c64, c128, c256, n_out)

    def forward(self, x):
        for layer in [self.conv1a, self.conv1b, self.conv2a, self.conv2b, self.conv3a, self.conv3b]:
            x = layer(x)
        return self.decoder(x)


def conv955(cin, cout, stride=(1, 1, 1)):
    return nn.Conv3d(cin, cout, (9, 5, 5), stride, (4, 2, 2))


class HgStack(nn.Module):
    def __init__(self, c64, c128, c256, n_out, last):
        super().__init__()
        k, two, ra = (9, 5, 5), (2, 2, 2), (1, 2, 2)
        self.encoder = nn.Module()
        e = self.encoder
        for pre in ["", "skip"]:
            setattr(e, pre + "conv1a", BR(c64, c64, k))
            setattr(e, pre + "conv1b", BR(c64, c64, k, two))
            setattr(e, pre + "conv2a", BR(c64, c128, k))
            setattr(e, pre + "conv2b", BR(c128, c128, k, two))
            setattr(e, pre + "conv3a", BR(c128, c256, k))
            setattr(e, pre + "conv3b", BR(c256, c256, k, ra))
        self.decoder = nn.Module()
        d = self.decoder
        d.convt1 = nn.ConvTranspose3d(c256, c128, (3, 6, 6), (1, 2, 2), (1, 2, 2))
        d.convt2 = nn.ConvTranspose3d(c128, c64, (4, 6, 6), (2, 2, 2), (1, 2, 2))
        d.convt3 = nn.ConvTranspose3d(c64, c64, (4, 6, 6), (2, 2, 2), (1, 2, 2))
        d.prelu = nn.PReLU()
        self.head = conv955(c64, n_out)
        self.remap = None if last else conv955(n_out, c64)

    def forward(self, x):
        e, d = self.encoder, self.decoder
        x1 = e.skipconv1b(e.skipconv1a(x))
        x = e.conv1b(e.conv1a(x))
        x2 = e.skipconv2b(e.skipconv2a(x))
        x = e.conv2b(e.conv2a(x))
        x3 = e.skipconv3b(e.skipconv3a(x))
        x = e.conv3b(e.conv3a(x))
        y = d.prelu(d.convt1(x + x3))
        y = d.prelu(d.convt2(y + x2))
        return d.convt3(y + x1)  # no activation (spec §5.3, official RODNet)


class Hg(nn.Module):
    """RODNet-HG with a sigmoid head: the next stack gets y + remap(sigmoid(map))."""

    def __init__(self, cin, c32, c64, c128, c256, n_out, stacks):
        super().__init__()
        self.conv1a = BR(cin, c32, (9, 5, 5))
        self.conv1b = BR(c32, c64, (9, 5, 5))
        self.stacks = nn.ModuleList(
            [HgStack(c64, c128, c256, n_out, s + 1 == stacks) for s in range(stacks)])

    def forward(self, x):
        x = self.conv1b(self.conv1a(x))
        outs = []
        for s in self.stacks:
            y = s(x)
            m = s.head(y)
            outs.append(m)
            if s.remap is not None:
                x = y + s.remap(torch.sigmoid(m))
        return outs


class Inception(nn.Module):
    def __init__(self, cin, c32, c64):
        super().__init__()
        s = (1, 2, 2)
        self.branch1 = nn.Conv3d(cin, c32, (5, 5, 5), s, (2, 2, 2))
        self.branch2a = nn.Conv3d(cin, c64, (5, 5, 5), 1, (2, 2, 2))
        self.branch2b = nn.Conv3d(c64, c64, (9, 5, 5), s, (4, 2, 2))
        self.branch3a = nn.Conv3d(cin, c64, (5, 5, 5), 1, (2, 2, 2))
        self.branch3b = nn.Conv3d(c64, c64, (13, 5, 5), s, (6, 2, 2))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2b(self.branch2a(x)),
                          self.branch3b(self.branch3a(x))], 1)


class IncBR(nn.Module):
    def __init__(self, cin, c32, c64):
        super().__init__()
        self.inception = Inception(cin, c32, c64)
        self.bn = nn.BatchNorm3d(c32 + 2 * c64)

    def forward(self, x):
        return F.relu(self.bn(self.inception(x)))


class Hgwi(nn.Module):
    def __init__(self, cin, c32, c64, n_out):
        super().__init__()
        c160 = c32 + 2 * c64
        k = (9, 5, 5)
        self.conv1a, self.conv1b, self.conv1c = BR(cin, c32, k), BR(c32, c64, k), BR(c64, c160, k)
        self.encoder = nn.Module()
        for n in ["inception1", "inception2", "inception3",
                  "skip_inception1", "skip_inception2", "skip_inception3"]:
            setattr(self.encoder, n, IncBR(c160, c32, c64))
        self.decoder = nn.Module()
        d = self.decoder
        for i in (1, 2, 3):
            setattr(d, f"convt{i}", nn.ConvTranspose3d(c160, c160, (3, 6, 6), (1, 2, 2), (1, 2, 2)))
            setattr(d, f"conv{i}", conv955(c160, c160))
        d.prelu = nn.PReLU()
        self.head = conv955(c160, n_out)

    def forward(self, x):
        x = self.conv1c(self.conv1b(self.conv1a(x)))
        e, d = self.encoder, self.decoder
        x1 = e.skip_inception1(x)
        x = e.inception1(x)
        x2 = e.skip_inception2(x)
        x = e.inception2(x)
        x3 = e.skip_inception3(x)
        x = e.inception3(x)
        y = d.prelu(d.conv1(d.prelu(d.convt1(x + x3))))
        y = d.prelu(d.conv2(d.prelu(d.convt2(y + x2))))
        y = d.prelu(d.conv3(d.prelu(d.convt3(y + x1))))
        return self.head(y)


def burn_name(torch_name):
    """PyTorch's parameter/buffer names to kiln's burn field names."""
    parts = torch_name.split(".")
    last = parts[-1]
    owner = parts[-2] if len(parts) > 1 else ""
    if "bn" in owner or owner in ("bn",):
        last = {"weight": "gamma", "bias": "beta"}.get(last, last)
    if owner == "prelu" and last == "weight":
        last = "alpha"
    return ".".join(parts[:-1] + [last])


def state(model):
    """Every parameter and BN running statistic under kiln's names (num_batches_tracked dropped)."""
    out = {}
    for n, t in list(model.named_parameters()) + list(model.named_buffers()):
        if not n.endswith("num_batches_tracked"):
            out[burn_name(n)] = t
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)

    # Conv3d: the CDC's kernel with stride 2 on every axis.
    conv = nn.Conv3d(2, 3, (9, 5, 5), (2, 2, 2), (4, 2, 2))
    r6(conv.weight.data)
    r6(conv.bias.data)
    x = rand(1, 2, 6, 10, 8)
    with torch.no_grad():
        y = conv(x)
    save("nets_conv3d.json", {
        "weight": entry(conv.weight), "bias": entry(conv.bias), "input": entry(x), "output": entry(y),
    })

    # ConvTranspose3d: both decoder kernels on one input.
    x = rand(1, 3, 3, 4, 3)
    out = {"input": entry(x)}
    for key, k, s in [("all", (4, 6, 6), (2, 2, 2)), ("ra", (3, 6, 6), (1, 2, 2))]:
        ct = nn.ConvTranspose3d(3, 2, k, s, (1, 2, 2))
        r6(ct.weight.data)
        r6(ct.bias.data)
        with torch.no_grad():
            y = ct(x)
        out[key] = {"weight": entry(ct.weight), "bias": entry(ct.bias), "output": entry(y)}
    save("nets_conv_transpose3d.json", out)

    # Trilinear upsampling, align_corners=False.
    x = rand(1, 2, 3, 2, 5)
    up = lambda s: F.interpolate(x, scale_factor=s, mode="trilinear", align_corners=False)
    save("nets_trilinear.json", {
        "input": entry(x), "all": entry(up((2, 2, 2))), "ra": entry(up((1, 2, 2))),
    })

    # Tiny CDC, eval mode.
    cdc = Cdc(2, 1, 2, 4, 3).eval()
    for n, t in state(cdc).items():
        with torch.no_grad():
            if n.endswith("running_var") or n.endswith("gamma"):
                t.copy_(r6(0.5 + torch.rand_like(t)))
            elif n.endswith("running_mean") or n.endswith("beta"):
                t.copy_(r6(0.1 * torch.randn_like(t)))
            elif n.endswith("alpha"):
                t.copy_(r6(torch.tensor([0.2])))
            else:
                r6(t)
    x = rand(1, 2, 8, 16, 8)  # R != A, so a swapped axis shows
    with torch.no_grad():
        y = cdc(x)
    save("nets_cdc_tiny.json", {
        "channels": [1, 2, 4], "n_out": 3,
        "params": {n: entry(t) for n, t in state(cdc).items()},
        "input": entry(x), "output": entry(y),
    })

    # Whole networks with hashed weights and inputs; only the outputs are stored.
    hashed_models = {
        # name: (model, input shape, every how many output values are stored); channels are
        # kiln's at the width golden.rs uses.
        "c21d": (C21d(2, 1, 2, 4, 3), [1, 2, 4, 8, 8], 1),  # width 1/64
        "hg2": (Hg(2, 1, 2, 4, 8, 4, 2), [1, 2, 4, 8, 8], 1),  # width 1/32, 2 stacks, n_out 4
        "hgwi": (Hgwi(2, 1, 2, 3), [1, 2, 4, 8, 8], 1),  # width 1/32: 160 -> 1 + 2 + 2
        "resnet_b_a": (ResNetAe(2, 1, 1, 2, 4, 8, 3, "b", "A"), [1, 2, 8, 16, 16], 8),  # 1/64
        "resnet_tv_b": (ResNetAe(2, 1, 1, 2, 4, 8, 2, "tv", "B"), [1, 2, 8, 16, 16], 8),
    }
    out = {}
    for key, (model, shape, every) in hashed_models.items():
        model.eval()
        for n, t in state(model).items():
            with torch.no_grad():
                t.copy_(hashed(n, list(t.shape)))
        with torch.no_grad():
            y = model(hashed("input", shape))
        ys = y if isinstance(y, list) else [y]
        out[key] = {
            "names": sorted(state(model).keys()), "input_shape": shape, "every": every,
            "outputs": [{"shape": list(t.shape), "data": flat(t, 6)[::every]} for t in ys],
        }
    save("nets_hashed.json", out)


if __name__ == "__main__":
    main()
