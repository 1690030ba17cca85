//! The burn modules against PyTorch 2.9 on tiny goldens (tests/data/nets_*.json, written by
//! scripts/reference/radar_nets_golden.py, whose header says how to regenerate them): Conv3d,
//! both ConvTranspose3d kernels, trilinear upsampling, and every architecture whole at a tiny
//! width (CDC with stored weights; C21D, HG with 2 stacks, HGwI, ResNet stem b + decoder A and
//! torchvision stem + decoder B with hashed weights), each to 1e-4.

use std::cell::RefCell;
use std::collections::BTreeSet;

use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::nn::{BatchNorm, PRelu};
use burn::tensor::{Tensor, TensorData};
use serde_json::Value;

use super::blocks::{upsample_trilinear, Builder, Conv, ConvBr};
use super::cdc::CdcDecoder;
use super::resnet::{BasicBlock, Conv2Plus1d, ResNetDecoder};
use super::tests::{dev, values};
use super::{Arch, Body, Decoder, NetConfig, RadarDetector, Stem};

fn load(name: &str) -> Value {
    // The package folder at run time: a shared target directory may hold a test binary built
    // from another checkout, whose compile-time path is gone.
    let dir =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let path = format!("{dir}/tests/data/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn shape<const D: usize>(v: &Value) -> [usize; D] {
    let s: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    s.try_into().unwrap()
}

fn tensor<const D: usize>(v: &Value) -> Tensor<D> {
    Tensor::from_data(TensorData::new(floats(&v["data"]), shape::<D>(v)), &dev())
}

/// `got` against a stored `{shape, data}` to 1e-4 of the largest stored magnitude: the tiny
/// networks' outputs are O(0.01-1), so an absolute bound would let real differences through.
fn assert_close<const D: usize>(got: Tensor<D>, want: &Value, what: &str) {
    assert_eq!(got.dims(), shape::<D>(want), "{what}: shape");
    let (g, w) = (values(got), floats(&want["data"]));
    let scale = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: an all-zero golden checks nothing");
    let worst = g
        .iter()
        .zip(&w)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-4 * scale,
        "{what}: max error {worst} at scale {scale}"
    );
}

/// Where parameters come from: stored by name, or computed by the script's `hashed` rule.
enum Source<'a> {
    Stored(&'a serde_json::Map<String, Value>),
    Hashed,
}

