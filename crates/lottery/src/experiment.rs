//! `one-layer-lottery`: BLEU of the one-layer randomly weighted Transformer (masks only)
//! beside a fully trained Transformer of the same shape and training budget, per corpus.
//!
//! Each row trains over the profile's seeds, translates the test set with beam search,
//! detokenises, and scores with sacreBLEU's corpus BLEU (13a, exp smoothing; its signature is
//! printed) and, for tokenised corpora (IWSLT14), with fairseq's tokenized BLEU, the number
//! the paper reports. Every seed's hypotheses and the references are written as text files
//! (`translations/<corpus>/`) so either BLEU can be recomputed with the field's own tools;
//! `kiln verify` recomputes both columns from them. The paper's numbers sit beside rows only in
//! the `paper` profiles, which run its setting; the small profiles list them in a
//! `paper_reference` table with what differs (width, data size, training length).

use anyhow::{bail, Context, Result};
use burn::module::Module;
use kiln_core::progress;
use kiln_data::bleu::{corpus_bleu, tokenized_bleu};
use kiln_experiment::{ExperimentFile, Paper, RunArgs, RunContext, RunRecord};
use kiln_models::seq2seq::{BeamConfig, Seq2Seq, Seq2SeqConfig, TokenTable};
use kiln_report::{Cell, Source, Table};
use serde::{Deserialize, Serialize};

use crate::data::{self, Corpus, Text};
use crate::model::{
    build, counts, masked_shape, materialize, Embeddings, Init, LotteryConfig, Share,
};
use crate::train::{train, translate, Checkpoint, TrainConfig, Validate};

pub const NAME: &str = "one-layer-lottery";

pub struct OneLayerLottery;

