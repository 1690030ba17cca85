//! The paper profiles' path (a fairseq-prepared corpus under --data-dir, a joined dictionary,
//! a German target, checkpoint selection by validation BLEU and by averaging) end to end on a
//! miniature corpus written by the test, at toy sizes: the paper profiles themselves need GPUs.

use std::path::Path;

use kiln_experiment::{ExperimentFile, Paper, RunArgs, RunContext};
use kiln_lottery::experiment::{OneLayerLottery, Profile};
use serde_json::json;

const EN: [&str; 8] = ["the", "cat", "dog", "sees", "a", "red", "house", "it"];
const DE: [&str; 8] = [
    "die", "katze", "hund", "sieht", "ein", "rotes", "haus", "es",
];

fn write(dir: &Path, split: &str, n: usize, offset: usize) {
    let (mut en, mut de) = (String::new(), String::new());
    for i in 0..n {
        let w: Vec<usize> = (0..3 + (i + offset) % 4)
            .map(|j| (i * 3 + j * 5 + offset) % 8)
            .collect();
        let e: Vec<&str> = w.iter().map(|&k| EN[k]).collect();
        let d: Vec<&str> = w.iter().map(|&k| DE[k]).collect();
        // A Moses-tokenised apostrophe, which German and English detokenisation treat apart.
        en.push_str(&format!("{} &apos;s\n", e.join(" ")));
        de.push_str(&format!("{} &apos;s\n", d.join(" ")));
    }
    std::fs::write(dir.join(format!("{split}.en")), en).unwrap();
    std::fs::write(dir.join(format!("{split}.de")), de).unwrap();
}

fn profile() -> Profile {
    let train = |checkpoint: serde_json::Value| {
        json!({"beta2": 0.98, "weight_decay": 0.0, "clip_norm": 0.0, "label_smoothing": 0.1,
               "max_tokens": 200, "max_updates": 1000, "max_epochs": 3,
               "lr": {"peak": 0.003, "warmup": 5, "init": 1e-7}, "checkpoint": checkpoint})
    };
    serde_json::from_value(json!({
        "description": "miniature paper path",
        "data": "paper",
        "max_len": 64,
        "seeds": [1],
        "corpora": [{"kind": "prepared", "name": "wmt14", "folder": "wmt14_en_de", "src": "en",
                     "tgt": "de", "tokenized": true, "joined_dictionary": true}],
        "shape": {"d_model": 16, "ffn": 32, "heads": 2, "layers": 2, "dropout": 0.0},
        "train_trained": train(json!({"average_last": 2})),
        "train_masked": train(json!("best_valid")),
        "beam": {"beam": 2, "len_penalty": 1.0, "max_len_a": 0.0, "max_len_b": 20, "batch": 4},
        "rows": [
            {"label": "trained base", "kind": "trained", "group": "baseline",
             "share_all_embeddings": true, "paper": {"wmt14": "wmt14_trained_base_implied"}},
            {"label": "masked wider", "kind": "masked", "width": 2, "heads": 4,
             "attention_dropout": 0.1, "paper": {"wmt14": "wmt14_masked"}},
            {"label": "masked, fixed trained embeddings", "kind": "masked",
             "embeddings": "trained"}
        ]
    }))
    .unwrap()
}

