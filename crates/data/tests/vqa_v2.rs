//! The official VQA v2 readers on small synthetic files in the official format: parsing,
//! joining, errors naming the file, the BUTD answer table, soft targets (spec clip-vil.md
//! §6.2 and property 8.2) and the results file.

use std::path::{Path, PathBuf};

use kiln_data::vqa_eval::vqa_accuracy;
use kiln_data::vqa_v2::{
    answer_counts, coco_image_name, join, label_accuracy, preprocess_answer, questions_only,
    read_annotations, read_questions, read_results, read_split, soft_target, soft_targets,
    write_results, AnswerTable, AnswerType, BUTD_MIN_COUNT,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

fn answers_json(answers: &[&str]) -> Value {
    Value::Array(
        answers
            .iter()
            .enumerate()
            .map(|(i, a)| json!({"answer": a, "answer_confidence": "yes", "answer_id": i + 1}))
            .collect(),
    )
}

fn questions_file() -> Value {
    json!({
        "info": {"description": "synthetic"},
        "task_type": "Open-Ended",
        "data_type": "mscoco",
        "data_subtype": "val2014",
        "license": {"name": "CC"},
        "questions": [
            {"image_id": 42, "question": "Is the man wearing a hat?", "question_id": 42000},
            {"image_id": 42, "question": "How many dogs are there?", "question_id": 42001},
            {"image_id": 7, "question": "What color is the bus?", "question_id": 7000},
        ]
    })
}

fn annotations_file() -> Value {
    json!({
        "info": {}, "license": {}, "data_subtype": "val2014", "data_type": "mscoco",
        "annotations": [
            // Deliberately not in question order.
            {"question_id": 7000, "image_id": 7, "question_type": "what color is the",
             "answer_type": "other", "multiple_choice_answer": "red",
             "answers": answers_json(&["red", "red", "red", "dark red", "maroon", "red and white",
                                       "red", "orange", "Red", "red."])},
            {"question_id": 42000, "image_id": 42, "question_type": "is the man",
             "answer_type": "yes/no", "multiple_choice_answer": "yes",
             "answers": answers_json(&["yes"; 10])},
            {"question_id": 42001, "image_id": 42, "question_type": "how many",
             "answer_type": "number", "multiple_choice_answer": "2",
             "answers": answers_json(&["2", "2", "two", "3", "3", "3", "4", "1", "2 dogs", "0"])},
        ]
    })
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn parses_official_questions_and_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let qp = write(
        dir.path(),
        "v2_OpenEnded_mscoco_val2014_questions.json",
        &questions_file(),
    );
    let ap = write(
        dir.path(),
        "v2_mscoco_val2014_annotations.json",
        &annotations_file(),
    );

    let qs = read_questions(&qp).unwrap();
    assert_eq!(qs.len(), 3);
    assert_eq!(qs[1].question, "How many dogs are there?");
    assert_eq!((qs[1].image_id, qs[1].question_id), (42, 42001));

    let anns = read_annotations(&ap).unwrap();
    assert_eq!(anns.len(), 3);
    let types: Vec<AnswerType> = anns.iter().map(|a| a.answer_type).collect();
    assert_eq!(
        types,
        [AnswerType::Other, AnswerType::YesNo, AnswerType::Number]
    );
    assert_eq!(AnswerType::YesNo.as_str(), "yes/no");
    assert_eq!(anns[0].answers.len(), 10);
    assert_eq!(anns[0].answers[8].answer, "Red");
    assert_eq!(anns[0].answers[8].answer_id, 9);
    assert_eq!(anns[0].answers[8].answer_confidence, "yes");
    assert_eq!(anns[2].multiple_choice_answer, "2");
    assert_eq!(anns[2].question_type, "how many");
}

#[test]
fn joins_by_question_id_in_question_order_and_supports_test_splits() {
    let dir = tempfile::tempdir().unwrap();
    let qp = write(dir.path(), "q.json", &questions_file());
    let ap = write(dir.path(), "a.json", &annotations_file());

    let joined = join(
        read_questions(&qp).unwrap(),
        read_annotations(&ap).unwrap(),
        &ap,
    )
    .unwrap();
    let ids: Vec<u64> = joined.iter().map(|e| e.question.question_id).collect();
    assert_eq!(ids, [42000, 42001, 7000]);
    for e in &joined {
        let a = e.annotation.as_ref().unwrap();
        assert_eq!(a.question_id, e.question.question_id);
        assert_eq!(a.image_id, e.question.image_id);
    }
    assert_eq!(read_split(&qp, Some(&ap)).unwrap(), joined);

    // A subset of the questions joins with the full annotations.
    let mut sub = read_questions(&qp).unwrap();
    sub.truncate(1);
    assert_eq!(
        join(sub, read_annotations(&ap).unwrap(), &ap)
            .unwrap()
            .len(),
        1
    );

    // Test splits: questions only.
    let only = read_split(&qp, None).unwrap();
    assert_eq!(only.len(), 3);
    assert!(only.iter().all(|e| e.annotation.is_none()));
    assert_eq!(questions_only(read_questions(&qp).unwrap()), only);
}

#[test]
fn missing_annotation_names_the_question_id_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let qp = write(dir.path(), "q.json", &questions_file());
    let mut a = annotations_file();
    a["annotations"].as_array_mut().unwrap().remove(2); // 42001
    let ap = write(dir.path(), "v2_mscoco_val2014_annotations.json", &a);
    let err = join(
        read_questions(&qp).unwrap(),
        read_annotations(&ap).unwrap(),
        &ap,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("42001"), "{err}");
    assert!(err.contains("v2_mscoco_val2014_annotations.json"), "{err}");

    // An annotation with another image id (files of different splits).
    let mut a = annotations_file();
    a["annotations"][0]["image_id"] = json!(8);
    let ap = write(dir.path(), "other.json", &a);
    let err = read_split(&qp, Some(&ap)).unwrap_err().to_string();
    assert!(err.contains("7000") && err.contains("other.json"), "{err}");
}

