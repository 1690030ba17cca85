//! `clip-vil`: CLIP-architecture image towers as grid-feature backbones for VQA heads
//! (Shen et al. 2021, direct fine-tuning, spec §2.2 and §3).
//!
//! Each row trains one network (a tower and a head, or a single-modality baseline) on the
//! profile's training split over several seeds, scores the dev split after every epoch and the
//! dev and test splits at the end with the official VQA accuracy, and writes every seed's dev
//! and test answers in the official results format (`[{"question_id", "answer"}]`) beside the
//! annotations they are scored against, so `kiln verify` recomputes every accuracy cell. A seed
//! that collapsed to one answer for a whole split is named in its row. The paper's VQA v2
//! test-dev numbers are in a separate paper-reference table with the nearest row and what that
//! row does differently (pretrained weights, data, tower, input size, evaluation split): no
//! kiln row runs the paper's exact setting.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use kiln_core::progress;
use kiln_data::vqa::{
    clip_normalize, load_split_images, read_yesno, synthetic_scenes, Vocab, DEFAULT_MAX_LEN,
};
use kiln_experiment::{Bench, ExperimentFile, Flags, Paper, Plot, RunArgs, RunContext, RunRecord};
use kiln_models::clip::{GridPositions, VisualConfig};
use kiln_report::{Cell, Series, Source};
use serde::{Deserialize, Serialize};

use crate::heads::{HeadConfig, HeadKind};
use crate::model::VqaNet;
use crate::train::{evaluate, train, Images, Split, TrainConfig};

pub const NAME: &str = "clip-vil";
pub const YESNO_DIR: &str = "vqa2_yesno";

pub struct ClipVil;

/// Head widths shared by a profile's rows (HeadConfig without kind/vocab/answers).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadSettings {
    pub word_dim: usize,
    pub lstm: usize,
    pub hidden: usize,
    pub text_hidden: usize,
    pub d: usize,
    pub layers: usize,
    pub heads: usize,
    pub fused: usize,
    pub dropout: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowSettings {
    pub label: String,
    /// Key into the profile's `encoders` table (absent for the question-only baseline).
    #[serde(default)]
    pub encoder: Option<String>,
    pub head: HeadKind,
    #[serde(default)]
    pub positions: GridPositions,
    /// What the row is: `baseline`, `clip`, or `ablation` (plots and notes group by it).
    #[serde(default = "d_kind")]
    pub kind: String,
    /// The paper number this row is the nearest kiln counterpart of (a key of `[paper]`); the
    /// paper-reference table shows the two together with what the row does differently.
    #[serde(default)]
    pub paper: Option<String>,
    /// This row's own schedule (MCAN's differs from Pythia's); else the profile's.
    #[serde(default)]
    pub train: Option<TrainConfig>,
}
fn d_min_count() -> usize {
    kiln_data::vqa_v2::BUTD_MIN_COUNT
}
fn d_kind() -> String {
    "clip".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub description: String,
    /// `synthetic` (generated scenes) or `vqa2-yesno` (the real VQA v2 yes/no subset).
    pub data: String,
    /// Synthetic: scenes generated and the train/dev/test sizes.
    #[serde(default)]
    pub synthetic_split: Vec<usize>,
    /// Square input size in pixels (images are resized exactly, as CLIP-ViL's VQA pipeline does).
    pub image_size: usize,
    /// Non-square input `[h, w]` (the paper's forced 600×1000); overrides `image_size`.
    #[serde(default)]
    pub image_hw: Option<[usize; 2]>,
    /// Use only the first N training questions (0: all).
    #[serde(default)]
    pub train_questions: usize,
    /// VQA v2: the first N val2014 questions are the dev split, the rest the test split.
    #[serde(default)]
    pub dev_questions: usize,
    /// Released tower weights per encoder key: a file under `--model` in the open_clip/OpenAI
    /// layout (e.g. timm's `open_clip_model.safetensors`, renamed `RN50x4.safetensors`).
    #[serde(default)]
    pub weights: std::collections::BTreeMap<String, String>,
    /// Keep the towers fixed (CLIP-ViL's direct fine-tuning trains heads on frozen grids).
    #[serde(default)]
    pub freeze_encoder: bool,
    /// VQA v2: answers kept in the vocabulary need this many train+val questions (BUTD: 9,
    /// which gives the standard 3,129).
    #[serde(default = "d_min_count")]
    pub answer_min_count: usize,
    pub encoders: std::collections::BTreeMap<String, VisualConfig>,
    pub head: HeadSettings,
    pub rows: Vec<RowSettings>,
    pub train: TrainConfig,
    pub seeds: Vec<u64>,
}

impl Profile {
    /// Input height and width.
    pub fn hw(&self) -> (usize, usize) {
        self.image_hw
            .map_or((self.image_size, self.image_size), |[h, w]| (h, w))
    }
}

/// The official VQA v2 files the paper profile reads from `--data-dir`.
pub const VQA_V2_FILES: [&str; 4] = [
    "v2_OpenEnded_mscoco_train2014_questions.json",
    "v2_mscoco_train2014_annotations.json",
    "v2_OpenEnded_mscoco_val2014_questions.json",
    "v2_mscoco_val2014_annotations.json",
];

impl Paper for ClipVil {
    type Profile = Profile;
    const NAME: &'static str = NAME;
    const PACKAGE: &'static str = env!("CARGO_PKG_NAME");

    fn flags(&self, p: &Profile) -> Flags {
        Flags {
            epochs: true,
            whole_epochs: true,
            model: !p.weights.is_empty(),
            ..Flags::default()
        }
    }

