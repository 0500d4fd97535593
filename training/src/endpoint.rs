//! `teach --teacher endpoint`: teacher rationales from any OpenAI-compatible chat-completions
//! server (llama.cpp server, vLLM, Ollama). ClinRaGen's teacher prompt — the notes, a description
//! of the lab anomalies, the knowledge of the record's channels and the diagnoses to explain —
//! asks for a JSON object with the two rationales. Requests run a few at a time, each bounded by a
//! timeout; 429, 5xx, transport errors and unreadable answers are retried with exponential backoff
//! (honouring `Retry-After`). Every answer is cached under the record id and the prompt's hash,
//! so an interrupted run resumes without asking again, and a changed prompt asks anew.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bedside::PatientRecord;
use bedside::knowledge::{CHANNELS, channel_description};
use serde::Deserialize;

use crate::io::write_atomic;
use crate::teach::{Rationale, lab_rationale};

pub struct EndpointOptions {
    /// The chat-completions URL, e.g. `http://127.0.0.1:8080/v1/chat/completions`.
    pub url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer …` where set (`BEDSIDE_TEACHER_API_KEY`).
    pub api_key: Option<String>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub retries: u32,
    /// First backoff; doubled on every retry.
    pub backoff: Duration,
    pub cache: PathBuf,
    /// Hours of each admission the model reads: the prompt lists only the findings inside them.
    pub hours: usize,
}

/// The teacher prompt for one admission, with the record's findings inside the first `hours`.
pub fn prompt(record: &PatientRecord, hours: usize) -> String {
    let notes: Vec<&str> = record.notes.iter().map(|n| n.text.as_str()).collect();
    let channels: Vec<String> = CHANNELS
        .iter()
        .filter(|c| {
            record
                .observations
                .iter()
                .any(|o| o.channel == c.name && o.value.is_some())
        })
        .filter_map(|c| channel_description(c.name).map(|d| format!("- {}: {d}", c.label)))
        .collect();
    let labels = record
        .labels
        .as_ref()
        .map(|l| l.phenotypes.join("; "))
        .unwrap_or_default();
    format!(
        "You are a clinician explaining a diagnosis from a patient's record.\n\n\
         Clinical notes:\n{}\n\nLab and vital-sign anomalies:\n{}\n\nKnowledge about the measured channels:\n{}\n\n\
         Diagnoses: {}\n\n\
         Explain, for each diagnosis, the evidence for it. Answer with one JSON object and nothing else: \
         {{\"note_rationale\": \"the evidence in the notes\", \"lab_rationale\": \"the evidence in the labs and vital signs, \
         citing only values listed above\"}}",
        if notes.is_empty() {
            "(none)".to_string()
        } else {
            notes.join("\n")
        },
        lab_rationale(record, &bedside::findings::Findings::of(record, hours)),
        channels.join("\n"),
        if labels.is_empty() { "(none)" } else { &labels },
    )
}

fn cache_file(dir: &Path, id: &str, prompt: &str) -> PathBuf {
    let hash = bedside::bundle::sha256_hex(prompt.as_bytes());
    let hash = &hash[..16];
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}-{hash}.json"))
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: String,
}

#[derive(Deserialize)]
struct Answer {
    note_rationale: String,
    lab_rationale: String,
}

/// The rationales in a chat-completions response body: the JSON object of the message content
/// (code fences and text around it tolerated).
pub fn parse_answer(body: &str) -> Result<(String, String)> {
    let completion: Completion =
        serde_json::from_str(body).context("the response is not a chat completion")?;
    let content = completion
        .choices
        .into_iter()
        .next()
        .context("the response has no choices")?
        .message
        .content;
    let start = content
        .find('{')
        .context("the answer holds no JSON object")?;
    let end = content
        .rfind('}')
        .filter(|&e| e > start)
        .context("the answer's JSON object is not closed")?;
    let answer: Answer = serde_json::from_str(&content[start..=end])
        .context("the answer's JSON object lacks note_rationale or lab_rationale")?;
    Ok((
        answer.note_rationale.trim().to_string(),
        answer.lab_rationale.trim().to_string(),
    ))
}

/// One outcome of asking: the answer, or a failure worth retrying (with the server's wait), or not.
enum Attempt {
    Done(String, String),
    Retry(String, Option<Duration>),
    Fail(String),
}

fn ask(agent: &ureq::Agent, options: &EndpointOptions, prompt: &str) -> Attempt {
    let body = serde_json::json!({
        "model": options.model,
        "messages": [{ "role": "user", "content": prompt }],
        "temperature": 0.0,
    });
    let mut request = agent
        .post(&options.url)
        .header("Content-Type", "application/json");
    if let Some(key) = &options.api_key {
        request = request.header("Authorization", &format!("Bearer {key}"));
    }
    let mut response = match request.send_json(&body) {
        Ok(r) => r,
        Err(e) => return Attempt::Retry(format!("request failed: {e}"), None),
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = match response.body_mut().read_to_string() {
        Ok(t) => t,
        Err(e) => return Attempt::Retry(format!("reading the response failed: {e}"), None),
    };
    match status {
        200..=299 => match parse_answer(&text) {
            Ok((note, lab)) => Attempt::Done(note, lab),
            // a model may answer badly once and well the next time
            Err(e) => Attempt::Retry(format!("{e:#}"), None),
        },
        429 | 500..=599 => Attempt::Retry(format!("HTTP {status}"), retry_after),
        _ => Attempt::Fail(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        )),
    }
}

/// What a run did: rationales in cohort order (admissions that failed are left out and listed).
pub struct EndpointRun {
    pub rationales: Vec<Rationale>,
    pub requests: usize,
    pub cached: usize,
    pub failed: Vec<(String, String)>,
}

pub fn teach(records: &[PatientRecord], options: &EndpointOptions) -> Result<EndpointRun> {
    std::fs::create_dir_all(&options.cache)
        .with_context(|| format!("cannot create the cache {}", options.cache.display()))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(options.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let next = AtomicUsize::new(0);
    let requests = AtomicUsize::new(0);
    let cached = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Rationale, String>>>> =
        Mutex::new((0..records.len()).map(|_| None).collect());
    let teacher = format!("endpoint:{}", options.model);
    std::thread::scope(|scope| {
        for _ in 0..options.concurrency.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(record) = records.get(i) else { break };
                    let prompt = prompt(record, options.hours);
                    let file = cache_file(&options.cache, &record.id, &prompt);
                    let outcome = match std::fs::read(&file)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Rationale>(&b).ok())
                    {
                        Some(r) => {
                            cached.fetch_add(1, Ordering::SeqCst);
                            Ok(r)
                        }
                        None => {
                            let mut wait = options.backoff;
                            let mut outcome = Err("no attempt".to_string());
                            for attempt in 0..=options.retries {
                                requests.fetch_add(1, Ordering::SeqCst);
                                match ask(&agent, options, &prompt) {
                                    Attempt::Done(note, lab) => {
                                        let r = Rationale {
                                            id: record.id.clone(),
                                            note_rationale: note,
                                            lab_rationale: lab,
                                            teacher: teacher.clone(),
                                        };
                                        outcome = serde_json::to_vec(&r)
                                            .map_err(|e| e.to_string())
                                            .and_then(|bytes| {
                                                write_atomic(&file, &bytes)
                                                    .map_err(|e| format!("{e:#}"))
                                            })
                                            .map(|()| r);
                                        break;
                                    }
                                    Attempt::Fail(why) => {
                                        outcome = Err(why);
                                        break;
                                    }
                                    Attempt::Retry(why, after) => {
                                        outcome =
                                            Err(format!("{why} (after {} attempts)", attempt + 1));
                                        if attempt < options.retries {
                                            std::thread::sleep(
                                                after.unwrap_or(wait).min(Duration::from_secs(60)),
                                            );
                                            wait *= 2;
                                        }
                                    }
                                }
                            }
                            outcome
                        }
                    };
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(outcome);
                    }
                }
            });
        }
    });
    let slots = results
        .into_inner()
        .map_err(|_| anyhow!("a teacher worker panicked"))?;
    let mut run = EndpointRun {
        rationales: Vec::new(),
        requests: requests.into_inner(),
        cached: cached.into_inner(),
        failed: Vec::new(),
    };
    for (record, slot) in records.iter().zip(slots) {
        match slot {
            Some(Ok(r)) => run.rationales.push(r),
            Some(Err(why)) => run.failed.push((record.id.clone(), why)),
            None => run.failed.push((record.id.clone(), "not asked".into())),
        }
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_through_fences_and_refused_when_incomplete() {
        let wrap = |content: &str| {
            serde_json::json!({ "choices": [{ "message": { "role": "assistant", "content": content } }] }).to_string()
        };
        let (note, lab) = parse_answer(&wrap(
            "```json\n{\"note_rationale\": \" a \", \"lab_rationale\": \"b\"}\n```",
        ))
        .unwrap();
        assert_eq!((note.as_str(), lab.as_str()), ("a", "b"));
        assert!(parse_answer(&wrap("{\"note_rationale\": \"a\"}")).is_err());
        assert!(parse_answer(&wrap("no json here")).is_err());
        assert!(
            parse_answer("{\"choices\": [").is_err(),
            "a truncated response"
        );
        assert!(parse_answer("{\"choices\": []}").is_err());
    }
}