#[test]
fn malformed_files_are_named_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    // Truncated JSON.
    let bad = dir
        .path()
        .join("v2_OpenEnded_mscoco_train2014_questions.json");
    std::fs::write(&bad, r#"{"questions": [{"image_id": 1, "question": "Wh"#).unwrap();
    let err = read_questions(&bad).unwrap_err().to_string();
    assert!(
        err.contains("v2_OpenEnded_mscoco_train2014_questions.json"),
        "{err}"
    );
    assert!(err.contains("re-download"), "{err}");

    // Wrong file: annotations given to read_questions, and vice versa.
    let ap = write(dir.path(), "anns.json", &annotations_file());
    let err = read_questions(&ap).unwrap_err().to_string();
    assert!(
        err.contains("anns.json") && err.contains("missing field `questions`"),
        "{err}"
    );
    let qp = write(dir.path(), "qs.json", &questions_file());
    let err = read_annotations(&qp).unwrap_err().to_string();
    assert!(
        err.contains("qs.json") && err.contains("annotations"),
        "{err}"
    );

    // Mistyped field and unknown answer type.
    let mut a = annotations_file();
    a["annotations"][1]["answer_type"] = json!("colour");
    let p = write(dir.path(), "type.json", &a);
    let err = read_annotations(&p).unwrap_err().to_string();
    assert!(err.contains("type.json") && err.contains("colour"), "{err}");

    // Missing file.
    let err = read_annotations(&dir.path().join("nope.json"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope.json") && err.contains("visualqa.org"),
        "{err}"
    );

    // Duplicate question ids.
    let mut q = questions_file();
    q["questions"][2]["question_id"] = json!(42000);
    let p = write(dir.path(), "dup.json", &q);
    let err = read_questions(&p).unwrap_err().to_string();
    assert!(err.contains("dup.json") && err.contains("42000"), "{err}");
}

#[test]
fn coco_image_names() {
    assert_eq!(
        coco_image_name("train2014", 458752),
        "COCO_train2014_000000458752.jpg"
    );
    assert_eq!(
        coco_image_name("val2014", 42),
        "COCO_val2014_000000000042.jpg"
    );
    assert_eq!(
        coco_image_name("test2015", 1),
        "COCO_test2015_000000000001.jpg"
    );
}

#[test]
fn preprocessing_matches_the_butd_answer_normalisation() {
    for (raw, want) in [
        ("Two", "2"),
        ("a dog", "dog"),
        ("yes.", "yes"),
        ("dont", "don't"),
        ("3.5", "3.5"),
        ("10,000", "10000"),
        ("black/white", "black white"),
        ("  None\t", "0"),
    ] {
        assert_eq!(preprocess_answer(raw), want, "{raw:?}");
    }
}

fn annotation(qid: u64, mc: &str) -> kiln_data::vqa_v2::Annotation {
    kiln_data::vqa_v2::Annotation {
        question_id: qid,
        image_id: qid / 1000,
        question_type: "what".into(),
        answer_type: AnswerType::Other,
        multiple_choice_answer: mc.into(),
        answers: vec![],
    }
}

#[test]
fn answer_table_keeps_answers_of_at_least_min_count_by_count_then_alphabetically() {
    // Counts after normalisation: yes 4 ("Yes", "yes."), 2 3 ("two"), dog 3 ("a dog"),
    // cat 3, red 2, blue 1.
    let mcs = [
        "yes", "Yes", "yes.", "yes", "2", "two", "2", "a dog", "dog", "the dog", "cat", "cat",
        "cat", "red", "red", "blue",
    ];
    let anns: Vec<_> = mcs
        .iter()
        .enumerate()
        .map(|(i, m)| annotation(1000 * (i as u64 + 1), m))
        .collect();
    let counts = answer_counts(&anns);
    assert_eq!(
        counts,
        [
            ("yes".to_string(), 4),
            ("2".into(), 3),
            ("cat".into(), 3),
            ("dog".into(), 3),
            ("red".into(), 2),
            ("blue".into(), 1)
        ]
    );

    let t = AnswerTable::build(&anns, 3);
    assert_eq!(t.answers(), ["yes", "2", "cat", "dog"]);
    assert_eq!(t.label("cat"), Some(2));
    assert_eq!(t.answer(3), Some("dog"));
    assert_eq!(t.label("red"), None);
    assert_eq!(AnswerTable::build(&anns, 2).len(), 5);
    assert_eq!(AnswerTable::build(&anns, 5).len(), 0);
    // Train + val: counted together; a question id given twice counts once (BUTD's set).
    let val = vec![annotation(99_000, "red")];
    let both = AnswerTable::build(anns.iter().chain(&val), 3);
    assert_eq!(both.answers(), ["yes", "2", "cat", "dog", "red"]);
    let dup = AnswerTable::build(anns.iter().chain(&anns[13..15]), 3);
    assert_eq!(
        dup.len(),
        4,
        "red twice under the same question ids still counts 2"
    );
    assert_eq!(BUTD_MIN_COUNT, 9);
}

#[test]
fn label2ans_json_round_trip_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "trainval_label2ans.json",
        &json!(["yes", "no", "2", "red"]),
    );
    let t = AnswerTable::from_label2ans_json(&p).unwrap();
    assert_eq!(t.answers(), ["yes", "no", "2", "red"]);
    assert_eq!(t.label("2"), Some(2));

    let out = dir.path().join("saved_label2ans.json");
    t.write_label2ans_json(&out).unwrap();
    assert_eq!(
        AnswerTable::from_label2ans_json(&out).unwrap().answers(),
        t.answers()
    );

    let p = write(
        dir.path(),
        "dup_label2ans.json",
        &json!(["yes", "no", "yes"]),
    );
    let err = AnswerTable::from_label2ans_json(&p)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dup_label2ans.json") && err.contains("`yes`"),
        "{err}"
    );

    let p = write(
        dir.path(),
        "trainval_ans2label.json",
        &json!({"yes": 0, "no": 1}),
    );
    let err = AnswerTable::from_label2ans_json(&p)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("trainval_ans2label.json") && err.contains("label2ans"),
        "{err}"
    );

    let p = dir.path().join("broken.json");
    std::fs::write(&p, "[\"yes\", 3]").unwrap();
    let err = AnswerTable::from_label2ans_json(&p)
        .unwrap_err()
        .to_string();
    assert!(err.contains("broken.json"), "{err}");

    assert!(AnswerTable::from_answers(s(&["a", "b", "a"])).is_err());
}

