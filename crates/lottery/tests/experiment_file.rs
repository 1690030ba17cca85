//! Every profile of experiments/one-layer-lottery.toml parses into the typed settings and
//! passes the experiment's own validation (the ablation and paper profiles are not run by the
//! tests, so this is what keeps them from rotting).

use kiln_experiment::Paper;
use kiln_lottery::experiment::{OneLayerLottery, Profile};

#[test]
fn every_profile_parses_and_validates() {
    let file = kiln_experiment::file::load::<Profile>("one-layer-lottery").unwrap();
    for name in [
        "smoke",
        "mini",
        "mini-ablations",
        "mini-iwslt-long",
        "mini-iwslt-budget",
        "paper",
        "paper-wmt14",
    ] {
        let p = file
            .profiles
            .get(name)
            .unwrap_or_else(|| panic!("profile {name} missing"));
        OneLayerLottery
            .validate(p)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The ablations cover what the spec lists: k, width, init, sharing, fixed embeddings.
    let abl = &file.profiles["mini-ablations"];
    assert!(abl.rows.iter().any(|r| r.keep == Some(0.3)));
    assert!(abl.rows.iter().any(|r| r.width == 2));
    assert!(abl.rows.iter().any(|r| r.init.is_some()));
    assert!(abl.rows.iter().any(|r| r.share.is_some()));
    assert!(abl
        .rows
        .iter()
        .any(|r| r.embeddings != kiln_lottery::experiment::EmbeddingSource::Random));
    // The paper profiles choose checkpoints as the paper's recipes do (spec §6-7).
    use kiln_lottery::Checkpoint;
    let iwslt = &file.profiles["paper"];
    assert_eq!(iwslt.train_masked.checkpoint, Checkpoint::BestValid);
    assert_eq!(iwslt.train_trained.checkpoint, Checkpoint::BestValid);
    let wmt = &file.profiles["paper-wmt14"];
    assert_eq!(wmt.train_masked.checkpoint, Checkpoint::AverageLast(10));
    assert_eq!(wmt.train_masked.lr.peak, 1e-3);
    assert_eq!(wmt.train_masked.max_epochs, 100);
    let wider = wmt
        .rows
        .iter()
        .find(|r| r.heads == Some(24))
        .expect("the 1536-wide WMT row");
    assert_eq!(wmt.shape.d_model * wider.width, 1536);
    assert_eq!(wmt.shape.ffn * wider.width, 6144);
    assert!(wmt.corpora[0].joined_dictionary);
    // The trained WMT14 baseline ties all three tables over the joined dictionary (fairseq's
    // recipe); a masked row, or a corpus with separate dictionaries, cannot.
    let trained = wmt
        .rows
        .iter()
        .find(|r| r.kind == kiln_lottery::experiment::RowKind::Trained)
        .expect("the trained WMT row");
    assert!(trained.share_all_embeddings);
    assert!(wmt
        .rows
        .iter()
        .all(|r| r.kind == kiln_lottery::experiment::RowKind::Trained || !r.share_all_embeddings));
    let mut bad = wmt.clone();
    bad.rows[1].share_all_embeddings = true;
    let e = OneLayerLottery.validate(&bad).unwrap_err().to_string();
    assert!(e.contains("for trained rows"), "{e}");
    let mut bad = file.profiles["mini"].clone();
    bad.rows[0].share_all_embeddings = true;
    let e = OneLayerLottery.validate(&bad).unwrap_err().to_string();
    assert!(e.contains("joined") && e.contains("multi30k"), "{e}");
    assert_eq!(
        file.profiles["mini"].train_masked.checkpoint,
        Checkpoint::Last
    );
}

/// Every paper number a small profile cites resolves to the paper profile's row behind it, so
/// the `paper_reference` table can say what differs (width, data size, training length).
#[test]
fn cited_paper_numbers_resolve_to_the_paper_setting() {
    use kiln_lottery::experiment::paper_setting_of;
    let file = kiln_experiment::file::load::<Profile>("one-layer-lottery").unwrap();
    let mut cited = 0;
    for (name, p) in file.profiles.iter().filter(|(_, p)| p.data != "paper") {
        for k in p.rows.iter().flat_map(|r| r.paper.values()) {
            let s = paper_setting_of(&file, k).unwrap_or_else(|| panic!("{name}: `{k}`"));
            assert!(s.train_pairs.is_some(), "{name}: `{k}`: {s:?}");
            cited += 1;
        }
    }
    assert!(cited > 0);
    let s = paper_setting_of(&file, "iwslt14_masked").unwrap();
    assert_eq!(
        (s.corpus.as_str(), s.d, s.ffn, s.epochs, s.max_tokens),
        ("iwslt14", 1024, 2048, 55, 4096)
    );
    assert_eq!((s.trained, s.train_pairs), (Some(34.8), Some(160000.0)));
    let w = paper_setting_of(&file, "wmt14_masked").unwrap();
    assert_eq!(
        (w.d, w.heads, w.epochs, w.trained),
        (1536, 24, 100, Some(27.4))
    );
    assert!(paper_setting_of(&file, "nope").is_none());
}

/// Rows write their translations to files named after their labels: two labels that name the
/// same file on one corpus are refused before anything trains.
#[test]
fn rows_whose_translation_files_would_collide_are_refused() {
    let file = kiln_experiment::file::load::<Profile>("one-layer-lottery").unwrap();
    let mut p = file.profiles["smoke"].clone();
    p.rows[1].label = "Trained  Transformer!".into();
    let e = OneLayerLottery.validate(&p).unwrap_err().to_string();
    assert!(
        e.contains("share the file name `trained-transformer`"),
        "{e}"
    );
    // The same label on different corpora is fine (files are per corpus): the mini profile.
    OneLayerLottery.validate(&file.profiles["mini"]).unwrap();
}