    fn inputs(&self, _: &str, p: &Profile, args: &RunArgs) -> Result<String, String> {
        match p.data.as_str() {
            "synthetic" => Ok("synthetic shape-and-colour scenes".into()),
            "vqa2-yesno" => {
                let r = kiln_experiment::Resolver::from_args(args);
                match r.find_file(&format!("{YESNO_DIR}/vaq2.0.TrainImages.txt")) {
                    Some(f) => Ok(format!("VQA v2 yes/no subset at {}", f.path.parent().map_or(f.path.clone(), |x| x.to_path_buf()).display())),
                    None => Err(format!("no {YESNO_DIR}/ under the data roots; pass --data-dir (the folder holding {YESNO_DIR}/)")),
                }
            }
            "vqa-v2" => vqa_v2_inputs(p, args),
            other => Err(format!(
                "unknown data `{other}` (synthetic, vqa2-yesno or vqa-v2)"
            )),
        }
    }

    fn validate(&self, p: &Profile) -> Result<()> {
        let f = format!("experiments/{NAME}.toml");
        if p.seeds.is_empty() {
            bail!("{f}: `seeds` is empty");
        }
        if p.rows.is_empty() {
            bail!("{f}: `rows` is empty");
        }
        let mut slugs = std::collections::BTreeMap::new();
        for r in &p.rows {
            // Row slugs name the results files and run.json's metrics.
            if let Some(other) = slugs.insert(kiln_report::slug(&r.label), &r.label) {
                bail!(
                    "{f}: rows `{other}` and `{}` have the same file name `{}`; rename one",
                    r.label,
                    kiln_report::slug(&r.label)
                );
            }
            match (&r.encoder, r.head.uses_image()) {
                (None, true) => bail!(
                    "{f}: row `{}`: head {:?} reads images but no `encoder` is given",
                    r.label,
                    r.head
                ),
                (Some(e), _) if !p.encoders.contains_key(e) => {
                    bail!(
                        "{f}: row `{}`: encoder `{e}` is not in `encoders` ({:?})",
                        r.label,
                        p.encoders.keys().collect::<Vec<_>>()
                    )
                }
                _ => {}
            }
        }
        let (h, w) = p.hw();
        for (name, e) in &p.encoders {
            if e.grid_side(h) == 0 || e.grid_side(w) == 0 {
                bail!("{f}: encoder `{name}` gives an empty grid at {h}×{w} pixels");
            }
        }
        for k in p.weights.keys() {
            if !p.encoders.contains_key(k) {
                bail!("{f}: `weights` names encoder `{k}`, which is not in `encoders`");
            }
        }
        p.train
            .validate()
            .map_err(|e| anyhow::anyhow!("{f}: train: {e}"))?;
        for r in &p.rows {
            if let Some(t) = &r.train {
                t.validate()
                    .map_err(|e| anyhow::anyhow!("{f}: row `{}`: train: {e}", r.label))?;
            }
        }
        Ok(())
    }

    fn run(
        &self,
        ctx: &RunContext,
        file: &ExperimentFile<Profile>,
        p: &Profile,
    ) -> Result<RunRecord> {
        let data = match p.data.as_str() {
            "synthetic" => synthetic(p, ctx.seed)?,
            "vqa-v2" => vqa_v2(p, ctx)?,
            _ => yesno(p, ctx)?,
        };
        let mut rows = Vec::new();
        for r in &p.rows {
            rows.push(run_row(r, p, &data, ctx)?);
        }
        record(ctx, file, p, &data, &rows)
    }

    fn benches(&self) -> &'static [Bench] {
        &[("clip-grid", crate::bench::grid_features)]
    }
}

/// The splits of one dataset, sharing one image block.
pub struct Prepared {
    pub synthetic: bool,
    pub source: String,
    pub train: Split,
    pub dev: Split,
    pub test: Split,
    pub answer_names: Vec<String>,
    pub vocab: usize,
    /// Dev/test accuracy of always answering the most frequent training answer, and its test
    /// accuracy on the novel questions.
    pub majority: (String, f64, f64),
    pub majority_novel: f64,
}

fn normalized(mut pixels: Vec<f32>, size: usize) -> Images {
    let per = 3 * size * size;
    for img in pixels.chunks_mut(per) {
        clip_normalize(img, (3, size, size));
    }
    Images::Memory {
        data: Arc::new(pixels),
        h: size,
        w: size,
    }
}

/// Questions of one split as a [`Split`]: single-answer data is scored as ten agreeing
/// annotators, so the official accuracy is exact match and the soft target is 1.
#[allow(clippy::too_many_arguments)]
fn split(
    name: &str,
    images: &Images,
    image_of: Vec<usize>,
    questions: &[&str],
    answers: &[&str],
    question_ids: Vec<u64>,
    novel: Vec<bool>,
    vocab: &Vocab,
    answer_names: &[String],
) -> Split {
    let enc = vocab.encode_all(questions.iter().copied(), DEFAULT_MAX_LEN);
    let a = answer_names.len();
    let targets = answers
        .iter()
        .map(|ans| {
            answer_names
                .iter()
                .position(|x| x == ans)
                .map(|k| (k as u32, 1.0))
                .into_iter()
                .collect()
        })
        .collect();
    Split {
        name: name.into(),
        images: images.clone(),
        image_of,
        ids: enc.ids.iter().map(|&x| x as i64).collect(),
        max_len: DEFAULT_MAX_LEN,
        targets,
        answers: a,
        gt: answers.iter().map(|s| vec![s.to_string(); 10]).collect(),
        question_ids,
        questions: questions.iter().map(|q| q.to_string()).collect(),
        answer_types: vec!["yes/no".to_string(); questions.len()],
        novel,
    }
}

fn majority(train: &[&str], dev: &Split, test: &Split, names: &[String]) -> (String, f64, f64) {
    let best = names
        .iter()
        .max_by_key(|n| train.iter().filter(|a| *a == n).count())
        .cloned()
        .unwrap_or_default();
    let acc = |s: &Split| {
        100.0 * s.gt.iter().filter(|g| g[0] == best).count() as f64 / s.len().max(1) as f64
    };
    (best.clone(), acc(dev), acc(test))
}