/// The trained baselines' (encoder, decoder) embedding tables by (width, seed).
type TrainedEmbeddings = std::collections::HashMap<(usize, u64), (Vec<f32>, Vec<f32>)>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shape {
    pub d_model: usize,
    pub ffn: usize,
    pub heads: usize,
    pub layers: usize,
    pub dropout: f64,
    /// Dropout on attention weights (0 for IWSLT14, 0.1 for the WMT14 big models).
    #[serde(default)]
    pub attention_dropout: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowKind {
    /// A fully trained Transformer (fairseq's defaults: biases, LayerNorm gains).
    Trained,
    /// The masked random model.
    Masked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingSource {
    /// Random, frozen, masked (the headline).
    Random,
    /// The embedding tables of this run's trained baseline (same corpus and seed), frozen,
    /// scaled and masked as the reference does with its `--encoder-embed-path`.
    Trained,
    /// The same tables, frozen, not masked (`--embed-no-mask`).
    TrainedUnmasked,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowSettings {
    pub label: String,
    pub kind: RowKind,
    #[serde(default)]
    pub keep: Option<f64>,
    #[serde(default)]
    pub init: Option<Init>,
    #[serde(default)]
    pub share: Option<Share>,
    #[serde(default = "d_embeddings")]
    pub embeddings: EmbeddingSource,
    /// Width multiplier for d and ffn (the paper's wider models).
    #[serde(default = "d_one")]
    pub width: usize,
    /// Attention heads when the row differs from the profile's shape (WMT14's 1536-wide model
    /// has 24).
    #[serde(default)]
    pub heads: Option<usize>,
    /// Attention dropout when the row differs from the profile's shape.
    #[serde(default)]
    pub attention_dropout: Option<f64>,
    /// Trained rows: one embedding table for encoder input, decoder input and output
    /// (fairseq's `--share-all-embeddings`, the trained WMT14 Transformer's recipe). Needs the
    /// corpus's joined dictionary.
    #[serde(default)]
    pub share_all_embeddings: bool,
    /// Only these corpora (all when empty).
    #[serde(default)]
    pub corpora: Vec<String>,
    /// Seeds for this row (the profile's when empty).
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// Key of `[paper]` per corpus, e.g. `{ iwslt14 = "iwslt14_masked" }`.
    #[serde(default)]
    pub paper: std::collections::BTreeMap<String, String>,
    /// `baseline`, `headline` or `ablation`.
    #[serde(default = "d_group")]
    pub group: String,
}
fn d_embeddings() -> EmbeddingSource {
    EmbeddingSource::Random
}
fn d_one() -> usize {
    1
}
fn d_group() -> String {
    "ablation".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorpusSettings {
    /// `synthetic`, `multi30k`, `iwslt14-mini`, or `prepared` (a fairseq-prepared folder under
    /// `--data-dir`).
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Multi30k: joint BPE merges to learn.
    #[serde(default)]
    pub bpe_merges: usize,
    /// Use the first N training pairs (0: all).
    #[serde(default)]
    pub max_train: usize,
    /// Prepared corpora: folder under `--data-dir`, languages.
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(default)]
    pub src: Option<String>,
    #[serde(default)]
    pub tgt: Option<String>,
    #[serde(default)]
    pub tokenized: bool,
    /// Dictionary threshold: tokens seen fewer times in training become <unk>.
    #[serde(default)]
    pub threshold: u64,
    /// Prepared corpora: one dictionary over both languages (WMT14's joined dictionary).
    #[serde(default)]
    pub joined_dictionary: bool,
    /// Synthetic: [train, test, vocab].
    #[serde(default)]
    pub synthetic: Vec<usize>,
}

impl CorpusSettings {
    fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.kind.clone())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeamSettings {
    pub beam: usize,
    pub len_penalty: f64,
    pub max_len_a: f64,
    pub max_len_b: usize,
    pub batch: usize,
    /// Maximum length when decoding the validation set for checkpoint selection (the
    /// reference's `--eval-bleu-args`: 1.2·src + 10), which differs from the test's.
    #[serde(default = "d_valid_a")]
    pub valid_max_len_a: f64,
    #[serde(default = "d_valid_b")]
    pub valid_max_len_b: usize,
}
fn d_valid_a() -> f64 {
    1.2
}
fn d_valid_b() -> usize {
    10
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub description: String,
    pub data: String,
    pub corpora: Vec<CorpusSettings>,
    pub shape: Shape,
    /// Training pairs longer than this (BPE tokens, either side) are dropped.
    pub max_len: usize,
    /// The trained baseline's recipe and the masked model's (the README's commands).
    pub train_trained: TrainConfig,
    pub train_masked: TrainConfig,
    pub beam: BeamSettings,
    pub rows: Vec<RowSettings>,
    pub seeds: Vec<u64>,
}

impl Paper for OneLayerLottery {
    type Profile = Profile;
    const NAME: &'static str = NAME;
    const PACKAGE: &'static str = env!("CARGO_PKG_NAME");

    fn inputs(&self, _: &str, p: &Profile, args: &RunArgs) -> Result<String, String> {
        let r = kiln_experiment::Resolver::from_args(args);
        let mut found = Vec::new();
        for c in &p.corpora {
            match c.kind.as_str() {
                "synthetic" => found.push("synthetic translation task".to_string()),
                "multi30k" => match r.find_file("multi30k/raw/train.de.gz") {
                    Some(f) => found.push(format!("Multi30k at {}", f.path.display())),
                    None => return Err("no multi30k/raw/ under the data roots; pass --data-dir (the folder holding multi30k/)".into()),
                },
                "iwslt14-mini" => match r.find_file("iwslt14/train_samples/first.de") {
                    Some(f) => found.push(format!("IWSLT14 samples at {}", f.path.display())),
                    None => return Err("no iwslt14/train_samples/ under the data roots; pass --data-dir (the folder holding iwslt14/)".into()),
                },
                "prepared" => {
                    let Some(dir) = &args.data_dir else {
                        return Err(format!("corpus `{}` needs --data-dir holding {}/ (fairseq-prepared train/test files)", c.label(), c.folder.clone().unwrap_or_default()));
                    };
                    let folder = dir.join(c.folder.clone().unwrap_or_default());
                    let f = folder.join(format!("train.{}", c.src.clone().unwrap_or_default()));
                    if !f.exists() {
                        return Err(format!("{}: missing (fairseq prepare script output expected: train/test.{{src,tgt}} with BPE applied)", f.display()));
                    }
                    let selects = [&p.train_trained, &p.train_masked]
                        .iter()
                        .any(|t| t.checkpoint == Checkpoint::BestValid);
                    let v = folder.join(format!("valid.{}", c.src.clone().unwrap_or_default()));
                    if selects && !v.exists() {
                        return Err(format!("{}: missing; this profile picks the checkpoint with the best validation BLEU, so the corpus needs its valid split", v.display()));
                    }
                    found.push(format!("{} at {}", c.label(), folder.display()));
                }
                other => return Err(format!("unknown corpus kind `{other}`")),
            }
        }
        Ok(found.join("; "))
    }

    fn validate(&self, p: &Profile) -> Result<()> {
        let f = format!("experiments/{NAME}.toml");
        if p.seeds.is_empty() || p.rows.is_empty() || p.corpora.is_empty() {
            bail!("{f}: seeds, rows and corpora must be non-empty");
        }
        if !p.shape.d_model.is_multiple_of(p.shape.heads) {
            bail!(
                "{f}: d_model {} is not a multiple of heads {}",
                p.shape.d_model,
                p.shape.heads
            );
        }
        let labels: Vec<String> = p.corpora.iter().map(|c| c.label()).collect();
        // Translations are written to translations/<corpus>/<row slug>_s<seed>.*: two corpora of
        // one name, or two rows of one corpus whose labels slug alike, would overwrite each
        // other's files.
        for (i, c) in labels.iter().enumerate() {
            if labels[..i].contains(c) {
                bail!("{f}: two corpora named `{c}` (give one a `name`)");
            }
            let mut slugs: Vec<(String, &str)> = Vec::new();
            for r in p
                .rows
                .iter()
                .filter(|r| r.corpora.is_empty() || r.corpora.contains(c))
            {
                let s = kiln_report::slug(&r.label);
                if let Some((_, other)) = slugs.iter().find(|(o, _)| *o == s) {
                    bail!("{f}: rows `{other}` and `{}` of corpus `{c}` share the file name `{s}`; rename one", r.label);
                }
                slugs.push((s, &r.label));
            }
        }
        for r in &p.rows {
            for c in &r.corpora {
                if !labels.contains(c) {
                    bail!(
                        "{f}: row `{}` names corpus `{c}`, not in {labels:?}",
                        r.label
                    );
                }
            }
            let heads = r.heads.unwrap_or(p.shape.heads);
            if heads == 0 || !(p.shape.d_model * r.width).is_multiple_of(heads) {
                bail!(
                    "{f}: row `{}`: d_model {} is not a multiple of {heads} heads",
                    r.label,
                    p.shape.d_model * r.width
                );
            }
            if r.share_all_embeddings {
                if r.kind != RowKind::Trained {
                    bail!("{f}: row `{}`: share_all_embeddings is for trained rows (the masked models keep separate encoder and decoder tables, as the official code does)", r.label);
                }
                let unjoined: Vec<String> = p
                    .corpora
                    .iter()
                    .filter(|c| {
                        (r.corpora.is_empty() || r.corpora.contains(&c.label()))
                            && !c.joined_dictionary
                    })
                    .map(|c| c.label())
                    .collect();
                if !unjoined.is_empty() {
                    bail!("{f}: row `{}`: share_all_embeddings needs a joined dictionary, but corpora {unjoined:?} build separate ones (set `joined_dictionary = true` on them, or name only joined corpora in the row's `corpora`)", r.label);
                }
            }
            if let Some(k) = r.keep {
                if !(k > 0.0 && k <= 1.0) {
                    bail!("{f}: row `{}`: keep {k} must lie in (0, 1]", r.label);
                }
            }
            if r.kind == RowKind::Masked
                && r.embeddings != EmbeddingSource::Random
                && !p
                    .rows
                    .iter()
                    .any(|b| b.kind == RowKind::Trained && b.width == r.width)
            {
                bail!("{f}: row `{}` takes the trained baseline's embeddings, but no trained row of width ×{} exists", r.label, r.width);
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
        let mut rec = RunRecord::new(p.data == "synthetic");
        // A paper number sits beside a row only when the row runs the paper's setting (the
        // `paper` profiles); the small profiles list the paper's numbers in a separate
        // `paper_reference` table that says what differs.
        let paper_setting = p.data == "paper";
        let mut columns = vec![
            "corpus",
            "model",
            "k",
            "init",
            "embeddings",
            "d/ffn",
            "stored",
            "seeds",
            "sacreBLEU",
            "tokenized BLEU",
            "% of trained",
            "train s",
            "updates",
        ];
        if paper_setting {
            columns.push("paper");
        }
        let mut t = ctx.main_table(&file.title, p.data == "synthetic", &columns);
        let mut reference = Table::new(
            format!(
                "{}: the paper's numbers, and what differs from profile `{}`",
                file.title, ctx.profile
            ),
            &[
                "paper result",
                "paper BLEU",
                "paper % of trained",
                "kiln row",
                "kiln % of trained",
                "width (kiln vs paper)",
                "training pairs (kiln vs paper)",
                "training (kiln vs paper)",
            ],
        );
        let mut collapsed = Vec::new();
        let mut signature = String::new();
        let mut descriptions = Vec::new();
        let mut all_rows = Vec::new();
        for cs in &p.corpora {
            let corpus = load_corpus(cs, p, ctx)?;
            eprintln!(
                "{}: {} train pairs, {} test; vocab {} / {}",
                corpus.name,
                corpus.train.len(),
                corpus.test_src.len(),
                corpus.src_dict.len(),
                corpus.tgt_dict.len()
            );
            descriptions.push(format!(
                "{}. Dictionaries {} (source) / {} (target) symbols from the training text{}; {:.2}% of test source tokens are <unk>{}.",
                corpus.description,
                corpus.src_dict.len(),
                corpus.tgt_dict.len(),
                if cs.threshold > 1 { format!(" (tokens seen fewer than {} times are <unk>, fairseq-preprocess's --thresholdsrc/--thresholdtgt)", cs.threshold) } else { String::new() },
                100.0 * corpus.test_unk,
                if corpus.dropped > 0 { format!("; {} training pairs longer than {} tokens dropped", corpus.dropped, p.max_len) } else { String::new() }
            ));
            let refs_detok: Vec<String> = corpus.test_ref.iter().map(|r| corpus.detok(r)).collect();
            let cname = cs.label();
            rec.file(
                &format!("translations/{cname}/ref.detok.txt"),
                lines(&refs_detok),
            );
            if corpus.text == Text::MosesTokenized {
                rec.file(
                    &format!("translations/{cname}/ref.tok.txt"),
                    lines(&corpus.test_ref),
                );
            }
            let mut trained_embeddings: TrainedEmbeddings = Default::default();
            let mut baseline_bleu: std::collections::HashMap<usize, Vec<f64>> = Default::default();
            for r in p
                .rows
                .iter()
                .filter(|r| r.corpora.is_empty() || r.corpora.contains(&cname))
            {
                let seeds = if r.seeds.is_empty() {
                    &p.seeds
                } else {
                    &r.seeds
                };
                let mut sacre = Vec::new();
                let mut tok = Vec::new();
                // The hypothesis files each seed's BLEU is computed from, for `kiln verify`.
                let mut sacre_files = Vec::new();
                let mut tok_files = Vec::new();
                let mut collapsed_seeds = Vec::new();
                let mut secs = Vec::new();
                let mut updates = 0;
                let mut stored = String::new();
                let mut checkpoints = Vec::new();
                let mut curves = Vec::new();
                for &seed in seeds {
                    let out =
                        run_row(r, p, &corpus, seed ^ ctx.seed, &mut trained_embeddings, ctx)?;
                    let hyps_detok: Vec<String> =
                        out.hyps.iter().map(|h| corpus.detok(h)).collect();
                    let s = corpus_bleu(&hyps_detok, &[&refs_detok])
                        .with_context(|| format!("sacreBLEU for row `{}`", r.label))?;
                    signature = s.signature();
                    sacre.push(s.score);
                    let stem = format!(
                        "translations/{cname}/{}_s{seed}",
                        kiln_report::slug(&r.label)
                    );
                    if corpus.text == Text::MosesTokenized {
                        let tb = tokenized_bleu(&out.hyps, &corpus.test_ref)?;
                        tok.push(tb.score);
                        tok_files.push(format!("{stem}.tok.txt"));
                        rec.file(&format!("{stem}.tok.txt"), lines(&out.hyps));
                    }
                    sacre_files.push(format!("{stem}.detok.txt"));
                    rec.file(&format!("{stem}.detok.txt"), lines(&hyps_detok));
                    // A model that says the same sentence whatever the source has collapsed:
                    // flagged in the table, not silently averaged in.
                    if hyps_detok.len() > 1 && hyps_detok.iter().all(|h| *h == hyps_detok[0]) {
                        collapsed_seeds.push(seed);
                        collapsed.push(format!("{cname} / {} seed {seed}", r.label));
                    }
                    eprintln!("{cname} / {}: seed {seed}: sacreBLEU {:.2}{} ({:.0} s train, {:.0} s decode; training loss per epoch {:.2?}; checkpoint: {})", r.label, s.score, tok.last().map_or(String::new(), |b| format!(", tokenized BLEU {b:.2}")), out.train_seconds, out.decode_seconds, out.curve, out.checkpoint);
                    checkpoints.push(out.checkpoint.clone());
                    curves.push(out.curve.clone());
                    secs.push(out.train_seconds);
                    updates = out.updates;
                    stored = out.stored;
                }
                let headline = if tok.is_empty() { &sacre } else { &tok };
                if r.kind == RowKind::Trained {
                    baseline_bleu.insert(r.width, headline.clone());
                }
                let pct = baseline_bleu
                    .get(&r.width)
                    .filter(|_| r.kind == RowKind::Masked)
                    .map(|b| {
                        100.0 * kiln_report::mean_sd(headline).0
                            / kiln_report::mean_sd(b).0.max(1e-9)
                    });
                let paper_key = r.paper.get(&cname);
                let paper = paper_key.and_then(|k| file.paper.get(k));
                let lc = row_lottery(r);
                let (d, f) = (p.shape.d_model * r.width, p.shape.ffn * r.width);
                let mut row = vec![
                    Cell::text(&cname),
                    Cell::text(if collapsed_seeds.is_empty() {
                        r.label.clone()
                    } else {
                        format!("{} (COLLAPSED: seeds {collapsed_seeds:?})", r.label)
                    }),
                    Cell::text(if r.kind == RowKind::Masked {
                        format!("{}", lc.keep)
                    } else {
                        "—".into()
                    }),
                    Cell::text(if r.kind == RowKind::Masked {
                        lc.init.name().to_string()
                    } else {
                        "fairseq".into()
                    }),
                    Cell::text(match (r.kind, r.embeddings) {
                        (RowKind::Trained, _) => "trained",
                        (_, EmbeddingSource::Random) => "random, masked",
                        (_, EmbeddingSource::Trained) => "trained, fixed, masked",
                        (_, EmbeddingSource::TrainedUnmasked) => "trained, fixed",
                    }),
                    Cell::text(match r.heads {
                        Some(h) => format!("{d}/{f}/{h}h"),
                        None => format!("{d}/{f}"),
                    }),
                    Cell::text(stored),
                    Cell::text(format!("{seeds:?}")),
                    Cell::sourced(
                        &sacre,
                        2,
                        Source::new(
                            format!("bleu:translations/{cname}/ref.detok.txt"),
                            sacre_files,
                            1.0,
                        ),
                    ),
                    if tok.is_empty() {
                        Cell::text("—")
                    } else {
                        Cell::sourced(
                            &tok,
                            2,
                            Source::new(
                                format!("tokbleu:translations/{cname}/ref.tok.txt"),
                                tok_files,
                                1.0,
                            ),
                        )
                    },
                    // Derived: the ratio of two sourced cells' means.
                    Cell::opt(pct, 0),
                    Cell::measured(&secs, 0),
                    Cell::text(updates.to_string()),
                ];
                if paper_setting {
                    row.push(Cell::opt(paper, 2));
                } else if let (Some(key), Some(value)) = (paper_key, paper) {
                    let tc = match r.kind {
                        RowKind::Trained => &p.train_trained,
                        RowKind::Masked => &p.train_masked,
                    };
                    let ps = paper_setting_of(file, key);
                    let heads = r.heads.unwrap_or(p.shape.heads);
                    reference.push(vec![
                        Cell::text(match &ps {
                            Some(s) => format!("{} · {}", s.corpus, s.row),
                            None => key.clone(),
                        }),
                        Cell::num(value, 2),
                        Cell::opt(
                            ps.as_ref()
                                .and_then(|s| s.trained)
                                .filter(|_| r.kind == RowKind::Masked)
                                .map(|b| 100.0 * value / b),
                            0,
                        ),
                        Cell::text(format!("{cname} · {}", r.label)),
                        // Against the trained row of the same width, else (as the paper's wide
                        // masked model against its trained small one) the width ×1 trained row.
                        Cell::text(
                            [r.width, 1]
                                .iter()
                                .filter(|_| r.kind == RowKind::Masked)
                                .find_map(|w| Some((*w, baseline_bleu.get(w)?)))
                                .map_or("—".into(), |(w, b)| {
                                    format!(
                                        "{:.0} (vs trained d {})",
                                        100.0 * kiln_report::mean_sd(headline).0
                                            / kiln_report::mean_sd(b).0.max(1e-9),
                                        p.shape.d_model * w
                                    )
                                }),
                        ),
                        Cell::text(format!(
                            "d {d} / ffn {f} / {heads} heads vs {}",
                            ps.as_ref().map_or("—".into(), |s| format!(
                                "d {} / ffn {} / {} heads",
                                s.d, s.ffn, s.heads
                            ))
                        )),
                        Cell::text(format!(
                            "{} vs {}",
                            corpus.train.len(),
                            ps.as_ref()
                                .and_then(|s| s.train_pairs)
                                .map_or("—".into(), |n| format!("≈{}", si(n)))
                        )),
                        Cell::text(format!(
                            "{updates} updates of ≤{} tokens vs {}",
                            tc.max_tokens,
                            ps.as_ref().map_or("—".into(), |s| format!(
                                "{} epochs of ≤{} tokens",
                                s.epochs, s.max_tokens
                            ))
                        )),
                    ]);
                }
                t.push(row);
                let key = format!(
                    "{}.{}",
                    kiln_report::slug(&cname),
                    kiln_report::slug(&r.label)
                );
                rec.metric(format!("{key}.sacrebleu"), kiln_report::mean_sd(&sacre).0);
                if !tok.is_empty() {
                    rec.metric(
                        format!("{key}.tokenized_bleu"),
                        kiln_report::mean_sd(&tok).0,
                    );
                }
                all_rows.push(serde_json::json!({"corpus": cname, "row": r.label, "seeds": seeds, "sacrebleu": sacre, "tokenized_bleu": tok, "train_seconds": secs, "checkpoints": checkpoints, "train_loss_per_epoch": curves}));
            }
        }
        t.note(format!("sacreBLEU: corpus BLEU on detokenised hypotheses vs detokenised references, kiln_data::bleu (sacreBLEU's algorithm, signature `{signature}`). Tokenized BLEU: fairseq-generate's BLEU4 on the lowercased Moses tokens after BPE removal, the number the paper reports for IWSLT14. Mean ± sd over each row's seeds (combined with the run seed {}); `% of trained` divides the row's mean by the trained row's of the same corpus and width (tokenized BLEU where there is one, else sacreBLEU). Every seed's test translations are under translations/<corpus>/ (<row>_s<seed>.detok.txt against ref.detok.txt for sacreBLEU, <row>_s<seed>.tok.txt against ref.tok.txt for tokenized BLEU), and `kiln verify` recomputes both columns from them.", ctx.seed));
        if !collapsed.is_empty() {
            t.note(format!(
                "COLLAPSED: {} translated every test sentence to the same output; the row's mean includes it.",
                collapsed.join(", ")
            ));
        }
        t.note(format!(
            "Model: fairseq post-LN Transformer, {} + {} layers, d {} / ffn {} / {} heads (×width), dropout {}. Masked rows: no biases, affine-free LayerNorm, tied decoder input/output embedding, one random encoder layer and one random decoder layer shared across depth (unless the row says otherwise), per-layer masks, only scores trained. `stored`: what a model needs on disk (trained: float32 parameters; masked: the seed of its random weights plus one bit per score).",
            p.shape.layers, p.shape.layers, p.shape.d_model, p.shape.ffn, p.shape.heads, p.shape.dropout
        ));
        t.note(format!(
            "Training budget, the same for every row of a corpus: at most {} updates or {} epochs of ≤{} tokens; trained rows: Adam (0.9, {}), inverse-sqrt lr {} with {} warm-up updates, weight decay {}, clip {}; masked rows: lr {}, warm-up {}, weight decay {}, clip {}; label smoothing {}. Decoding: beam {}, length penalty {}, max length {}·src + {}. Checkpoint scored: trained rows {}, masked rows {}.",
            p.train_masked.max_updates, p.train_masked.max_epochs, p.train_masked.max_tokens, p.train_trained.beta2, p.train_trained.lr.peak, p.train_trained.lr.warmup, p.train_trained.weight_decay, p.train_trained.clip_norm,
            p.train_masked.lr.peak, p.train_masked.lr.warmup, p.train_masked.weight_decay, p.train_masked.clip_norm, p.train_masked.label_smoothing,
            p.beam.beam, p.beam.len_penalty, p.beam.max_len_a, p.beam.max_len_b,
            checkpoint_words(p.train_trained.checkpoint), checkpoint_words(p.train_masked.checkpoint)
        ));
        for d in descriptions {
            t.note(format!("Data: {d}"));
        }
        if paper_setting {
            t.note("The paper column: the paper's number for the row that runs its setting (shape, data, training length, checkpoint choice).");
        } else {
            t.note("The rows here are small models on small corpora trained for minutes; the paper's numbers (full IWSLT14 / WMT14, wide models, 55-100 epochs, GPUs) are not set beside them. Compare the ratio to the trained baseline (`% of trained`), not the BLEU; the paper's numbers and what differs are in the `paper_reference` table when a row names one.");
        }
        if p.data == "synthetic" {
            t.note(
                "SYNTHETIC: checks the machinery end to end; says nothing about the paper's claim.",
            );
        }
        rec.table("table", t);
        if !reference.rows.is_empty() {
            reference.note("The paper's rows are the `paper` / `paper-wmt14` profiles' rows that cite these numbers; `paper % of trained` divides the paper's number by its trained baseline's (IWSLT14: ~34.8 implied by the paper's 98%; WMT14: 27.4), `kiln % of trained` the kiln row's by the trained row's of the same corpus and width or, where the run has no trained row of that width, of width ×1 (the cell says which; tokenized BLEU where there is one, else sacreBLEU). The paper's masked headline is its wide model against a trained Transformer of half its width, so its ratio is not a same-width ratio.");
            reference.note("Training pairs: kiln's after the length filter; the paper's as commonly given for fairseq's prepared corpora (approximate). Training: kiln's updates actually run (last seed) and tokens per update, the paper's epochs and tokens per update.");
            rec.table("paper_reference", reference);
        }
        rec.setting("rows", &all_rows);
        Ok(rec)
    }

    fn benches(&self) -> &'static [kiln_experiment::Bench] {
        &[("lottery", crate::bench::lottery)]
    }
}

/// The paper's setting behind one of its numbers: the row of a `data = "paper"` profile that
/// cites it (shape, training length) and that corpus's size from `[paper.train_pairs]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PaperSetting {
    pub corpus: String,
    pub row: String,
    pub d: usize,
    pub ffn: usize,
    pub heads: usize,
    pub epochs: usize,
    pub max_tokens: usize,
    pub train_pairs: Option<f64>,
    /// The paper's number for the trained row of the same profile and corpus.
    pub trained: Option<f64>,
}

/// The setting of the paper's number `key` (see [`PaperSetting`]); `None` when no paper profile
/// cites it.
pub fn paper_setting_of(file: &ExperimentFile<Profile>, key: &str) -> Option<PaperSetting> {
    file.profiles
        .values()
        .filter(|p| p.data == "paper")
        .find_map(|p| {
            p.rows.iter().find_map(|r| {
                let (corpus, _) = r.paper.iter().find(|(_, k)| k.as_str() == key)?;
                let tc = match r.kind {
                    RowKind::Trained => &p.train_trained,
                    RowKind::Masked => &p.train_masked,
                };
                let trained = p
                    .rows
                    .iter()
                    .filter(|b| b.kind == RowKind::Trained && b.width == 1)
                    .find_map(|b| b.paper.get(corpus))
                    .and_then(|k| file.paper.get(k));
                Some(PaperSetting {
                    corpus: corpus.clone(),
                    row: r.label.clone(),
                    d: p.shape.d_model * r.width,
                    ffn: p.shape.ffn * r.width,
                    heads: r.heads.unwrap_or(p.shape.heads),
                    epochs: tc.max_epochs,
                    max_tokens: tc.max_tokens,
                    train_pairs: file.paper.get(&format!("train_pairs.{corpus}")),
                    trained,
                })
            })
        })
}

/// 160000 → `160k`, 4500000 → `4.5M`.
fn si(n: f64) -> String {
    let (v, unit) = if n >= 1e6 {
        (n / 1e6, "M")
    } else if n >= 1e3 {
        (n / 1e3, "k")
    } else {
        (n, "")
    };
    let s = format!("{v:.1}");
    format!("{}{unit}", s.trim_end_matches(".0"))
}

fn lines(v: &[String]) -> Vec<u8> {
    let mut s = v.join("\n");
    s.push('\n');
    s.into_bytes()
}

fn load_corpus(cs: &CorpusSettings, p: &Profile, ctx: &RunContext) -> Result<Corpus> {
    Ok(match cs.kind.as_str() {
        "synthetic" => {
            let [n, m, v]: [usize; 3] = cs.synthetic.clone().try_into().map_err(|_| {
                anyhow::anyhow!("experiments/{NAME}.toml: synthetic = [train, test, vocab]")
            })?;
            data::synthetic(n, m, v, ctx.seed)
        }
        "multi30k" => {
            let f = ctx.resolver.file("multi30k/raw/train.de.gz")?;
            let dir = f.path.parent().context("multi30k folder")?.to_path_buf();
            data::multi30k(&dir, cs.bpe_merges, cs.max_train, p.max_len, cs.threshold)?
        }
        "iwslt14-mini" => {
            let f = ctx.resolver.file("iwslt14/train_samples/first.de")?;
            let dir = f
                .path
                .parent()
                .and_then(|x| x.parent())
                .context("iwslt14 folder")?
                .to_path_buf();
            data::iwslt14_mini(&dir, p.max_len, cs.threshold)?
        }
        _ => {
            let dir = ctx
                .args
                .data_dir
                .clone()
                .context("--data-dir")?
                .join(cs.folder.clone().unwrap_or_default());
            let text = if cs.tokenized {
                Text::MosesTokenized
            } else {
                Text::Raw
            };
            let mut c = data::prepared(
                &dir,
                &cs.label(),
                cs.src.as_deref().unwrap_or("de"),
                cs.tgt.as_deref().unwrap_or("en"),
                text,
                p.max_len,
                data::DictOptions {
                    threshold: cs.threshold,
                    joined: cs.joined_dictionary,
                },
            )?;
            if cs.max_train > 0 {
                c.train.truncate(cs.max_train);
            }
            c
        }
    })
}

fn row_lottery(r: &RowSettings) -> LotteryConfig {
    let d = LotteryConfig::default();
    LotteryConfig {
        keep: r.keep.unwrap_or(d.keep),
        init: r.init.unwrap_or(d.init),
        share: r.share.unwrap_or(d.share),
        ..d
    }
}

struct RowOut {
    hyps: Vec<String>,
    train_seconds: f64,
    decode_seconds: f64,
    updates: usize,
    stored: String,
    /// Which checkpoint was scored.
    checkpoint: String,
    /// Training loss per epoch (fairseq's: base 2, per target token, label-smoothed).
    curve: Vec<f64>,
}

fn run_row(
    r: &RowSettings,
    p: &Profile,
    corpus: &Corpus,
    seed: u64,
    trained_embeddings: &mut TrainedEmbeddings,
    ctx: &RunContext,
) -> Result<RowOut> {
    let s = &p.shape;
    let mut cfg = Seq2SeqConfig::iwslt_de_en(corpus.src_dict.len(), corpus.tgt_dict.len());
    cfg.d_model = s.d_model * r.width;
    cfg.ffn = s.ffn * r.width;
    cfg.heads = s.heads;
    cfg.encoder_layers = s.layers;
    cfg.decoder_layers = s.layers;
    cfg.dropout = s.dropout;
    cfg.attention_dropout = s.attention_dropout;
    if let Some(h) = r.heads {
        cfg.heads = h;
    }
    if let Some(a) = r.attention_dropout {
        cfg.attention_dropout = a;
    }
    // `validate` has checked the row kind and the corpus settings; this checks the dictionaries
    // the corpus actually built.
    if r.share_all_embeddings {
        if corpus.src_dict != corpus.tgt_dict {
            bail!("row `{}`: share_all_embeddings needs one joined dictionary, but corpus `{}` has separate source and target dictionaries (set `joined_dictionary = true` on the corpus)", r.label, corpus.name);
        }
        cfg.share_all_embeddings = true;
    }
    let beam = BeamConfig {
        beam: p.beam.beam,
        len_penalty: p.beam.len_penalty,
        max_len_a: p.beam.max_len_a,
        max_len_b: p.beam.max_len_b,
        min_len: 1,
    };
    let label = format!("{} {} s{seed}", corpus.name, r.label);
    ctx.device.seed(seed);
    let (model, train_seconds, updates, stored, checkpoint, curve) = match r.kind {
        RowKind::Trained => {
            let m = Seq2Seq::dense(&cfg, seed, &ctx.device)?;
            let params = m.num_params();
            let out = fit(m, corpus, &p.train_trained, seed, &label, ctx, |m| {
                valid_bleu(m, corpus, p, ctx)
            })?;
            let to_host = |t: &kiln_models::seq2seq::DenseTable| -> Vec<f32> {
                t.table()
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap_or_default()
            };
            trained_embeddings.insert(
                (r.width, seed),
                (
                    to_host(&out.model.encoder.embed),
                    to_host(out.model.target_table()),
                ),
            );
            let chosen = chosen(&out, &p.train_trained);
            let curve = out.curve.iter().map(|c| c.loss).collect();
            (
                out.model,
                out.seconds,
                out.updates,
                format!("{:.2} M floats", params as f64 / 1e6),
                chosen,
                curve,
            )
        }
        RowKind::Masked => {
            let emb = match r.embeddings {
                EmbeddingSource::Random => Embeddings::RandomMasked,
                e => {
                    let (enc, dec) = trained_embeddings.get(&(r.width, seed)).cloned().with_context(|| format!("row `{}` needs the trained baseline of width ×{} and seed {seed} to run first (put it earlier in `rows`)", r.label, r.width))?;
                    Embeddings::Fixed {
                        encoder: enc,
                        decoder: dec,
                        masked: e == EmbeddingSource::Trained,
                    }
                }
            };
            let m = build(
                &masked_shape(cfg.clone()),
                &row_lottery(r),
                &emb,
                seed,
                &ctx.device,
            )?;
            let (weights, scores) = counts(&m);
            let fixed = if matches!(emb, Embeddings::Fixed { .. }) {
                format!(
                    " + {:.2} M fixed embedding floats",
                    ((corpus.src_dict.len() + corpus.tgt_dict.len()) * cfg.d_model) as f64 / 1e6
                )
            } else {
                String::new()
            };
            let out = fit(m, corpus, &p.train_masked, seed, &label, ctx, |m| {
                valid_bleu(&materialize(m), corpus, p, ctx)
            })?;
            let stored = format!(
                "seed + {:.2} M bits ({:.2} M random weights){fixed}",
                scores as f64 / 1e6,
                weights as f64 / 1e6
            );
            let chosen = chosen(&out, &p.train_masked);
            let curve = out.curve.iter().map(|c| c.loss).collect();
            (
                materialize(&out.model),
                out.seconds,
                out.updates,
                stored,
                chosen,
                curve,
            )
        }
    };
    let t0 = std::time::Instant::now();
    let bar = progress::bar(corpus.test_src.len() as u64, &format!("{label} decode"));
    let ids = translate(
        &model,
        &corpus.test_src,
        &beam,
        p.beam.batch,
        &ctx.device,
        |d, _| bar.set_position(d as u64),
    );
    bar.finish_and_clear();
    Ok(RowOut {
        hyps: ids.iter().map(|h| corpus.hyp_text(h)).collect(),
        train_seconds,
        decode_seconds: t0.elapsed().as_secs_f64(),
        updates,
        stored,
        checkpoint,
        curve,
    })
}

fn checkpoint_words(c: Checkpoint) -> String {
    match c {
        Checkpoint::Last => "the last (the paper picks IWSLT14's best by validation sacreBLEU and averages WMT14's last 10; no validation decoding fits this profile's budget)".into(),
        Checkpoint::BestValid => "the epoch checkpoint with the best validation sacreBLEU (as the paper's IWSLT14 runs)".into(),
        Checkpoint::AverageLast(n) => format!("the average of the last {n} epoch checkpoints (as the paper's WMT14 runs)"),
    }
}

/// What checkpoint a row scores, in words for the log and the run record.
fn chosen<P: kiln_models::seq2seq::Projection, T: TokenTable>(
    out: &crate::train::Trained<P, T>,
    tc: &TrainConfig,
) -> String {
    match tc.checkpoint {
        Checkpoint::Last => format!("last (update {})", out.updates),
        Checkpoint::BestValid => {
            let best = out
                .valid_scores
                .iter()
                .find(|(u, _)| *u == out.chosen_update)
                .map_or(f64::NAN, |x| x.1);
            format!(
                "best valid sacreBLEU {best:.2} at update {} of {} (scores {:?})",
                out.chosen_update,
                out.updates,
                out.valid_scores
                    .iter()
                    .map(|(u, b)| format!("{u}: {b:.2}"))
                    .collect::<Vec<_>>()
            )
        }
        Checkpoint::AverageLast(n) => {
            format!(
                "mean of the last {n} epoch checkpoints (up to update {})",
                out.updates
            )
        }
    }
}

/// sacreBLEU of `model`'s translations of the validation set (detokenised, as the reference's
/// `--eval-bleu-detok moses` does), the score `Checkpoint::BestValid` maximises.
fn valid_bleu<P: kiln_models::seq2seq::Projection, T: TokenTable>(
    model: &Seq2Seq<P, T>,
    corpus: &Corpus,
    p: &Profile,
    ctx: &RunContext,
) -> f64 {
    let beam = BeamConfig {
        beam: p.beam.beam,
        len_penalty: p.beam.len_penalty,
        max_len_a: p.beam.valid_max_len_a,
        max_len_b: p.beam.valid_max_len_b,
        min_len: 1,
    };
    let ids = translate(
        model,
        &corpus.valid_src,
        &beam,
        p.beam.batch,
        &ctx.device,
        |_, _| {},
    );
    let hyps: Vec<String> = ids
        .iter()
        .map(|h| corpus.detok(&corpus.hyp_text(h)))
        .collect();
    let refs: Vec<String> = corpus.valid_ref.iter().map(|r| corpus.detok(r)).collect();
    corpus_bleu(&hyps, &[&refs]).map_or(f64::NAN, |b| b.score)
}

fn fit<P: kiln_models::seq2seq::Projection, T: TokenTable>(
    m: Seq2Seq<P, T>,
    corpus: &Corpus,
    tc: &TrainConfig,
    seed: u64,
    label: &str,
    ctx: &RunContext,
    mut score: impl FnMut(&Seq2Seq<P, T>) -> f64,
) -> Result<crate::train::Trained<P, T>> {
    let bar = progress::bar(0, label);
    let mut scored = |m: &Seq2Seq<P, T>| {
        bar.set_message("validating");
        let s = score(m);
        bar.println(format!("{label}: valid sacreBLEU {s:.2}"));
        s
    };
    let validate: Option<Validate<'_, P, T>> = if tc.checkpoint == Checkpoint::BestValid {
        if corpus.valid_src.is_empty() {
            bail!("{label}: checkpoint = \"best_valid\" but corpus `{}` has no validation split (prepared corpora: add valid.<src>/valid.<tgt>; or set checkpoint = \"last\")", corpus.name);
        }
        Some(&mut scored)
    } else {
        None
    };
    let out = train(
        m,
        &corpus.train,
        tc,
        seed,
        &ctx.device,
        validate,
        |u, total, l| {
            bar.set_length(total as u64);
            bar.set_position(u as u64);
            bar.set_message(format!("loss {l:.3}"));
        },
    )
    .with_context(|| format!("training {label}"))?;
    bar.finish_and_clear();
    Ok(out)
}
