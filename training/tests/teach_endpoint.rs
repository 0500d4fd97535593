//! `teach --teacher endpoint` against a scripted OpenAI-compatible server on 127.0.0.1: 429, 500,
//! a slow answer past the timeout, a truncated JSON answer, an answer that drips in a byte at a
//! time (bounded by the same timeout) and an HTML error page are each retried; every admission
//! gets its rationale; a second run asks nothing (the cache); a 400 is not retried.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Serves `script(n)` for the n-th request (0-based): (status, extra headers, body, delay in ms
/// before answering); a delay of `DRIP` sends the body one byte every 50 ms instead.
const DRIP: u64 = u64::MAX;
fn server(script: fn(usize) -> (u16, &'static str, String, u64)) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).ok();
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let (status, headers, text, delay) = script(n);
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                text.len()
            );
            if delay == DRIP {
                stream.write_all(head.as_bytes()).ok();
                for byte in text.as_bytes() {
                    std::thread::sleep(Duration::from_millis(50));
                    if stream
                        .write_all(&[*byte])
                        .and_then(|_| stream.flush())
                        .is_err()
                    {
                        break; // the client gave up
                    }
                }
                continue;
            }
            std::thread::sleep(Duration::from_millis(delay));
            stream.write_all(format!("{head}{text}").as_bytes()).ok();
        }
    });
    (url, count)
}

fn answer() -> String {
    let content = r#"Here it is: {"note_rationale": "The notes describe it.", "lab_rationale": "Lactate was high."}"#;
    serde_json::json!({ "choices": [{ "message": { "role": "assistant", "content": content } }] })
        .to_string()
}

fn teach(dir: &std::path::Path, url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bedside-train"))
        .args([
            "teach",
            "--teacher",
            "endpoint",
            "--model",
            "test",
            "--concurrency",
            "1",
            "--timeout",
            "1",
            "--backoff-ms",
            "10",
            "--retries",
            "6",
            "--url",
            url,
            "--cohort",
        ])
        .arg(dir.join("cohort.jsonl"))
        .arg("--out")
        .arg(dir.join("rationales.jsonl"))
        .output()
        .unwrap()
}

fn cohort(dir: &std::path::Path, n: usize) {
    let status = Command::new(env!("CARGO_BIN_EXE_bedside-train"))
        .args([
            "cohort",
            "--source",
            "synthetic",
            "--n",
            &n.to_string(),
            "--seed",
            "5",
            "--out",
        ])
        .arg(dir.join("cohort.jsonl"))
        .output()
        .unwrap();
    assert!(status.status.success());
}

#[test]
fn retries_then_caches() {
    let dir = std::env::temp_dir().join(format!("bedside-endpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    cohort(&dir, 3);
    let (url, count) = server(|n| match n {
        0 => (429, "Retry-After: 0\r\n", "{}".into(), 0),
        1 => (500, "", "oops".into(), 0),
        2 => (200, "", answer(), 2500), // past the 1 s timeout
        3 => (200, "", answer()[..40].to_string(), 0), // truncated
        4 => (200, "", answer(), DRIP), // ~10 s of dripping against a 1 s timeout
        5 => (502, "", "<html><body>Bad gateway</body></html>".into(), 0),
        _ => (200, "", answer(), 0),
    });
    let started = std::time::Instant::now();
    let out = teach(&dir, &url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("rationales.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert_eq!(text.matches("endpoint:test").count(), 3, "{text}");
    // every answer went through the grounding filter: the lactate statement is kept where the
    // record has a high lactate and dropped (and listed) where not; the note sentence quotes
    // nothing and is dropped everywhere
    let grounding: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("rationales.grounding.json")).unwrap(),
    )
    .unwrap();
    let dropped = |s: &str| {
        grounding["dropped"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d[2] == s)
            .count()
    };
    let cohort = std::fs::read_to_string(dir.join("cohort.jsonl")).unwrap();
    let lactate = bedside::knowledge::channel_index("lactate").unwrap();
    for (line, record) in text.lines().zip(cohort.lines()) {
        let record: bedside::PatientRecord = serde_json::from_str(record).unwrap();
        let high = bedside::findings::Findings::of(&record, 48)
            .lab(lactate)
            .is_some_and(|f| f.direction == bedside::findings::Direction::High);
        assert_eq!(line.contains("Lactate was high."), high, "{line}");
    }
    assert_eq!(
        text.matches("Lactate was high.").count() + dropped("Lactate was high."),
        3,
        "{text} {grounding}"
    );
    assert_eq!(dropped("The notes describe it."), 3, "{grounding}");
    assert_eq!(grounding["statements"], 6);
    let asked = count.load(Ordering::SeqCst);
    assert_eq!(
        asked,
        6 + 3,
        "six failures retried, then one answer per admission"
    );
    // bounded: the slow and the dripping answers cost about a timeout each, not their length
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    // the rerun finds every answer in the cache
    let out = teach(&dir, &url);
    assert!(out.status.success());
    assert_eq!(
        count.load(Ordering::SeqCst),
        asked,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("rationales.jsonl")).unwrap(),
        text
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_client_error_is_not_retried_and_fails_clearly() {
    let dir = std::env::temp_dir().join(format!("bedside-endpoint-400-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    cohort(&dir, 1);
    let (url, count) = server(|_| (400, "", r#"{"error": "unknown model"}"#.into(), 0));
    let out = teach(&dir, &url);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HTTP 400") && stderr.contains("unknown model"),
        "{stderr}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
    std::fs::remove_dir_all(&dir).ok();
}