fn novel_share(s: &Split, answer: &str) -> f64 {
    let rows: Vec<usize> = (0..s.len()).filter(|&i| s.novel[i]).collect();
    100.0 * rows.iter().filter(|&&i| s.gt[i][0] == answer).count() as f64 / rows.len().max(1) as f64
}

fn synthetic(p: &Profile, seed: u64) -> Result<Prepared> {
    let [ntr, ndev, nte]: [usize; 3] = p.synthetic_split.clone().try_into().map_err(|_| {
        anyhow::anyhow!("experiments/{NAME}.toml: synthetic_split must be [train, dev, test]")
    })?;
    let n = ntr + ndev + nte;
    let (pixels, qs) = synthetic_scenes(n, p.image_size, seed);
    let images = normalized(pixels, p.image_size);
    let texts: Vec<&str> = qs.iter().map(|q| q.question.as_str()).collect();
    let answers: Vec<&str> = qs.iter().map(|q| q.answer.as_str()).collect();
    let vocab = Vocab::build(texts[..ntr].iter().copied(), 1);
    let names = vec!["no".to_string(), "yes".to_string()];
    let mk = |name: &str, lo: usize, hi: usize| {
        split(
            name,
            &images,
            qs[lo..hi].iter().map(|q| q.image).collect(),
            &texts[lo..hi],
            &answers[lo..hi],
            (lo as u64..hi as u64).collect(),
            vec![true; hi - lo],
            &vocab,
            &names,
        )
    };
    let (train, dev, test) = (
        mk("train", 0, ntr),
        mk("dev", ntr, ntr + ndev),
        mk("test", ntr + ndev, n),
    );
    let majority = majority(&answers[..ntr], &dev, &test, &names);
    let majority_novel = novel_share(&test, &majority.0);
    Ok(Prepared {
        synthetic: true,
        source: format!("SYNTHETIC: {n} seeded scenes (seed {seed}) of 1-3 coloured shapes, one templated yes/no question each"),
        train,
        dev,
        test,
        answer_names: names,
        vocab: vocab.len(),
        majority,
        majority_novel,
    })
}

fn yesno(p: &Profile, ctx: &RunContext) -> Result<Prepared> {
    let list = ctx
        .resolver
        .file(&format!("{YESNO_DIR}/vaq2.0.TrainImages.txt"))?;
    let dir = list
        .path
        .parent()
        .context("the yes/no list has no parent folder")?
        .to_path_buf();
    let mut lists = Vec::new();
    for f in [
        "vaq2.0.TrainImages.txt",
        "vaq2.0.DevImages.txt",
        "vaq2.0.TestImages.txt",
    ] {
        lists.push(read_yesno(&dir.join(f))?);
    }
    if p.train_questions > 0 {
        lists[0].truncate(p.train_questions);
    }
    let all: Vec<_> = lists.iter().flatten().cloned().collect();
    let size = (p.image_size != 112).then_some((p.image_size, p.image_size));
    let bar = progress::bar(all.len() as u64, "decode images");
    let mut tick = |d: usize, _t: usize| bar.set_position(d as u64);
    let set = load_split_images(&dir.join("images_112"), &all, size, Some(&mut tick))?;
    bar.finish_and_clear();
    let side = set.height;
    let images = normalized(set.pixels.clone(), side);
    let vocab = Vocab::build(lists[0].iter().map(|q| q.question.as_str()), 1);
    let names = vec!["no".to_string(), "yes".to_string()];
    // Dev and test repeat many training questions as paraphrases on the same image (same
    // image and `#k`, same answer); those are scored separately as not novel.
    let seen: std::collections::HashSet<(u64, u32)> = lists[0]
        .iter()
        .map(|q| (q.image_id, q.index_in_image))
        .collect();
    let mut splits = Vec::new();
    for (i, (name, qs)) in ["train", "dev", "test"].iter().zip(&lists).enumerate() {
        let texts: Vec<&str> = qs.iter().map(|q| q.question.as_str()).collect();
        let answers: Vec<&str> = qs.iter().map(|q| q.answer.as_str()).collect();
        let novel = qs
            .iter()
            .map(|q| i == 0 || !seen.contains(&(q.image_id, q.index_in_image)))
            .collect();
        // image_id·1000 + k repeats within dev and test, so results are keyed by list line.
        let ids = qs.iter().map(|q| q.line as u64).collect();
        splits.push(split(
            name,
            &images,
            set.rows_for(qs)?,
            &texts,
            &answers,
            ids,
            novel,
            &vocab,
            &names,
        ));
    }
    let test = splits.pop().expect("three splits");
    let dev = splits.pop().expect("three splits");
    let train = splits.pop().expect("three splits");
    let train_answers: Vec<&str> = lists[0].iter().map(|q| q.answer.as_str()).collect();
    let majority = majority(&train_answers, &dev, &test, &names);
    let majority_novel = novel_share(&test, &majority.0);
    Ok(Prepared {
        synthetic: false,
        source: format!(
            "VQA v2 yes/no subset ({} / {} / {} questions, {} COCO val2014 images at {side}×{side}) from {}",
            train.len(),
            dev.len(),
            test.len(),
            set.len(),
            dir.display()
        ),
        train,
        dev,
        test,
        answer_names: names,
        vocab: vocab.len(),
        majority,
        majority_novel,
    })
}