struct Params<'a> {
    source: Source<'a>,
    used: RefCell<BTreeSet<String>>,
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix64(x: u64) -> u64 {
    let x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The script's `hashed(name, shape)`: f64 arithmetic identical to Python's, then to f32.
fn hashed(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let h = fnv1a(name);
    let unit = (0..n as u64).map(|k| (splitmix64(h.wrapping_add(k)) >> 11) as f64 * 2f64.powi(-53));
    let last = name.rsplit('.').next().unwrap();
    let v: Vec<f64> = match last {
        "weight" if shape.len() == 5 => {
            let s = (6.0 / (n / shape[0]) as f64).sqrt();
            unit.map(|x| (2.0 * x - 1.0) * s).collect()
        }
        "gamma" | "running_var" => unit.map(|x| 0.75 + 0.5 * x).collect(),
        "alpha" => unit.map(|x| 0.1 + 0.3 * x).collect(),
        _ => unit.map(|x| (2.0 * x - 1.0) * 0.1).collect(),
    };
    v.into_iter().map(|x| x as f32).collect()
}

impl Params<'_> {
    fn get<const D: usize>(&self, name: &str, dims: [usize; D]) -> Tensor<D> {
        self.used.borrow_mut().insert(name.to_string());
        let data = match &self.source {
            Source::Stored(m) => {
                let v = m
                    .get(name)
                    .unwrap_or_else(|| panic!("golden has no {name}"));
                assert_eq!(shape::<D>(v), dims, "{name}");
                floats(&v["data"])
            }
            Source::Hashed => hashed(name, &dims),
        };
        Tensor::from_data(TensorData::new(data, dims), &dev())
    }

    fn conv(&self, c: &mut Conv3d, p: &str) {
        c.weight = Param::from_tensor(self.get(&format!("{p}.weight"), c.weight.dims()));
        if let Some(b) = &c.bias {
            c.bias = Some(Param::from_tensor(self.get(&format!("{p}.bias"), b.dims())));
        }
    }

    fn conv_t(&self, c: &mut ConvTranspose3d, p: &str) {
        c.weight = Param::from_tensor(self.get(&format!("{p}.weight"), c.weight.dims()));
        let b = c.bias.as_ref().unwrap().dims();
        c.bias = Some(Param::from_tensor(self.get(&format!("{p}.bias"), b)));
    }

    fn bn(&self, bn: &mut BatchNorm, p: &str) {
        let d = bn.gamma.dims();
        bn.gamma = Param::from_tensor(self.get(&format!("{p}.gamma"), d));
        bn.beta = Param::from_tensor(self.get(&format!("{p}.beta"), d));
        bn.running_mean = RunningState::new(self.get(&format!("{p}.running_mean"), d));
        bn.running_var = RunningState::new(self.get(&format!("{p}.running_var"), d));
    }

    fn br(&self, l: &mut ConvBr, p: &str) {
        self.conv(&mut l.conv, &format!("{p}.conv"));
        self.bn(&mut l.bn, &format!("{p}.bn"));
    }

    fn cdc_decoder(&self, d: &mut CdcDecoder) {
        self.conv_t(&mut d.convt1, "decoder.convt1");
        self.conv_t(&mut d.convt2, "decoder.convt2");
        self.conv_t(&mut d.convt3, "decoder.convt3");
        self.prelu(&mut d.prelu, "decoder.prelu");
    }

    fn prelu(&self, l: &mut PRelu, p: &str) {
        l.alpha = Param::from_tensor(self.get(&format!("{p}.alpha"), [1]));
    }

    fn c2p1(&self, c: &mut Conv2Plus1d, p: &str) {
        self.conv(&mut c.spatial, &format!("{p}.spatial"));
        self.bn(&mut c.bn, &format!("{p}.bn"));
        self.conv(&mut c.temporal, &format!("{p}.temporal"));
    }

    fn block(&self, b: &mut BasicBlock, p: &str) {
        self.c2p1(&mut b.conv1, &format!("{p}.conv1"));
        self.bn(&mut b.bn1, &format!("{p}.bn1"));
        self.c2p1(&mut b.conv2, &format!("{p}.conv2"));
        self.bn(&mut b.bn2, &format!("{p}.bn2"));
        if let Some(d) = &mut b.downsample {
            self.conv(&mut d.conv, &format!("{p}.downsample.conv"));
            self.bn(&mut d.bn, &format!("{p}.downsample.bn"));
        }
    }
}

#[test]
fn conv3d_matches_pytorch() {
    let g = load("nets_conv3d.json");
    let mut c = Builder::new(0, &dev()).conv(Conv::k955(2, 3).stride([2, 2, 2]));
    c.weight = Param::from_tensor(tensor(&g["weight"]));
    c.bias = Some(Param::from_tensor(tensor(&g["bias"])));
    assert_close(c.forward(tensor(&g["input"])), &g["output"], "conv3d");
}

#[test]
fn conv_transpose3d_matches_pytorch() {
    let g = load("nets_conv_transpose3d.json");
    let mut b = Builder::new(0, &dev());
    for (key, mut ct) in [("all", b.up_all(3, 2)), ("ra", b.up_ra(3, 2))] {
        ct.weight = Param::from_tensor(tensor(&g[key]["weight"]));
        ct.bias = Some(Param::from_tensor(tensor(&g[key]["bias"])));
        let y = ct.forward(tensor(&g["input"]));
        assert_close(y, &g[key]["output"], key);
    }
}

#[test]
fn trilinear_matches_pytorch() {
    let g = load("nets_trilinear.json");
    let x: Tensor<5> = tensor(&g["input"]);
    assert_close(
        upsample_trilinear(x.clone(), [true; 3]),
        &g["all"],
        "(2,2,2)",
    );
    assert_close(
        upsample_trilinear(x, [false, true, true]),
        &g["ra"],
        "(1,2,2)",
    );
}

