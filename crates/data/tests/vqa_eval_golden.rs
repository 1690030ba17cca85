//! kiln's VQA accuracy against the official evaluation code's scores
//! (`reference/vqa-eval/vqa-eval-golden.json`: 22 questions scored by `vqaEval.py` @ a013f00),
//! per question, per answer type and overall, to the second decimal.

use std::collections::BTreeMap;

use kiln_data::vqa_eval::{percent2, vqa_accuracy};

#[test]
fn vqa_accuracy_matches_the_official_evaluation() {
    let Some(root) = kiln_core::paths::shared_data() else {
        kiln_core::paths::skip("shared data (reference/vqa-eval)");
        return;
    };
    let path = root.join("reference/vqa-eval/vqa-eval-golden.json");
    if !path.exists() {
        kiln_core::paths::skip("reference/vqa-eval/vqa-eval-golden.json");
        return;
    }
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let qs = g["questions"].as_array().unwrap();
    assert_eq!(qs.len(), 22);
    let mut all = Vec::new();
    let mut by_type: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for q in qs {
        let answers: Vec<String> = q["gt_answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let pred = q["prediction"].as_str().unwrap();
        let acc = vqa_accuracy(pred, &answers);
        let want = q["accuracy"].as_f64().unwrap();
        assert!(
            (percent2(acc) - want).abs() < 1e-9,
            "question {}: `{pred}` vs {answers:?}: {} vs official {want}",
            q["question_id"],
            percent2(acc)
        );
        all.push(acc);
        by_type
            .entry(q["answer_type"].as_str().unwrap().to_string())
            .or_default()
            .push(acc);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!((percent2(mean(&all)) - g["overall"].as_f64().unwrap()).abs() < 1e-9);
    for (t, v) in &by_type {
        let want = g["per_answer_type"][t].as_f64().unwrap();
        assert!(
            (percent2(mean(v)) - want).abs() < 1e-9,
            "{t}: {} vs {want}",
            percent2(mean(v))
        );
    }
}

#[test]
fn three_matching_annotators_give_ninety_and_identical_answers_skip_normalisation() {
    let ten = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let three = ten(&[
        "no", "no", "no", "yes", "yes", "yes", "yes", "yes", "yes", "yes",
    ]);
    assert!((vqa_accuracy("no", &three) - 0.9).abs() < 1e-12);
    let same = ten(&["yes"; 10]);
    assert_eq!(vqa_accuracy("Yes", &same), 0.0);
    assert_eq!(vqa_accuracy("yes", &same), 1.0);
    let mixed = ten(&["two", "2", "2", "2", "2", "2", "2", "2", "2", "2"]);
    assert_eq!(vqa_accuracy("Two", &mixed), 1.0);
}