/// What the paper profile reads: the official VQA v2 files and COCO folders under `--data-dir`,
/// and every released tower under `--model`.
fn vqa_v2_inputs(p: &Profile, args: &RunArgs) -> Result<String, String> {
    let Some(dir) = &args.data_dir else {
        return Err("the paper profile needs --data-dir with the official VQA v2 files (visualqa.org: questions and annotations for train2014/val2014) and the COCO train2014/ and val2014/ image folders".into());
    };
    for f in VQA_V2_FILES.iter().chain(&["train2014", "val2014"]) {
        if !dir.join(f).exists() {
            return Err(format!(
                "{}: missing {f} (official VQA v2 files and COCO image folders expected there)",
                dir.display()
            ));
        }
    }
    let mut found = vec![format!("VQA v2 in {}", dir.display())];
    if !p.weights.is_empty() {
        let Some(m) = &args.model else {
            return Err("the paper profile loads released towers: pass --model with a folder holding their safetensors files (CLIP: open_clip/OpenAI layout; the ImageNet ResNet: torchvision/timm names)".into());
        };
        for w in p.weights.values() {
            if !m.join(w).exists() {
                return Err(format!("{}: missing {w} (CLIP towers: an open_clip/OpenAI-layout state dict, e.g. timm/resnet50x4_clip.openai's open_clip_model.safetensors renamed; the ImageNet ResNet-50: torchvision names, e.g. timm/resnet50.tv_in1k's model.safetensors renamed)", m.display()));
            }
        }
        found.push(format!("CLIP weights in {}", m.display()));
    }
    Ok(found.join("; "))
}

