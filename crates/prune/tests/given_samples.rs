//! Sample sets given as training indices (another implementation's draws): the batches hold
//! exactly those examples in that order, equal to the seeded draw when given the same indices,
//! and a bad index is an error naming it.

use kiln_data::synthetic::{generate, vocabulary, SyntheticTask};
use kiln_data::TextTokenizer;
use kiln_prune::{batches_at, sample_batches, sample_indices};

#[test]
fn given_indices_make_the_same_batches_as_the_draw_they_came_from() {
    let tok = TextTokenizer::word_level(&vocabulary(), 32).unwrap();
    let ex = generate(SyntheticTask::Sentiment, 50, 3);
    let enc: Vec<_> = ex
        .iter()
        .map(|e| tok.encode(&e.text_a, None).unwrap())
        .collect();
    let mut labels: Vec<_> = ex.iter().map(|e| e.label).collect();
    let drawn = sample_batches(&enc, &labels, 40, 16, 0, 7).unwrap();
    let picks = sample_indices(&(0..enc.len()).collect::<Vec<_>>(), 40, 7);
    let given = batches_at(&enc, &labels, &picks, 16, 0).unwrap();
    assert_eq!(given.len(), 3, "40 samples in batches of 16");
    for (a, b) in drawn.iter().zip(&given) {
        assert_eq!(a.index, b.index, "same examples, same order");
        assert_eq!((&a.ids, &a.mask, &a.labels), (&b.ids, &b.mask, &b.labels));
    }
    // Repeats are kept (the official draw is with replacement) and order is the given one.
    let picks = [3, 3, 0];
    let b = &batches_at(&enc, &labels, &picks, 8, 0).unwrap()[0];
    assert_eq!(b.index, vec![3, 3, 0]);
    // Out of range, unlabelled, or empty: errors that say what is wrong.
    let e = batches_at(&enc, &labels, &[1, 50], 8, 0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sample index 50") && e.contains("there are 50"),
        "{e}"
    );
    labels[2] = None;
    let e = batches_at(&enc, &labels, &[2], 8, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sample index 2"), "{e}");
    assert!(batches_at(&enc, &labels, &[], 8, 0).is_err());
}
