//! `kiln_data::vqa` on the real `vqa2_yesno` lists and images (`shared/data/vqa2_yesno`, see
//! MANIFEST.md): counts, image decoding, strict parse errors, CLIP normalisation, vocabularies,
//! and the synthetic scenes checked by their pixels. The real data is required: these tests
//! fail, not skip, when it is missing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_data::vqa::{
    clip_normalize, load_images, load_rgb, load_split_images, read_yesno, soft_scores,
    synthetic_scenes, tokenize_question, AnswerVocab, SceneColour, SceneQuestion, SceneShape,
    Vocab, CLIP_MEAN, DEFAULT_MAX_LEN, DEFAULT_MIN_COUNT,
};
use kiln_data::DataError;

fn data_dir() -> PathBuf {
    let root = kiln_core::paths::shared_data().expect(
        "shared/data not found (set KILN_SHARED_DATA or put shared/data beside the checkout): \
         the vqa2_yesno tests need the real data",
    );
    let dir = root.join("vqa2_yesno");
    assert!(
        dir.join("images_112").is_dir(),
        "{} missing: see MANIFEST.md section vqa2_yesno",
        dir.display()
    );
    dir
}

fn split(name: &str) -> Vec<kiln_data::vqa::VqaQuestion> {
    let p = data_dir().join(format!("vaq2.0.{name}Images.txt"));
    read_yesno(&p).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn split_counts_answers_and_question_ids() {
    let train = split("Train");
    let dev = split("Dev");
    let test = split("Test");
    assert_eq!((train.len(), dev.len(), test.len()), (7_846, 1_952, 2_022));
    let yes = |v: &[kiln_data::vqa::VqaQuestion]| v.iter().filter(|q| q.answer == "yes").count();
    assert_eq!((yes(&train), train.len() - yes(&train)), (3_787, 4_059));
    assert_eq!((yes(&dev), dev.len() - yes(&dev)), (906, 1_046));
    assert_eq!((yes(&test), test.len() - yes(&test)), (912, 1_110));

    let q = &train[0];
    assert_eq!(q.image, "COCO_val2014_000000393225.jpg");
    assert_eq!((q.image_id, q.index_in_image), (393_225, 0));
    assert_eq!(q.question, "Is this a creamy soup ?");
    assert_eq!(q.answer, "no");
    assert_eq!(q.question_id(), 393_225_000);
    assert_eq!(q.line, 1);
    assert!(q.location().ends_with("vaq2.0.TrainImages.txt:1"));

    let all: Vec<_> = train.iter().chain(&dev).chain(&test).collect();
    let images: HashSet<&str> = all.iter().map(|q| q.image.as_str()).collect();
    assert_eq!(images.len(), 8_127);
    for q in &all {
        assert_eq!(q.image, format!("COCO_val2014_{:012}.jpg", q.image_id));
    }

    // The synthesised ids repeat inside dev and test (paraphrases share image and k) and
    // between train and dev/test (always with the same answer): pinned here, documented in
    // the module doc.
    let repeats = |v: &[kiln_data::vqa::VqaQuestion]| {
        let mut seen = HashSet::new();
        v.iter().filter(|q| !seen.insert(q.question_id())).count()
    };
    assert_eq!(
        (repeats(&train), repeats(&dev), repeats(&test)),
        (0, 88, 120)
    );
    let train_ids: HashMap<u64, &str> = train
        .iter()
        .map(|q| (q.question_id(), q.answer.as_str()))
        .collect();
    for (v, shared) in [(&dev, 811), (&test, 819)] {
        let keys: HashSet<u64> = v
            .iter()
            .filter(|q| train_ids.contains_key(&q.question_id()))
            .map(|q| q.question_id())
            .collect();
        assert_eq!(keys.len(), shared);
        for q in v.iter() {
            if let Some(a) = train_ids.get(&q.question_id()) {
                assert_eq!(*a, q.answer, "{}", q.location());
            }
        }
    }
    // k numbers each image's questions 0..n-1 over the three lists.
    let mut ks: HashMap<u64, HashSet<u32>> = HashMap::new();
    for q in &all {
        ks.entry(q.image_id).or_default().insert(q.index_in_image);
    }
    assert!(ks
        .values()
        .all(|s| (0..s.len() as u32).all(|k| s.contains(&k))));
}

#[test]
fn every_referenced_image_exists_and_a_subset_decodes_to_3x112x112() {
    let dir = data_dir().join("images_112");
    let all: Vec<_> = ["Train", "Dev", "Test"]
        .iter()
        .flat_map(|s| split(s))
        .collect();
    for q in &all {
        assert!(
            dir.join(&q.image).is_file(),
            "{}: {} missing",
            q.location(),
            q.image
        );
    }
    let subset: Vec<_> = {
        let mut seen = HashSet::new();
        all.iter()
            .filter(|q| seen.insert(q.image.clone()))
            .take(200)
            .cloned()
            .collect()
    };
    let mut calls = 0;
    let mut progress = |done: usize, total: usize| {
        calls += 1;
        assert!(done <= total && total == 200);
    };
    let set = load_split_images(&dir, &subset, None, Some(&mut progress)).unwrap();
    assert_eq!(calls, 200);
    assert_eq!((set.len(), set.height, set.width), (200, 112, 112));
    assert_eq!(set.pixels.len(), 200 * 3 * 112 * 112);
    assert!(set.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
    for i in 0..set.len() {
        let img = set.image(i);
        let mean = img.iter().sum::<f32>() / img.len() as f32;
        let var = img.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / img.len() as f32;
        assert!(var > 1e-4, "{} is flat", set.names[i]);
    }
    assert_eq!(set.rows_for(&subset).unwrap(), (0..200).collect::<Vec<_>>());
    // The stacked rows are what load_rgb gives for the file.
    let one = load_rgb(&dir.join(&set.names[7]), None).unwrap();
    assert_eq!(one.data, set.image(7));
    // Exact resize (aspect ratio ignored), bicubic: same mean colour, up to ringing.
    let big = load_rgb(&dir.join(&set.names[7]), Some((224, 160))).unwrap();
    assert_eq!(
        (big.height, big.width, big.data.len()),
        (224, 160, 3 * 224 * 160)
    );
    for c in 0..3 {
        let m = |d: &[f32], n: usize| d[c * n..(c + 1) * n].iter().sum::<f32>() / n as f32;
        let (a, b) = (m(&one.data, 112 * 112), m(&big.data, 224 * 160));
        assert!(
            (a - b).abs() < 0.01,
            "channel {c}: mean {a} vs {b} after resize"
        );
    }
    let set = load_images(&dir, &[&set.names[3], &set.names[3]], Some((64, 64)), None).unwrap();
    assert_eq!((set.len(), set.height, set.width), (1, 64, 64));
}

#[test]
fn all_8127_images_decode() {
    let dir = data_dir().join("images_112");
    let all: Vec<_> = ["Train", "Dev", "Test"]
        .iter()
        .flat_map(|s| split(s))
        .collect();
    let t = Instant::now();
    let set = load_split_images(&dir, &all, None, None).unwrap();
    eprintln!(
        "decoded {} images ({}×{}) in {:.2} s",
        set.len(),
        set.height,
        set.width,
        t.elapsed().as_secs_f64()
    );
    assert_eq!((set.len(), set.height, set.width), (8_127, 112, 112));
    assert_eq!(set.rows_for(&all).unwrap().len(), all.len());
}

/// Writes `text` to `name` in `dir` and returns the parse error.
fn parse_err(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    read_yesno(&p).unwrap_err().to_string()
}

#[test]
fn malformed_lines_name_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let good = "COCO_val2014_000000393225.jpg#0\tIs this a creamy soup ? no\n";
    let cases = [
        (
            "notab.txt",
            "COCO_val2014_000000393225.jpg#0 Is this a soup ? no\n",
            2,
            "no tab",
        ),
        (
            "nohash.txt",
            "COCO_val2014_000000393225.jpg\tIs this a soup ? no\n",
            2,
            "#<k>",
        ),
        (
            "badk.txt",
            "COCO_val2014_000000393225.jpg#x\tIs this a soup ? no\n",
            2,
            "#x",
        ),
        (
            "badname.txt",
            "COCO_val2014_393225.jpg#0\tIs this a soup ? no\n",
            2,
            "12 digits",
        ),
        (
            "noq.txt",
            "COCO_val2014_000000393225.jpg#0\tyes\n",
            2,
            "empty question",
        ),
        (
            "answer.txt",
            "COCO_val2014_000000393225.jpg#0\tIs this a soup ? maybe\n",
            2,
            "maybe",
        ),
        ("blank.txt", "\n", 2, "empty line"),
        (
            "twotabs.txt",
            "COCO_val2014_000000393225.jpg#0\tIs this\ta soup ? no\n",
            2,
            "tab",
        ),
    ];
    for (name, bad, line, what) in cases {
        let text = format!("{good}{bad}{good}");
        let e = parse_err(tmp.path(), name, &text);
        let at = format!("{}:{line}:", tmp.path().join(name).display());
        assert!(e.contains(&at), "{name}: `{e}` does not name {at}");
        assert!(e.contains(what), "{name}: `{e}` does not say `{what}`");
    }
    let e = parse_err(tmp.path(), "empty.txt", "");
    assert!(e.contains("empty.txt") && e.contains("no questions"), "{e}");
    let missing = tmp.path().join("nope.txt");
    let e = read_yesno(&missing).unwrap_err();
    assert!(matches!(e, DataError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("nope.txt"));
    // CRLF line ends are tolerated.
    let p = tmp.path().join("crlf.txt");
    std::fs::write(&p, good.replace('\n', "\r\n").repeat(2)).unwrap();
    let qs = read_yesno(&p).unwrap();
    assert_eq!(qs.len(), 2);
    assert_eq!(qs[1].answer, "no");
}

#[test]
fn missing_and_corrupt_images_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let real = data_dir().join("images_112");
    let a = "COCO_val2014_000000393225.jpg";
    std::fs::copy(real.join(a), tmp.path().join(a)).unwrap();
    let list = tmp.path().join("list.txt");
    std::fs::write(
        &list,
        format!(
            "{a}#0\tIs this a soup ? no\n{a}#1\tIs it hot ? yes\n\
             COCO_val2014_000000000001.jpg#0\tIs this a cat ? no\n"
        ),
    )
    .unwrap();
    let qs = read_yesno(&list).unwrap();
    let e = load_split_images(tmp.path(), &qs, None, None).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::MissingImage { .. }), "{msg}");
    assert!(msg.contains("COCO_val2014_000000000001.jpg"), "{msg}");
    assert!(msg.contains(&format!("{}:3", list.display())), "{msg}");

    // Not an image at all, and a JPEG header followed by garbage.
    for (name, bytes) in [
        (
            "COCO_val2014_000000000002.jpg",
            b"not a jpeg at all".to_vec(),
        ),
        (
            "COCO_val2014_000000000003.jpg",
            [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[0x13; 200][..]].concat(),
        ),
    ] {
        std::fs::write(tmp.path().join(name), bytes).unwrap();
        let e = load_rgb(&tmp.path().join(name), None).unwrap_err();
        assert!(matches!(e, DataError::Image { .. }), "{e}");
        assert!(e.to_string().contains(name), "{e}");
        let e = load_images(tmp.path(), &[a, name], None, None).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn clip_normalisation_of_the_mean_colour_is_zero() {
    let (h, w) = (5, 7);
    let mut img: Vec<f32> = (0..2 * 3)
        .flat_map(|k| std::iter::repeat_n(CLIP_MEAN[k % 3], h * w))
        .collect();
    clip_normalize(&mut img, (3, h, w));
    assert!(img.iter().all(|v| v.abs() < 1e-6), "{img:?}");
    // Through a file: the nearest 8-bit colour to the mean is within half a level.
    let tmp = tempfile::tempdir().unwrap();
    let px = CLIP_MEAN.map(|m| (m * 255.0).round() as u8);
    let p = tmp.path().join("mean.png");
    image::RgbImage::from_pixel(9, 4, image::Rgb(px))
        .save(&p)
        .unwrap();
    let mut im = load_rgb(&p, None).unwrap();
    assert_eq!((im.height, im.width), (4, 9));
    clip_normalize(&mut im.data, (3, 4, 9));
    assert!(
        im.data.iter().all(|v| v.abs() < 0.5 / 255.0 / 0.26),
        "{:?}",
        im.data
    );
    // One at 1.0 gives (1 - mean) / std.
    let mut white = vec![1.0f32; 3];
    clip_normalize(&mut white, (3, 1, 1));
    assert!((white[0] - (1.0 - 0.481_454_66) / 0.268_629_54).abs() < 1e-6);
}

#[test]
fn question_vocabulary_and_encoding() {
    assert_eq!(
        tokenize_question("Is this a man's tie-clip/pin, \"really\" ?"),
        ["is", "this", "a", "mans", "tie", "clip", "pin", "really"]
    );
    let train = split("Train");
    let vocab = Vocab::build(train.iter().map(|q| q.question.as_str()), DEFAULT_MIN_COUNT);
    assert_eq!(vocab.word(Vocab::PAD), Some("<pad>"));
    assert_eq!(vocab.word(Vocab::UNK), Some("<unk>"));
    assert_eq!(vocab.word(2), Some("is"));
    let (ids, len) = vocab.encode("Is this a creamy soup ?", DEFAULT_MAX_LEN);
    assert_eq!((ids.len(), len), (14, 5));
    assert!(ids[..5].iter().all(|&i| i > Vocab::UNK));
    assert!(ids[5..].iter().all(|&i| i == Vocab::PAD));
    let (ids, len) = vocab.encode("Is this a zzyzx ?", DEFAULT_MAX_LEN);
    assert_eq!((ids[3], len), (Vocab::UNK, 4));
    let long = "is ".repeat(20);
    let (ids, len) = vocab.encode(&long, DEFAULT_MAX_LEN);
    assert_eq!((ids.len(), len), (14, 14));
    let stricter = Vocab::build(train.iter().map(|q| q.question.as_str()), 3);
    assert!(stricter.len() < vocab.len());

    let test = split("Test");
    let enc = vocab.encode_all(test.iter().map(|q| q.question.as_str()), DEFAULT_MAX_LEN);
    assert_eq!(enc.ids.len(), test.len() * 14);
    let lens: Vec<usize> = ["Train", "Dev", "Test"]
        .iter()
        .flat_map(|s| split(s))
        .map(|q| tokenize_question(&q.question).len())
        .collect();
    let longest = *lens.iter().max().unwrap();
    // Four questions (three in train, one in test) are longer than MCAN's 14 and get cut.
    assert_eq!(lens.iter().filter(|&&l| l > DEFAULT_MAX_LEN).count(), 4);
    let unk = enc.ids.iter().filter(|&&i| i == Vocab::UNK).count();
    let tokens: u32 = enc.lengths.iter().sum();
    eprintln!(
        "train vocabulary {} words (min count 1), {} with min count 3; longest question {longest} \
         tokens; test tokens unknown to train: {unk} of {tokens}",
        vocab.len(),
        stricter.len()
    );
    assert_eq!(longest, 16);
    assert!(enc.lengths.iter().all(|&l| l >= 1));
}

#[test]
fn answer_vocabulary_and_soft_scores() {
    let train = split("Train");
    let av = AnswerVocab::build(train.iter().map(|q| q.answer.as_str()), 1);
    assert_eq!(av.answers(), ["no", "yes"]);
    assert_eq!(
        (av.label("no"), av.label("yes"), av.label("maybe")),
        (Some(0), Some(1), None)
    );
    // One answer per question here: one-hot.
    assert_eq!(soft_scores(&["yes".to_string()], &av), [0.0, 1.0]);
    assert_eq!(soft_scores(&["maybe".to_string()], &av), [0.0, 0.0]);
    assert_eq!(soft_scores(&[], &av), [0.0, 0.0]);
    // Ten annotators: the official 0.3 / 0.6 / 0.9 / 1.0.
    let ten = |yes: usize| -> Vec<String> {
        (0..10)
            .map(|i| if i < yes { "yes" } else { "no" }.to_string())
            .collect()
    };
    for (m, want) in [(1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (7, 1.0)] {
        let s = soft_scores(&ten(m), &av);
        assert!((s[1] - want).abs() < 1e-6, "{m} matches: {}", s[1]);
    }
    // With differing answers the official normalisation applies ("two" credits class "2").
    let av = AnswerVocab::build(["2", "2", "3", "yes"], 1);
    let answers: Vec<String> = ["two", "2", "2", "3", "4", "4", "4", "4", "4", "4"]
        .map(String::from)
        .to_vec();
    let s = soft_scores(&answers, &av);
    assert!(
        (s[av.label("2").unwrap() as usize] - 0.9).abs() < 1e-6,
        "{s:?}"
    );
    assert!(
        (s[av.label("3").unwrap() as usize] - 0.3).abs() < 1e-6,
        "{s:?}"
    );
    assert_eq!(s[av.label("yes").unwrap() as usize], 0.0);
}

/// The colour-shape pairs in one synthetic image, read from its pixels: 4-connected
/// components of each pure colour, classified by how much of their bounding box they fill
/// (square 1, circle ~0.79, triangle ~0.5).
fn pairs_in(img: &[f32], size: usize) -> Vec<(SceneColour, SceneShape)> {
    let plane = size * size;
    let colour_at = |p: usize| {
        SceneColour::ALL.into_iter().find(|c| {
            let rgb = c.rgb();
            (0..3).all(|ch| img[ch * plane + p] == rgb[ch])
        })
    };
    let mut seen = vec![false; plane];
    let mut out = Vec::new();
    for start in 0..plane {
        let Some(colour) = colour_at(start) else {
            continue;
        };
        if seen[start] {
            continue;
        }
        let (mut x0, mut y0, mut x1, mut y1, mut area) = (size, size, 0, 0, 0usize);
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(p) = stack.pop() {
            let (x, y) = (p % size, p / size);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            area += 1;
            let mut nb = Vec::new();
            if x > 0 {
                nb.push(p - 1);
            }
            if x + 1 < size {
                nb.push(p + 1);
            }
            if y > 0 {
                nb.push(p - size);
            }
            if y + 1 < size {
                nb.push(p + size);
            }
            for q in nb {
                if !seen[q] && colour_at(q) == Some(colour) {
                    seen[q] = true;
                    stack.push(q);
                }
            }
        }
        let fill = area as f32 / ((x1 - x0 + 1) * (y1 - y0 + 1)) as f32;
        let shape = if fill > 0.95 {
            SceneShape::Square
        } else if fill > 0.68 {
            SceneShape::Circle
        } else {
            SceneShape::Triangle
        };
        out.push((colour, shape));
    }
    out
}

#[test]
fn synthetic_scenes_are_balanced_grounded_and_seeded() {
    let (n, size) = (1_000, 32);
    let (pixels, qs) = synthetic_scenes(n, size, 7);
    assert_eq!(pixels.len(), n * 3 * size * size);
    assert_eq!(qs.len(), n);
    assert!(pixels.iter().all(|v| (0.0..=1.0).contains(v)));
    let yes = qs.iter().filter(|q| q.answer == "yes").count();
    assert_eq!(yes, n / 2);
    let mut per_question: HashMap<&str, (usize, usize)> = HashMap::new();
    for q in &qs {
        assert_eq!(
            q.question,
            format!("is there a {} {} ?", q.colour.name(), q.shape.name())
        );
        let img = &pixels[q.image * 3 * size * size..(q.image + 1) * 3 * size * size];
        let pairs = pairs_in(img, size);
        assert!(
            (1..=3).contains(&pairs.len()),
            "image {}: {pairs:?}",
            q.image
        );
        let present = pairs.contains(&(q.colour, q.shape));
        assert_eq!(
            present,
            q.answer == "yes",
            "image {}: `{}` answered {} but the pixels hold {pairs:?}",
            q.image,
            q.question,
            q.answer
        );
        let e = per_question.entry(q.question.as_str()).or_default();
        if q.answer == "yes" {
            e.0 += 1
        } else {
            e.1 += 1
        }
    }
    // The question alone: the best per-question guess, fitted on these very answers.
    let blind: usize = per_question.values().map(|&(y, n)| y.max(n)).sum();
    let blind = blind as f64 / n as f64;
    assert!(
        per_question.len() == 12 && blind < 0.56,
        "question-only accuracy {blind}"
    );
    eprintln!("synthetic: question-only accuracy {blind:.3} (in-sample best guess)");

    // Every shape, colour and background occurs; larger images work too.
    let shapes: HashSet<SceneShape> = qs.iter().map(|q| q.shape).collect();
    assert_eq!(shapes.len(), 3);
    let (big, bq) = synthetic_scenes(50, 112, 3);
    for q in &bq {
        let img = &big[q.image * 3 * 112 * 112..(q.image + 1) * 3 * 112 * 112];
        assert_eq!(
            pairs_in(img, 112).contains(&(q.colour, q.shape)),
            q.answer == "yes"
        );
    }

    let again: (Vec<f32>, Vec<SceneQuestion>) = synthetic_scenes(n, size, 7);
    assert!(
        again.0 == pixels && again.1 == qs,
        "same seed, different scenes"
    );
    let other = synthetic_scenes(n, size, 8);
    assert!(other.0 != pixels && other.1 != qs, "seed ignored");
}