/// The paper profile's data: train2014 for training, val2014 split into dev and test (VQA v2
/// test-dev is scored only by the evaluation server; the results files are in its format).
/// Answers: the BUTD vocabulary (normalised multiple-choice answers of ≥ 9 train+val
/// questions, 3,129 on the official files); targets: the official accuracy of each answer.
/// Images are decoded per batch and resized exactly to the profile's input size.
fn vqa_v2(p: &Profile, ctx: &RunContext) -> Result<Prepared> {
    use kiln_data::vqa_v2::{
        coco_image_name, read_split, soft_target, AnswerTable, BUTD_MIN_COUNT,
    };
    vqa_v2_inputs(p, &ctx.args).map_err(|e| anyhow::anyhow!(e))?;
    let dir = ctx
        .args
        .data_dir
        .clone()
        .context("the paper profile needs --data-dir")?;
    let bar = progress::bar(2, "read VQA v2 json");
    let mut train = read_split(&dir.join(VQA_V2_FILES[0]), Some(&dir.join(VQA_V2_FILES[1])))?;
    bar.inc(1);
    let val = read_split(&dir.join(VQA_V2_FILES[2]), Some(&dir.join(VQA_V2_FILES[3])))?;
    bar.finish_and_clear();
    let table = AnswerTable::build(
        train
            .iter()
            .chain(&val)
            .filter_map(|e| e.annotation.as_ref()),
        p.answer_min_count,
    );
    if table.is_empty() {
        bail!(
            "{}: no answer occurs in {} or more train+val questions; lower `answer_min_count` (BUTD uses {BUTD_MIN_COUNT} on the full data)",
            dir.display(),
            p.answer_min_count
        );
    }
    if p.train_questions > 0 {
        train.truncate(p.train_questions);
    }
    let vocab = Vocab::build(train.iter().map(|e| e.question.question.as_str()), 1);
    let names: Vec<String> = table.answers().to_vec();
    let (h, w) = p.hw();
    let mut paths = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut rows_of = |split: &str, img: u64| -> usize {
        *index.entry((split.to_string(), img)).or_insert_with(|| {
            paths.push(dir.join(split).join(coco_image_name(split, img)));
            paths.len() - 1
        })
    };
    let train_rows: Vec<usize> = train
        .iter()
        .map(|e| rows_of("train2014", e.question.image_id))
        .collect();
    let val_rows: Vec<usize> = val
        .iter()
        .map(|e| rows_of("val2014", e.question.image_id))
        .collect();
    let images = Images::Files {
        paths: Arc::new(paths),
        h,
        w,
    };
    let make = |name: &str, ex: &[kiln_data::vqa_v2::VqaExample], rows: Vec<usize>| -> Split {
        let enc = vocab.encode_all(
            ex.iter().map(|e| e.question.question.as_str()),
            DEFAULT_MAX_LEN,
        );
        let gt: Vec<Vec<String>> = ex
            .iter()
            .map(|e| {
                e.annotation
                    .as_ref()
                    .map(|a| a.answer_strings())
                    .unwrap_or_default()
            })
            .collect();
        Split {
            name: name.into(),
            images: images.clone(),
            image_of: rows,
            ids: enc.ids.iter().map(|&x| x as i64).collect(),
            max_len: DEFAULT_MAX_LEN,
            targets: gt.iter().map(|g| soft_target(g, &table)).collect(),
            answers: names.len(),
            gt,
            question_ids: ex.iter().map(|e| e.question.question_id).collect(),
            questions: ex.iter().map(|e| e.question.question.clone()).collect(),
            answer_types: ex
                .iter()
                .map(|e| {
                    e.annotation
                        .as_ref()
                        .map_or("unknown", |a| a.answer_type.as_str())
                        .to_string()
                })
                .collect(),
            novel: vec![true; ex.len()],
        }
    };
    let cut = p.dev_questions.min(val.len());
    let train_split = make("train", &train, train_rows);
    let dev = make("dev", &val[..cut], val_rows[..cut].to_vec());
    let test = make("test", &val[cut..], val_rows[cut..].to_vec());
    let train_answers: Vec<&str> = train
        .iter()
        .filter_map(|e| e.annotation.as_ref())
        .map(|a| a.multiple_choice_answer.as_str())
        .collect();
    let best = names
        .iter()
        .find(|n| train_answers.contains(&n.as_str()))
        .cloned()
        .unwrap_or_default();
    let acc = |s: &Split| {
        100.0
            * s.gt
                .iter()
                .map(|g| kiln_data::vqa_eval::vqa_accuracy(&best, g))
                .sum::<f64>()
            / s.len().max(1) as f64
    };
    let majority = (best.clone(), acc(&dev), acc(&test));
    let majority_novel = majority.2;
    Ok(Prepared {
        synthetic: false,
        source: format!(
            "VQA v2 from {}: train2014 {} questions; val2014 split into dev {} / test {}; {} answers (BUTD rule); inputs {h}×{w}",
            dir.display(),
            train_split.len(),
            dev.len(),
            test.len(),
            names.len()
        ),
        train: train_split,
        dev,
        test,
        answer_names: names,
        vocab: vocab.len(),
        majority,
        majority_novel,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedResult {
    pub seed: u64,
    pub dev: f64,
    pub test: f64,
    pub test_novel: f64,
    pub seconds: f64,
    pub curve: Vec<crate::train::EpochPoint>,
    /// Predicted answer index per dev and per test question (written as results files).
    #[serde(skip)]
    pub dev_predicted: Vec<usize>,
    #[serde(skip)]
    pub test_predicted: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowOutcome {
    pub settings: RowSettings,
    pub params: usize,
    pub grid: Option<(usize, usize, usize)>,
    pub seeds: Vec<SeedResult>,
}

/// `--epochs` as a whole number: clip-vil trains whole epochs, and rounding 0.4 up to 1 (or 2.5
/// to 3) would train a schedule other than the one asked for and recorded.
fn epochs_override(ctx: &RunContext) -> Result<Option<usize>> {
    match ctx.args.epochs {
        None => Ok(None),
        Some(e) if e.fract() == 0.0 && e >= 1.0 => Ok(Some(e as usize)),
        Some(e) => anyhow::bail!(
            "--epochs {e}: clip-vil trains whole epochs; pass a whole number of at least 1"
        ),
    }
}

fn run_row(r: &RowSettings, p: &Profile, data: &Prepared, ctx: &RunContext) -> Result<RowOutcome> {
    let visual = r.encoder.as_ref().map(|e| &p.encoders[e]);
    let h = &p.head;
    let head = HeadConfig {
        kind: r.head,
        vocab: data.vocab,
        answers: data.answer_names.len(),
        word_dim: h.word_dim,
        lstm: h.lstm,
        hidden: h.hidden,
        text_hidden: h.text_hidden,
        d: h.d,
        layers: h.layers,
        heads: h.heads,
        fused: h.fused,
        dropout: h.dropout,
    };
    let mut tc = r.train.clone().unwrap_or_else(|| p.train.clone());
    if let Some(e) = epochs_override(ctx)? {
        tc.epochs = e;
    }
    let mut seeds = Vec::new();
    let mut params = 0;
    for &seed in &p.seeds {
        let total = (data.train.len() / tc.batch_size * tc.epochs) as u64;
        let bar = progress::bar(total, &format!("{} s{seed}", r.label));
        ctx.device.seed(seed ^ ctx.seed);
        let mut model = VqaNet::new(visual, 0, &head, r.positions, &ctx.device)?;
        let weights = r.encoder.as_ref().and_then(|e| p.weights.get(e));
        if let (Some(file), Some(enc)) = (weights, model.encoder.as_mut()) {
            let dir = ctx
                .args
                .model
                .clone()
                .context("--model (the folder of CLIP weights)")?;
            let mut sd = kiln_models::clip::StateDict::read(&dir.join(file))?;
            enc.load_state_dict(&mut sd)?;
        }
        let trained = train(
            model,
            p.freeze_encoder && weights.is_some(),
            &data.train,
            &data.dev,
            &data.answer_names,
            &tc,
            seed ^ ctx.seed,
            &ctx.device,
            |d, _, l| {
                bar.set_position(d as u64);
                bar.set_message(format!("loss {l:.3}"));
            },
        )
        .with_context(|| format!("row `{}`, seed {seed}", r.label))?;
        bar.finish_and_clear();
        let dev = evaluate(
            &trained.model,
            &data.dev,
            &data.answer_names,
            tc.eval_batch,
            &ctx.device,
        )?;
        let test = evaluate(
            &trained.model,
            &data.test,
            &data.answer_names,
            tc.eval_batch,
            &ctx.device,
        )?;
        eprintln!(
            "{}: seed {seed}: dev {:.2}, test {:.2} ({:.0} s)",
            r.label, dev.accuracy, test.accuracy, trained.seconds
        );
        params = trained.params;
        seeds.push(SeedResult {
            seed,
            dev: dev.accuracy,
            test: test.accuracy,
            test_novel: test.novel_accuracy,
            seconds: trained.seconds,
            curve: trained.curve,
            dev_predicted: dev.predicted,
            test_predicted: test.predicted,
        });
    }
    let (h, w) = p.hw();
    let grid = visual.map(|v| (v.grid_side(h), v.grid_side(w), v.grid_dim()));
    Ok(RowOutcome {
        settings: r.clone(),
        params,
        grid,
        seeds,
    })
}

fn describe(v: &VisualConfig) -> String {
    match v {
        VisualConfig::ResNet(c) => format!("ModifiedResNet {:?} w{}", c.layers, c.width),
        VisualConfig::Vit(c) => format!("ViT p{} w{} L{}", c.patch_size, c.width, c.layers),
        VisualConfig::TorchResNet(c) => format!("ImageNet ResNet {:?} w{}", c.layers, c.width),
    }
}

/// The annotation files beside the results files, relative to the run folder: every dev
/// question, every test question, and the novel test questions (the `test acc (novel)` column).
pub const DEV_ANNOTATIONS: &str = "predictions/dev_annotations.json";
pub const TEST_ANNOTATIONS: &str = "predictions/test_annotations.json";
pub const NOVEL_ANNOTATIONS: &str = "predictions/test_novel_annotations.json";

/// The paper's tower behind both of its headline numbers (CLIP-Res50x4).
const PAPER_TOWER: &str = "CLIP-Res50x4 (ModifiedResNet [4, 6, 10, 6] w80)";
/// The paper's input size (the grid extractor's forced 600×1000).
const PAPER_HW: (usize, usize) = (600, 1000);

/// The questions of `s` that `keep` selects, with their human answers, in the official
/// annotation shape, so the official evaluation (or `kiln verify`) scores any results file.
fn annotations(s: &Split, keep: impl Fn(usize) -> bool) -> Vec<serde_json::Value> {
    (0..s.len())
        .filter(|&i| keep(i))
        .map(|i| {
            serde_json::json!({
                "question_id": s.question_ids[i],
                "question": s.questions[i],
                "answer_type": s.answer_types[i],
                "answers": s.gt[i].iter().enumerate().map(|(k, a)| serde_json::json!({"answer": a, "answer_id": k + 1})).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// A results file in the official format (`[{"question_id", "answer"}]`), one answer per
/// question of `s`.
fn results<'a>(s: &Split, answers: impl Iterator<Item = &'a str>) -> Vec<serde_json::Value> {
    s.question_ids
        .iter()
        .zip(answers)
        .map(|(q, a)| serde_json::json!({"question_id": q, "answer": a}))
        .collect()
}

/// The paper row a `[paper]` key stands for.
fn paper_label(key: &str) -> String {
    if key.starts_with("pythia_rn50x4") {
        "CLIP-Res50x4 + Pythia".into()
    } else if key.starts_with("mcan_rn50x4") {
        "CLIP-Res50x4 + MCAN".into()
    } else {
        key.into()
    }
}

/// How `r` differs from the paper's setting behind its number: data, evaluation split,
/// pretrained weights, tower and input size (the crate docs list the deviations every row
/// shares: optimiser, clipping, word vectors, plain MCAN).
fn differences(p: &Profile, data: &Prepared, r: &RowOutcome) -> Vec<String> {
    let mut out = Vec::new();
    match p.data.as_str() {
        "synthetic" => out.push(format!(
            "data: synthetic scenes with templated yes/no questions ({} train), not VQA v2",
            data.train.len()
        )),
        "vqa2-yesno" => out.push(format!(
            "data: the VQA v2 yes/no subset ({} training questions, 2 answers), not VQA v2 (3,129 answers)",
            data.train.len()
        )),
        _ if p.train_questions > 0 => out.push(format!(
            "data: the first {} train2014 questions only",
            data.train.len()
        )),
        _ => {}
    }
    out.push(match p.data.as_str() {
        "vqa-v2" => format!(
            "scored on a held-out part of val2014 ({} questions), not test-dev (official server only)",
            data.test.len()
        ),
        _ => format!(
            "scored on this profile's test split ({} questions), not VQA v2 test-dev",
            data.test.len()
        ),
    });
    match &r.settings.encoder {
        None => out.push("no image tower".into()),
        Some(e) => {
            if !p.weights.contains_key(e) {
                out.push(
                    "no pretrained CLIP weights: the tower is trained from scratch with the head"
                        .into(),
                );
            } else if !p.freeze_encoder {
                out.push("released weights fine-tuned with the head, not frozen".into());
            }
            let v = &p.encoders[e];
            let paper_tower =
                matches!(v, VisualConfig::ResNet(c) if c.layers == [4, 6, 10, 6] && c.width == 80);
            if !paper_tower {
                out.push(format!("tower {}, not {PAPER_TOWER}", describe(v)));
            }
        }
    }
    let (h, w) = p.hw();
    if (h, w) != PAPER_HW {
        out.push(format!("{h}×{w} inputs, not {}×{}", PAPER_HW.0, PAPER_HW.1));
    }
    out
}

/// The paper's numbers, each with the kiln row nearest to it (`paper` in the row's settings)
/// and what that row does differently; kept out of the main table, whose rows do not run the
/// paper's setting (issue 27: no paper number beside a row that does not run it).
fn paper_reference(
    ctx: &RunContext,
    file: &ExperimentFile<Profile>,
    p: &Profile,
    data: &Prepared,
    rows: &[RowOutcome],
) -> kiln_report::Table {
    let mut t = ctx.main_table(
        "CLIP-ViL paper numbers and what kiln's nearest rows differ in",
        data.synthetic,
        &[
            "paper row",
            "paper (VQA v2 test-dev)",
            "nearest kiln row",
            "what differs",
        ],
    );
    for key in file.paper.0.keys() {
        let Some(v) = file.paper.get(key) else {
            continue;
        };
        let ours: Vec<&RowOutcome> = rows
            .iter()
            .filter(|r| r.settings.paper.as_deref() == Some(key.as_str()))
            .collect();
        if ours.is_empty() {
            t.push(vec![
                Cell::text(paper_label(key)),
                Cell::num(v, 2),
                Cell::text("—"),
                Cell::text("no row of this profile runs this setting"),
            ]);
        }
        for r in ours {
            t.push(vec![
                Cell::text(paper_label(key)),
                Cell::num(v, 2),
                Cell::text(&r.settings.label),
                Cell::text(differences(p, data, r).join("; ")),
            ]);
        }
    }
    t.note(format!("The paper's numbers: VQA v2 test-dev (official evaluation server) with {PAPER_TOWER} grids from the released CLIP weights, frozen, at {}×{} inputs, under Pythia and MCAN heads (Shen et al. 2021, direct fine-tuning).", PAPER_HW.0, PAPER_HW.1));
    t.note("kiln's numbers for the rows named here are in the main table (`table.md`). Every kiln row also carries the deviations listed in the crate docs (kiln_clipvil: Adam for Adamax, per-tensor gradient clipping, learned word vectors, plain MCAN), not repeated here.");
    t
}

/// `s<seed>: dev `no`, test `no`` when the seed collapsed to a constant predictor (one answer
/// for every question) on dev, test or both; `None` when it did not.
fn constant_seed(x: &SeedResult, answer_names: &[String]) -> Option<String> {
    let on: Vec<String> = [("dev", &x.dev_predicted), ("test", &x.test_predicted)]
        .into_iter()
        .filter(|(_, p)| kiln_experiment::predictions::is_constant(p))
        .map(|(split, p)| format!("{split} `{}`", answer_names[p[0]]))
        .collect();
    (!on.is_empty()).then(|| format!("s{}: {}", x.seed, on.join(", ")))
}

fn record(
    ctx: &RunContext,
    file: &ExperimentFile<Profile>,
    p: &Profile,
    data: &Prepared,
    rows: &[RowOutcome],
) -> Result<RunRecord> {
    let mut rec = RunRecord::new(data.synthetic);
    // The questions with their human answers, in the official annotation shape, so every
    // results file below is scored with the official evaluation (`kiln verify` does).
    let stem = |f: &str| {
        f.trim_start_matches("predictions/")
            .trim_end_matches(".json")
            .to_string()
    };
    rec.predictions_json(&stem(DEV_ANNOTATIONS), &annotations(&data.dev, |_| true))?;
    rec.predictions_json(&stem(TEST_ANNOTATIONS), &annotations(&data.test, |_| true))?;
    let novel_questions = data.test.novel.iter().filter(|x| **x).count();
    if novel_questions > 0 {
        rec.predictions_json(
            &stem(NOVEL_ANNOTATIONS),
            &annotations(&data.test, |i| data.test.novel[i]),
        )?;
    }
    let vqa = |ann: &str| format!("vqa:{ann}");
    // The results files answer every test question; the novel column scores the subset that
    // the novel annotations list (the official evaluation's `quesIds`).
    let vqa_novel = format!("vqa/subset:{NOVEL_ANNOTATIONS}");
    let path = |name: &str| format!("predictions/{name}.json");
    let mut t = ctx.main_table(
        &file.title,
        data.synthetic,
        &[
            "model",
            "tower",
            "grid",
            "positions",
            "params",
            "dev acc",
            "test acc",
            "test acc (novel)",
            "constant seeds",
            "train s",
        ],
    );
    let mut collapsed = Vec::new();
    for r in rows {
        let s = &r.settings;
        let key = kiln_report::slug(&s.label);
        let dev: Vec<f64> = r.seeds.iter().map(|x| x.dev).collect();
        let test: Vec<f64> = r.seeds.iter().map(|x| x.test).collect();
        let novel: Vec<f64> = r.seeds.iter().map(|x| x.test_novel).collect();
        let secs: Vec<f64> = r.seeds.iter().map(|x| x.seconds).collect();
        // Every seed's results, dev and test, in the official format.
        let (mut dev_files, mut test_files, mut constant) = (Vec::new(), Vec::new(), Vec::new());
        for x in &r.seeds {
            for (split, pred, files) in [
                (&data.dev, &x.dev_predicted, &mut dev_files),
                (&data.test, &x.test_predicted, &mut test_files),
            ] {
                let name = format!("{key}-{}-s{}", split.name, x.seed);
                let answers = pred.iter().map(|&k| data.answer_names[k].as_str());
                rec.predictions_json(&name, &results(split, answers))?;
                files.push(path(&name));
            }
            if let Some(c) = constant_seed(x, &data.answer_names) {
                constant.push(c);
                collapsed.push(format!("`{}` seed {}", s.label, x.seed));
            }
        }
        let tower = s.encoder.as_ref().map_or("—".to_string(), |e| {
            format!("{e}: {}", describe(&p.encoders[e]))
        });
        t.push(vec![
            Cell::text(&s.label),
            Cell::text(tower),
            Cell::text(
                r.grid
                    .map_or("—".into(), |(h, w, c)| format!("{h}×{w}×{c}")),
            ),
            Cell::text(
                if s.encoder
                    .as_ref()
                    .is_some_and(|e| matches!(p.encoders[e], VisualConfig::Vit(_)))
                {
                    format!("{:?}", s.positions).to_lowercase()
                } else {
                    "—".into()
                },
            ),
            Cell::text(format!("{:.3e}", r.params as f64)),
            Cell::sourced(&dev, 2, Source::new(vqa(DEV_ANNOTATIONS), dev_files, 1.0)),
            Cell::sourced(
                &test,
                2,
                Source::new(vqa(TEST_ANNOTATIONS), test_files.clone(), 1.0),
            ),
            if novel_questions > 0 {
                Cell::sourced(&novel, 2, Source::new(vqa_novel.clone(), test_files, 1.0))
            } else {
                Cell::text("—")
            },
            Cell::text(if constant.is_empty() {
                "—".to_string()
            } else {
                constant.join("; ")
            }),
            Cell::measured(&secs, 0),
        ]);
        rec.metric(format!("{key}.dev_accuracy"), kiln_report::mean_sd(&dev).0);
        rec.metric(
            format!("{key}.test_accuracy"),
            kiln_report::mean_sd(&test).0,
        );
        rec.metric(
            format!("{key}.test_novel_accuracy"),
            kiln_report::mean_sd(&novel).0,
        );
    }
    // Always answering the most frequent training answer, as results files like the rows'.
    let (ans, dmaj, tmaj) = &data.majority;
    for split in [&data.dev, &data.test] {
        let name = format!("majority-{}", split.name);
        let answers = std::iter::repeat_n(ans.as_str(), split.len());
        rec.predictions_json(&name, &results(split, answers))?;
    }
    let (mdev, mtest) = (path("majority-dev"), path("majority-test"));
    t.push(vec![
        Cell::text(format!("majority answer (`{ans}`)")),
        Cell::text("—"),
        Cell::text("—"),
        Cell::text("—"),
        Cell::text("0"),
        Cell::sourced(
            &[*dmaj],
            2,
            Source::new(vqa(DEV_ANNOTATIONS), vec![mdev], 1.0),
        ),
        Cell::sourced(
            &[*tmaj],
            2,
            Source::new(vqa(TEST_ANNOTATIONS), vec![mtest.clone()], 1.0),
        ),
        if novel_questions > 0 {
            Cell::sourced(
                &[data.majority_novel],
                2,
                Source::new(vqa_novel.clone(), vec![mtest], 1.0),
            )
        } else {
            Cell::text("—")
        },
        Cell::text("(by construction)"),
        Cell::text("—"),
    ]);
    rec.metric("majority.test_accuracy", *tmaj);
    t.note(format!(
        "Accuracy: the official VQA accuracy ×100 (kiln_data::vqa_eval). Mean ± sd over seeds {:?}; each seed trains tower and head from a fresh initialisation. Every seed's answers are in `predictions/<row>-<dev|test>-s<seed>.json` (the official results format), scored against `{DEV_ANNOTATIONS}` and `{TEST_ANNOTATIONS}`; `kiln verify` recomputes every accuracy cell from them.",
        p.seeds
    ));
    if collapsed.is_empty() {
        t.note("`constant seeds`: no seed collapsed to a constant predictor (one answer for every question of a split).");
    } else {
        t.note(format!(
            "`constant seeds`: a seed listed there collapsed to a constant predictor, giving the answer shown to every question of the split named ({}). It is included in the row's mean ± sd (not dropped), so that mean includes a seed that learned no more than one answer; its per-seed values are in run.json (`settings.rows`).",
            collapsed.join(", ")
        ));
    }
    t.note(format!("Data: {}.", data.source));
    if p.data == "vqa-v2" {
        t.note("VQA v2: dev and test are two disjoint parts of val2014 (test-dev is scored only by the official server; these results files are in its format). Towers: the released CLIP weights from --model, frozen as in CLIP-ViL's direct fine-tuning.");
    }
    if p.data == "vqa2-yesno" {
        t.note("The yes/no subset has one answer per question (the multiple-choice answer), not ten; it is scored as ten agreeing annotators, so accuracy is exact match and the soft target is 1. Its ids are not VQA's: `question_id` in the results files is the question's line in its list file.");
        let (dn, tn) = (
            data.dev.novel.iter().filter(|x| !**x).count(),
            data.test.novel.iter().filter(|x| !**x).count(),
        );
        t.note(format!("`test acc (novel)` leaves out the {tn} test questions ({dn} in dev) that repeat a training question as a paraphrase on the same image with the same answer (same image and `#k`); a network that memorises training images scores well on those. The {novel_questions} novel test questions are listed in `{NOVEL_ANNOTATIONS}`."));
    }
    if !data.synthetic && p.weights.is_empty() {
        t.note("No released CLIP weights are reachable here: every tower is a CLIP *architecture* trained from scratch end to end with its head on ~7.8k questions. This tests the pipeline (grids → heads → official metric) and whether images add to the language prior at this scale; it does NOT test the paper's claim that CLIP pre-training beats ImageNet/BUTD features, which only the paper profile (released weights) can.");
    }
    t.note("The paper's VQA v2 test-dev numbers are not in this table: `paper_reference.md` lists them with the nearest row here and what that row does differently.");
    if data.synthetic {
        t.note("SYNTHETIC: checks the machinery end to end; says nothing about the paper's claim.");
    }
    t.note(format!(
        "Training{}: Adam (lr {}, warm-up {:.0}% from ×{}, ×{} at {:?} of the run), per-tensor clip {}, batch {}, {} epochs{}, mmf's logit BCE (mean × answers).",
        if p.rows.iter().any(|r| r.train.is_some()) { " (rows without their own schedule)" } else { "" },
        p.train.lr,
        p.train.warmup * 100.0,
        p.train.warmup_factor,
        p.train.decay,
        p.train.decay_at,
        p.train.clip,
        p.train.batch_size,
        epochs_override(ctx)?.unwrap_or(p.train.epochs),
        if ctx.args.epochs.is_some() { " (--epochs, every row)" } else { "" }
    ));
    rec.table("table", t);
    rec.table("paper_reference", paper_reference(ctx, file, p, data, rows));
    let mut series = Vec::new();
    for r in rows {
        if let Some(s0) = r.seeds.first() {
            series.push(Series {
                name: r.settings.label.clone(),
                points: s0
                    .curve
                    .iter()
                    .map(|c| (c.epoch as f64, c.dev_accuracy))
                    .collect(),
            });
        }
    }
    rec.plot(
        "dev_accuracy",
        Plot::line(
            "dev accuracy per epoch (first seed)",
            "epoch",
            "dev VQA accuracy",
            series,
        ),
    );
    rec.setting("rows", rows);
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(dev: Vec<usize>, test: Vec<usize>) -> SeedResult {
        SeedResult {
            seed: 2,
            dev: 0.0,
            test: 0.0,
            test_novel: 0.0,
            seconds: 0.0,
            curve: Vec::new(),
            dev_predicted: dev,
            test_predicted: test,
        }
    }

    #[test]
    fn a_seed_that_gives_one_answer_to_a_whole_split_is_named() {
        let names = ["no".to_string(), "yes".to_string()];
        assert_eq!(
            constant_seed(&seed(vec![0, 1, 0], vec![1, 0]), &names),
            None
        );
        assert_eq!(
            constant_seed(&seed(vec![0, 1], vec![0, 0, 0]), &names).as_deref(),
            Some("s2: test `no`")
        );
        assert_eq!(
            constant_seed(&seed(vec![1, 1], vec![0, 0]), &names).as_deref(),
            Some("s2: dev `yes`, test `no`")
        );
    }
}
