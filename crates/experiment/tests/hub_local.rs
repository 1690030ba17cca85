//! Downloads through hf-hub against a local HTTP server that serves a tiny hub-shaped repo
//! (`/{repo}/resolve/{rev}/{file}` and `/datasets/{repo}/resolve/...`, with the headers the hub
//! sends: x-repo-commit, etag / x-linked-etag, content-range). The build machines have no
//! internet, so this is how the download path is tested.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;

use burn::tensor::Device;
use kiln_data::{Example, GlueTask};
use sha2::{Digest, Sha256};

/// Serves `files` (url path -> bytes). `bad_etag` serves a wrong sha256 as the etag.
fn serve(files: HashMap<String, Vec<u8>>, bad_etag: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let files = files.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut range = None;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        range = Some(v.trim().to_string());
                    }
                }
                let Some(body) = files.get(&path) else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                };
                let sha = if bad_etag {
                    "0".repeat(64)
                } else {
                    hex::encode(Sha256::digest(body))
                };
                let (start, end) = match range.as_deref().and_then(|r| r.split_once('-')) {
                    Some((a, b)) => {
                        let a: usize = a.parse().unwrap_or(0);
                        let b: usize = b.parse().map(|b: usize| b + 1).unwrap_or(body.len());
                        (a.min(body.len()), b.min(body.len()))
                    }
                    None => (0, body.len()),
                };
                let part = &body[start..end];
                let head = format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\n\
                     x-repo-commit: {}\r\nx-linked-etag: \"{sha}\"\r\netag: \"{sha}\"\r\nConnection: close\r\n\r\n",
                    part.len(),
                    start,
                    end.saturating_sub(1),
                    body.len(),
                    "a".repeat(40)
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(part);
            });
        }
    });
    format!("http://{addr}")
}

fn tiny_model_files() -> HashMap<String, Vec<u8>> {
    let d = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let cfg = kiln_models::BertConfig::tiny(30, 2);
    let m = kiln_models::BertForSequenceClassification::new(&cfg, &device);
    let words: Vec<String> = vec!["a".into(), "b".into()];
    let tok = kiln_data::TextTokenizer::word_level(&words, 16).unwrap();
    let tp = d.path().join("tok.json");
    tok.save(&tp).unwrap();
    kiln_models::bert::save_classifier(&m, &cfg, Some(&tp), &d.path().join("m")).unwrap();
    ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|f| {
            (
                format!("/tiny/bert/resolve/main/{f}"),
                std::fs::read(d.path().join("m").join(f)).unwrap(),
            )
        })
        .collect()
}

#[test]
fn model_download_from_local_hub_verifies_and_loads() {
    let endpoint = serve(tiny_model_files(), false);
    let cache = tempfile::tempdir().unwrap();
    let dest = cache.path().join("tiny-bert");
    kiln_experiment::hub::fetch_model_from(&endpoint, &cache.path().join("hf"), "tiny/bert", &dest)
        .unwrap();
    let (m, ck) = kiln_models::bert::load_classifier(&dest, 2, &Device::flex()).unwrap();
    assert_eq!(m.num_labels(), 2);
    assert!(ck.tokenizer().is_some());
}

#[test]
fn corrupt_download_is_rejected() {
    let endpoint = serve(tiny_model_files(), true);
    let cache = tempfile::tempdir().unwrap();
    let e = kiln_experiment::hub::fetch_model_from(
        &endpoint,
        &cache.path().join("hf"),
        "tiny/bert",
        &cache.path().join("x"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sha256") && e.contains("config.json"), "{e}");
}

#[test]
fn glue_parquet_download_from_local_hub() {
    let d = tempfile::tempdir().unwrap();
    let ex = vec![
        Example {
            text_a: "It rains.".into(),
            text_b: Some("It is wet.".into()),
            label: Some(0.0),
        },
        Example {
            text_a: "Cats bark.".into(),
            text_b: Some("Dogs bark.".into()),
            label: Some(1.0),
        },
    ];
    let p = d.path().join("x.parquet");
    kiln_data::parquet_reader::write_glue_parquet(&p, &ex).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let (_, train, dev) = kiln_experiment::hub::glue_hub_files(GlueTask::Rte);
    let mut files = HashMap::new();
    files.insert(
        format!("/datasets/nyu-mll/glue/resolve/main/{train}"),
        bytes.clone(),
    );
    files.insert(format!("/datasets/nyu-mll/glue/resolve/main/{dev}"), bytes);
    let endpoint = serve(files, false);
    let dir = kiln_experiment::hub::fetch_glue_task_from(
        &endpoint,
        &d.path().join("hf"),
        GlueTask::Rte,
        &d.path().join("glue"),
    )
    .unwrap();
    assert_eq!(
        kiln_data::read_glue_file(&dir.join("train.parquet"), GlueTask::Rte).unwrap(),
        ex
    );
    // And resolution finds it under the given root.
    let r = kiln_experiment::Resolver {
        data_dir: Some(d.path().join("glue")),
        ..kiln_experiment::Resolver::offline(&d.path().join("cache"))
    };
    let t = r.find_task(GlueTask::Rte).unwrap();
    assert!(
        t.train.ends_with("RTE/train.parquet") && t.dev.ends_with("RTE/dev.parquet"),
        "{t:?}"
    );
}