#[test]
fn soft_scores_follow_the_official_accuracy() {
    let t = AnswerTable::from_answers(s(&["red", "2", "3", "yes", "maroon", "blue"])).unwrap();
    let l = |a: &str| t.label(a).unwrap();

    // 3 matching annotators → 0.9, not 1.0.
    let three = s(&[
        "red", "red", "red", "blue", "green", "x", "y", "z", "w", "v",
    ]);
    let target = soft_target(&three, &t);
    assert_eq!(target, [(l("red"), 0.9), (l("blue"), 0.3)]);

    // k = 1..=10 matches of ten → 0.3, 0.6, 0.9, 1, 1, ...
    let want = [0.3, 0.6, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    for k in 1..=10 {
        let mut a = vec!["red".to_string(); k];
        a.extend((k..10).map(|i| format!("other{i}")));
        let target = soft_target(&a, &t);
        assert_eq!(target.len(), 1);
        assert!(
            (target[0].1 - want[k - 1]).abs() < 1e-6,
            "k={k}: {target:?}"
        );
    }

    // Normalisation when the answers differ: "two", "2 " and "2" all match class 2.
    let dir = tempfile::tempdir().unwrap();
    let anns = read_annotations(&write(dir.path(), "a.json", &annotations_file())).unwrap();
    let targets = soft_targets(&anns, &t);
    // 7000: red ×6 after normalisation ("Red", "red.") → 1.0, maroon ×1 → 0.3.
    assert_eq!(targets[0], [(l("red"), 1.0), (l("maroon"), 0.3)]);
    // 42000: ten identical "yes" → 1.0.
    assert_eq!(targets[1], [(l("yes"), 1.0)]);
    // 42001: "2" ×3 ("2", "2", "two") → 0.9; "3" ×3 → 0.9.
    assert_eq!(targets[2], [(l("2"), 0.9), (l("3"), 0.9)]);

    // All out of vocabulary: empty target, the question is kept by the caller.
    assert!(soft_target(&s(&["purple"; 10]), &t).is_empty());
    // Ten identical "Yes": the official evaluation does not normalise, so class "yes" gets 0.
    assert!(soft_target(&s(&["Yes"; 10]), &t).is_empty());
    assert_eq!(vqa_accuracy("yes", &s(&["Yes"; 10])), 0.0);
    // No answers.
    assert!(soft_target(&[], &t).is_empty());
    // label_accuracy is the evaluation of a class prediction.
    assert!((label_accuracy(l("red"), &three, &t) - 0.9).abs() < 1e-12);
    assert_eq!(label_accuracy(99, &three, &t), 0.0);
}

/// Spec 8.2: the soft score of every in-vocabulary answer equals its official accuracy, on
/// random answer lists (variants that normalise together, identical lists, 1..=12 answers) and
/// a vocabulary that also holds entries not in normal form.
#[test]
fn property_soft_score_equals_vqa_accuracy() {
    let pool = [
        "yes",
        "Yes",
        "yes.",
        " yes\t",
        "no",
        "No",
        "2",
        "two",
        "Two",
        "2 ",
        "a dog",
        "dog",
        "the dog",
        "black/white",
        "black white",
        "black / white",
        "10,000",
        "10000",
        "3.5",
        "dont",
        "don't",
        "none",
        "0",
        "red",
        "maroon",
        "5",
        "five",
        "an apple",
        "apple",
        "i dont know",
    ];
    let vocab = s(&[
        "yes",
        "no",
        "2",
        "dog",
        "black white",
        "10000",
        "3.5",
        "don't",
        "0",
        "red",
        "5",
        "apple",
        "Two",
        "yes.",
        "a dog",
        "black/white",
    ]);
    let t = AnswerTable::from_answers(vocab.clone()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2107_06383);
    let mut nonzero = 0usize;
    for case in 0..5000 {
        let n = if case % 5 == 0 {
            rng.random_range(1..=12)
        } else {
            10
        };
        let answers: Vec<String> = if rng.random_bool(0.15) {
            vec![pool[rng.random_range(0..pool.len())].to_string(); n]
        } else {
            // Few distinct answers per list so that 3 and ≥4 matches are common.
            let sub: Vec<&str> = (0..rng.random_range(1..=4))
                .map(|_| pool[rng.random_range(0..pool.len())])
                .collect();
            (0..n)
                .map(|_| sub[rng.random_range(0..sub.len())].to_string())
                .collect()
        };
        let target = soft_target(&answers, &t);
        assert!(
            target.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, distinct labels"
        );
        for (label, answer) in vocab.iter().enumerate() {
            let want = vqa_accuracy(answer, &answers);
            let got = target
                .iter()
                .find(|(l, _)| *l as usize == label)
                .map_or(0.0, |(_, s)| *s as f64);
            assert!(
                (got - want).abs() < 1e-6,
                "class {answer:?} on {answers:?}: soft score {got} vs accuracy {want}"
            );
            if want > 0.0 {
                nonzero += 1;
            }
        }
        assert!(target.iter().all(|&(_, s)| s > 0.0));
    }
    assert!(
        nonzero > 5000,
        "the random lists must exercise matches ({nonzero})"
    );
}

#[test]
fn results_round_trip_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("vqa_test-dev2015_kiln_results.json");
    let results = vec![
        (42000u64, "yes".to_string()),
        (42001, "2".into()),
        (7000, "red \"dark\"".into()),
    ];
    write_results(&p, &results).unwrap();
    assert_eq!(read_results(&p).unwrap(), results);

    // The exact server format.
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    assert_eq!(v[0], json!({"question_id": 42000, "answer": "yes"}));
    // No temporary file left behind; overwriting works.
    write_results(&p, &[(1u64, "no")]).unwrap();
    assert_eq!(read_results(&p).unwrap(), [(1, "no".to_string())]);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // Duplicate question ids are refused and nothing is written.
    let p2 = dir.path().join("dup.json");
    let err = write_results(&p2, &[(1u64, "a"), (1, "b")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dup.json") && err.contains("question_id 1"),
        "{err}"
    );
    assert!(!p2.exists());

    // A missing folder names the file.
    let err = write_results(&dir.path().join("no/such/dir/r.json"), &[(1u64, "a")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("r.json"), "{err}");
}