#[test]
fn the_paper_path_runs_end_to_end_on_a_miniature_prepared_corpus() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("wmt14_en_de");
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir, "train", 60, 0);
    write(&dir, "valid", 6, 1);
    write(&dir, "test", 5, 2);
    let p = profile();
    OneLayerLottery.validate(&p).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut args = RunArgs::new("paper", out.path(), out.path());
    args.data_dir = Some(data.path().to_path_buf());
    OneLayerLottery.inputs("paper", &p, &args).unwrap();
    let ctx = RunContext::new("one-layer-lottery", "paper", "test", &args).unwrap();
    let file = ExperimentFile {
        name: "one-layer-lottery".into(),
        title: "miniature".into(),
        reference: "test".into(),
        paper: kiln_experiment::file::PaperNumbers(
            [
                ("wmt14_masked".to_string(), json!(17.29)),
                ("wmt14_trained_base_implied".to_string(), json!(27.4)),
            ]
            .into_iter()
            .collect(),
        ),
        profiles: [("paper".to_string(), p.clone())].into_iter().collect(),
    };
    let rec = OneLayerLottery.run(&ctx, &file, &p).unwrap();
    let out_dir = rec.finish(&ctx).unwrap();
    // Both BLEU columns of the 3 rows cite every seed's translations, and recompute from them:
    // sacreBLEU (`bleu:`) and fairseq's tokenized BLEU (`tokbleu:`) as the run computed them.
    let checks = kiln_experiment::verify::check_run(&out_dir).unwrap();
    assert!(checks.failures.is_empty(), "{:?}", checks.failures);
    assert_eq!((checks.agreed, checks.unsourced), (6, 0));
    let listed = std::fs::read_to_string(out_dir.join("checks.json")).unwrap();
    assert!(
        listed.contains("tokbleu:translations/wmt14/ref.tok.txt")
            && listed.contains("translations/wmt14/masked-wider_s1.tok.txt"),
        "{listed}"
    );
    // A paper profile runs the paper's setting: its numbers stay beside the rows, no separate
    // reference table.
    assert!(!out_dir.join("paper_reference.md").exists());
    let table = std::fs::read_to_string(out_dir.join("table.md")).unwrap();
    for want in [
        "trained base",
        "masked wider",
        "32/64/4h",
        "masked, fixed trained embeddings",
        "17.29",
        "27.40",
        "valid 6 pairs",
        "the average of the last 2 epoch checkpoints",
        "best validation sacreBLEU",
    ] {
        assert!(table.contains(want), "missing `{want}`:\n{table}");
    }
    // The joined dictionary: 8 English + 8 German words + `&apos;s` + 4 specials = 21,
    // padded to 24 on both sides (separate dictionaries would hold 13, padded to 16).
    assert!(
        table.contains("Dictionaries 24 (source) / 24 (target)"),
        "{table}"
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    let rows = run.to_string();
    assert!(rows.contains("best valid sacreBLEU"), "{rows}");
    assert!(
        rows.contains("mean of the last 2 epoch checkpoints"),
        "{rows}"
    );
    // References detokenised with German rules (the target language), hypotheses written.
    let tr = out_dir.join("translations/wmt14");
    let refs = std::fs::read_to_string(tr.join("ref.detok.txt")).unwrap();
    let first_ref = std::fs::read_to_string(tr.join("ref.tok.txt")).unwrap();
    let first_ref = first_ref.lines().next().unwrap().to_string();
    let de = kiln_data::detok::detokenize_line(&first_ref, kiln_data::detok::Lang::De);
    let en = kiln_data::detok::detokenize_line(&first_ref, kiln_data::detok::Lang::En);
    assert_ne!(de, en, "the fixture must tell the two languages apart");
    assert_eq!(refs.lines().next().unwrap(), de);
    assert_eq!(
        std::fs::read_to_string(tr.join("masked-wider_s1.tok.txt"))
            .unwrap()
            .lines()
            .count(),
        5
    );
    // The same rows as a small profile (not the paper's setting): no paper column; the paper's
    // numbers go to `paper_reference`, with the paper profile's width, data and training beside
    // this run's.
    let mut small = p.clone();
    small.data = "real".into();
    small.rows.truncate(2);
    let mut file = file;
    file.paper
        .0
        .insert("train_pairs".into(), json!({"wmt14": 4500000}));
    let args_small = {
        let mut a = RunArgs::new("small", out.path(), out.path());
        a.data_dir = args.data_dir.clone();
        a
    };
    let ctx = RunContext::new("one-layer-lottery", "small", "test", &args_small).unwrap();
    let out_dir = OneLayerLottery
        .run(&ctx, &file, &small)
        .unwrap()
        .finish(&ctx)
        .unwrap();
    let table = std::fs::read_to_string(out_dir.join("table.md")).unwrap();
    assert!(
        !table.contains("17.29") && !table.contains("| paper |"),
        "{table}"
    );
    let reference = std::fs::read_to_string(out_dir.join("paper_reference.md")).unwrap();
    for want in [
        "| wmt14 · masked wider | 17.29 | 63 | wmt14 · masked wider |",
        "d 32 / ffn 64 / 4 heads vs d 32 / ffn 64 / 4 heads",
        "60 vs ≈4.5M",
        "tokens vs 3 epochs of ≤200 tokens",
        "| wmt14 · trained base | 27.40 | — |",
    ] {
        assert!(reference.contains(want), "missing `{want}`:\n{reference}");
    }
    // Without the valid split, best_valid cannot select: said before anything trains.
    std::fs::remove_file(dir.join("valid.en")).unwrap();
    let e = OneLayerLottery.inputs("paper", &p, &args).unwrap_err();
    assert!(e.contains("valid.en"), "{e}");
}