#[test]
fn tiny_cdc_matches_pytorch() {
    let g = load("nets_cdc_tiny.json");
    assert_eq!(g["channels"], serde_json::json!([1, 2, 4]));
    let mut net = NetConfig::new(Arch::Cdc, 3)
        .with_width(1.0 / 64.0)
        .init(&dev())
        .unwrap();
    let p = Params {
        source: Source::Stored(g["params"].as_object().unwrap()),
        used: Default::default(),
    };
    let Body::Cdc(m) = &mut net.body else {
        unreachable!()
    };
    for (l, name) in [
        (&mut m.conv1a, "conv1a"),
        (&mut m.conv1b, "conv1b"),
        (&mut m.conv2a, "conv2a"),
        (&mut m.conv2b, "conv2b"),
        (&mut m.conv3a, "conv3a"),
        (&mut m.conv3b, "conv3b"),
    ] {
        p.br(l, name);
    }
    p.cdc_decoder(&mut m.decoder);
    let stored: BTreeSet<String> = g["params"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(*p.used.borrow(), stored, "every stored parameter loaded");
    let out = net.forward(tensor(&g["input"])).unwrap();
    assert_eq!(out.len(), 1);
    assert_close(out.into_iter().next().unwrap(), &g["output"], "CDC");
}

/// Loads every parameter of `net` from the hashed rule, checks the names are exactly the
/// script's model's, and compares each output map (every `every`-th value).
fn check_hashed(key: &str, cfg: NetConfig) {
    let all = load("nets_hashed.json");
    let g = &all[key];
    let mut net = cfg.init(&dev()).unwrap();
    let p = Params {
        source: Source::Hashed,
        used: Default::default(),
    };
    match &mut net.body {
        Body::Cdc(_) => unreachable!("the CDC golden stores its weights"),
        Body::C21d(m) => {
            for (l, name) in [
                (&mut m.conv1a, "conv1a"),
                (&mut m.conv1b, "conv1b"),
                (&mut m.conv2a, "conv2a"),
                (&mut m.conv2b, "conv2b"),
                (&mut m.conv3a, "conv3a"),
                (&mut m.conv3b, "conv3b"),
            ] {
                p.br(&mut l.temporal, &format!("{name}.temporal"));
                p.br(&mut l.spatial, &format!("{name}.spatial"));
            }
            p.cdc_decoder(&mut m.decoder);
        }
        Body::Hg(m) => {
            p.br(&mut m.conv1a, "conv1a");
            p.br(&mut m.conv1b, "conv1b");
            for (i, s) in m.stacks.iter_mut().enumerate() {
                let e = &mut s.encoder;
                for (l, name) in [
                    (&mut e.conv1a, "conv1a"),
                    (&mut e.conv1b, "conv1b"),
                    (&mut e.conv2a, "conv2a"),
                    (&mut e.conv2b, "conv2b"),
                    (&mut e.conv3a, "conv3a"),
                    (&mut e.conv3b, "conv3b"),
                    (&mut e.skipconv1a, "skipconv1a"),
                    (&mut e.skipconv1b, "skipconv1b"),
                    (&mut e.skipconv2a, "skipconv2a"),
                    (&mut e.skipconv2b, "skipconv2b"),
                    (&mut e.skipconv3a, "skipconv3a"),
                    (&mut e.skipconv3b, "skipconv3b"),
                ] {
                    p.br(l, &format!("stacks.{i}.encoder.{name}"));
                }
                let d = &mut s.decoder;
                p.conv_t(&mut d.convt1, &format!("stacks.{i}.decoder.convt1"));
                p.conv_t(&mut d.convt2, &format!("stacks.{i}.decoder.convt2"));
                p.conv_t(&mut d.convt3, &format!("stacks.{i}.decoder.convt3"));
                p.prelu(&mut d.prelu, &format!("stacks.{i}.decoder.prelu"));
                p.conv(&mut s.head, &format!("stacks.{i}.head"));
                if let Some(r) = &mut s.remap {
                    p.conv(r, &format!("stacks.{i}.remap"));
                }
            }
        }
        Body::Hgwi(m) => {
            p.br(&mut m.conv1a, "conv1a");
            p.br(&mut m.conv1b, "conv1b");
            p.br(&mut m.conv1c, "conv1c");
            let e = &mut m.encoder;
            for (l, name) in [
                (&mut e.inception1, "inception1"),
                (&mut e.inception2, "inception2"),
                (&mut e.inception3, "inception3"),
                (&mut e.skip_inception1, "skip_inception1"),
                (&mut e.skip_inception2, "skip_inception2"),
                (&mut e.skip_inception3, "skip_inception3"),
            ] {
                let i = &mut l.inception;
                for (c, b) in [
                    (&mut i.branch1, "branch1"),
                    (&mut i.branch2a, "branch2a"),
                    (&mut i.branch2b, "branch2b"),
                    (&mut i.branch3a, "branch3a"),
                    (&mut i.branch3b, "branch3b"),
                ] {
                    p.conv(c, &format!("encoder.{name}.inception.{b}"));
                }
                p.bn(&mut l.bn, &format!("encoder.{name}.bn"));
            }
            let d = &mut m.decoder;
            for (t, c, i) in [
                (&mut d.convt1, &mut d.conv1, 1),
                (&mut d.convt2, &mut d.conv2, 2),
                (&mut d.convt3, &mut d.conv3, 3),
            ] {
                p.conv_t(t, &format!("decoder.convt{i}"));
                p.conv(c, &format!("decoder.conv{i}"));
            }
            p.prelu(&mut d.prelu, "decoder.prelu");
            p.conv(&mut m.head, "head");
        }
        Body::ResNet(m) => {
            let e = &mut m.encoder;
            p.br(&mut e.stem1, "encoder.stem1");
            p.br(&mut e.stem2, "encoder.stem2");
            for (i, layer) in [&mut e.layer1, &mut e.layer2, &mut e.layer3, &mut e.layer4]
                .into_iter()
                .enumerate()
            {
                for (j, b) in layer.iter_mut().enumerate() {
                    p.block(b, &format!("encoder.layer{}.{j}", i + 1));
                }
            }
            match &mut m.decoder {
                ResNetDecoder::A(d) => {
                    for (l, name) in [
                        (&mut d.conv4, "conv4"),
                        (&mut d.conv3, "conv3"),
                        (&mut d.conv2, "conv2"),
                        (&mut d.conv1, "conv1"),
                        (&mut d.conv_x3, "conv_x3"),
                        (&mut d.conv_x2, "conv_x2"),
                        (&mut d.conv_x1, "conv_x1"),
                    ] {
                        p.br(l, &format!("decoder.{name}"));
                    }
                }
                ResNetDecoder::B(d) => {
                    for (l, name) in [
                        (&mut d.conv_x3, "conv_x3"),
                        (&mut d.conv_x2, "conv_x2"),
                        (&mut d.conv_x1, "conv_x1"),
                    ] {
                        p.br(l, &format!("decoder.{name}"));
                    }
                    for (t, name) in [
                        (&mut d.convt4, "convt4"),
                        (&mut d.convt3, "convt3"),
                        (&mut d.convt2, "convt2"),
                        (&mut d.convt1, "convt1"),
                    ] {
                        p.conv_t(t, &format!("decoder.{name}"));
                    }
                    p.prelu(&mut d.prelu, "decoder.prelu");
                }
            }
        }
    }
    let names: BTreeSet<String> = g["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        *p.used.borrow(),
        names,
        "{key}: the script's model's parameters"
    );
    let dims: [usize; 5] = shape(&serde_json::json!({ "shape": g["input_shape"] }));
    let x = Tensor::<5>::from_data(TensorData::new(hashed("input", &dims), dims), &dev());
    let outs = net.forward(x).unwrap();
    let want = g["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), want.len(), "{key}: stacks");
    let every = g["every"].as_u64().unwrap() as usize;
    for (i, (o, w)) in outs.into_iter().zip(want).enumerate() {
        assert_eq!(o.dims(), shape::<5>(w), "{key} output {i}: shape");
        let o: Vec<f32> = values(o).into_iter().step_by(every).collect();
        let o = Tensor::<1>::from_data(TensorData::new(o.clone(), [o.len()]), &dev());
        let w = serde_json::json!({ "shape": [w["data"].as_array().unwrap().len()], "data": w["data"] });
        assert_close(o, &w, &format!("{key} output {i}"));
    }
}

#[test]
fn tiny_c21d_matches_pytorch() {
    check_hashed("c21d", NetConfig::new(Arch::C21d, 3).with_width(1.0 / 64.0));
}

/// Two stacks with a sigmoid head: checks the stack-to-stack feedback as well.
#[test]
fn tiny_hg_two_stacks_matches_pytorch() {
    check_hashed(
        "hg2",
        NetConfig::new(Arch::Hg { stacks: 2 }, 4).with_width(1.0 / 32.0),
    );
}

#[test]
fn tiny_hgwi_matches_pytorch() {
    check_hashed("hgwi", NetConfig::new(Arch::Hgwi, 3).with_width(1.0 / 32.0));
}

#[test]
fn tiny_resnet_stem_b_decoder_a_matches_pytorch() {
    let arch = Arch::ResNet {
        stem: Stem::B,
        decoder: Decoder::A,
    };
    check_hashed("resnet_b_a", NetConfig::new(arch, 3).with_width(1.0 / 64.0));
}

#[test]
fn tiny_resnet_torchvision_stem_decoder_b_matches_pytorch() {
    let arch = Arch::ResNet {
        stem: Stem::Torchvision,
        decoder: Decoder::B,
    };
    check_hashed(
        "resnet_tv_b",
        NetConfig::new(arch, 2).with_width(1.0 / 64.0),
    );
}
