//! The client for OpenAI-compatible servers (llama.cpp's server, llama-cpp-python, vLLM,
//! Ollama): `teach --teacher endpoint` asks one for rationales, `features` for the hidden state of
//! each admission's LEADER prompt. The API is the URL's: `…/chat/completions` (an instruction-tuned
//! model, asked for a JSON object), `…/completions` (a base model, given the few-shot prompt of
//! `training/prompts/`) or `…/embeddings`. Requests run a few at a time, each bounded by a timeout;
//! 429, 5xx, transport errors and unreadable answers are retried with exponential backoff
//! (honouring `Retry-After`). Every answer is cached under the admission id and the request's
//! hash (model and prompt; not the server, so name the model with `--model`), so an interrupted
//! run resumes without asking again, and a changed prompt or model asks anew.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use bedside::PatientRecord;
use bedside::findings::Findings;
use bedside::grounded::MAX_QUOTED_SENTENCES;
use bedside::knowledge::{CHANNELS, channel_description};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::shared::io::write_atomic;
use crate::teachers::{Rationale, lab_rationale};

pub struct EndpointOptions {
    /// The endpoint's URL, e.g. `http://127.0.0.1:8080/v1/chat/completions`.
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
}

/// Which OpenAI API an endpoint URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Chat,
    Completions,
    Embeddings,
}

impl Api {
    pub fn of(url: &str) -> Result<Self> {
        let path = url
            .split(['?', '#'])
            .next()
            .unwrap_or(url)
            .trim_end_matches('/');
        if path.ends_with("/chat/completions") {
            Ok(Self::Chat)
        } else if path.ends_with("/completions") {
            Ok(Self::Completions)
        } else if path.ends_with("/embeddings") {
            Ok(Self::Embeddings)
        } else {
            bail!(
                "{url}: the URL names no OpenAI API; it should end in /v1/chat/completions, /v1/completions or /v1/embeddings"
            )
        }
    }
}

/// The chat prompt for one admission (an instruction-tuned model), with the record's findings
/// inside the first `hours`.
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
    let labels = diagnoses(record);
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
        lab_rationale(record, &Findings::of(record, hours)),
        channels.join("\n"),
        if labels.is_empty() { "(none)" } else { &labels },
    )
}

fn diagnoses(record: &PatientRecord) -> String {
    record
        .labels
        .as_ref()
        .map(|l| l.phenotypes.join("; "))
        .unwrap_or_default()
}

/// The few-shot prompt for a base model (`training/prompts/rationale-fewshot-v1.txt`: two worked
/// cases, then this admission's notes — the sentences a rationale can quote — every lab finding
/// inside the first `hours`, most abnormal first, and the diagnoses); the model continues after
/// "Evidence in the notes:".
pub const FEW_SHOT: &str = include_str!("../../prompts/rationale-fewshot-v1.txt");
/// The few-shot prompt's name, recorded in each rationale's `teacher`.
pub const FEW_SHOT_NAME: &str = "rationale-fewshot-v1";

/// Most findings listed in the few-shot prompt (most abnormal first).
const MAX_PROMPT_FINDINGS: usize = 12;

pub fn few_shot_prompt(record: &PatientRecord, hours: usize) -> String {
    let findings = Findings::of(record, hours);
    let notes: Vec<&str> = findings
        .sentences
        .iter()
        .take(MAX_QUOTED_SENTENCES)
        .map(|s| s.text(record))
        .collect();
    let mut labs: Vec<_> = findings.labs.iter().collect();
    labs.sort_by(|a, b| b.severity.total_cmp(&a.severity));
    let listed: Vec<String> = labs
        .iter()
        .take(MAX_PROMPT_FINDINGS)
        .map(|f| f.statement())
        .collect();
    let or_none = |s: String| if s.is_empty() { "(none)".into() } else { s };
    // the notes, the only free text, go in last: nothing in them is taken for a placeholder
    FEW_SHOT
        .trim_end()
        .replace("{hours}", &hours.to_string())
        .replace("{findings}", &or_none(listed.join(" ")))
        .replace("{diagnoses}", &or_none(diagnoses(record)))
        .replace("{notes}", &or_none(notes.join(" ")))
}

fn cache_file(dir: &Path, id: &str, request: &str) -> PathBuf {
    let hash = bedside::bundle::sha256_hex(request.as_bytes());
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

/// The two rationales of one answer (also the form the cache keeps).
#[derive(Serialize, Deserialize)]
pub struct Answer {
    pub note_rationale: String,
    pub lab_rationale: String,
}

/// The one piece of an answer bedside reads: the first choice's text. A chat answer holds it in
/// `message.content`, a completion in `text`, and a streamed answer (server-sent events, which
/// some servers and proxies send even unasked) in the `delta.content` or `text` of each
/// `data:` chunk until `data: [DONE]`.
fn answer_text(body: &str) -> Result<String> {
    let piece = |chunk: &Value, key: &str| -> Option<String> {
        let choice = chunk.pointer("/choices/0")?;
        choice
            .pointer(&format!("/{key}/content"))
            .or_else(|| choice.get("text"))
            .map(|v| v.as_str().unwrap_or("").to_string())
    };
    if body.trim_start().starts_with('{') {
        let value: Value =
            serde_json::from_str(body).context("the response is not a completion")?;
        return piece(&value, "message").context("the response has no choice with text");
    }
    let (mut text, mut chunks, mut finished) = (String::new(), 0, false);
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data:").map(str::trim) else {
            continue; // comments (": ping"), event names, blank lines
        };
        if data == "[DONE]" {
            finished = true;
            break;
        }
        let chunk: Value = serde_json::from_str(data).context("a streamed chunk is not JSON")?;
        text.push_str(&piece(&chunk, "delta").unwrap_or_default());
        finished |= chunk
            .pointer("/choices/0/finish_reason")
            .is_some_and(Value::is_string);
        chunks += 1;
    }
    ensure!(chunks > 0, "the response is not a completion");
    // a stream cut off before its end is retried, not taken (and cached) as the answer
    ensure!(finished, "the streamed answer was cut off");
    Ok(text)
}

/// The rationales in a chat-completions response body: the JSON object of the message content
/// (code fences and text around it tolerated).
pub fn parse_answer(body: &str) -> Result<Answer> {
    let content = answer_text(body)?;
    let start = content
        .find('{')
        .context("the answer holds no JSON object")?;
    let end = content
        .rfind('}')
        .filter(|&e| e > start)
        .context("the answer's JSON object is not closed")?;
    let answer: Answer = serde_json::from_str(&content[start..=end])
        .context("the answer's JSON object lacks note_rationale or lab_rationale")?;
    Ok(Answer {
        note_rationale: answer.note_rationale.trim().to_string(),
        lab_rationale: answer.lab_rationale.trim().to_string(),
    })
}

/// The rationales in a completions response body: the text continues the few-shot prompt after
/// "Evidence in the notes:", and "Evidence in the labs:" begins the lab rationale; each ends at
/// its line's end.
pub fn parse_completion(body: &str) -> Result<Answer> {
    let text = answer_text(body)?;
    let text = text.split("###").next().unwrap_or("");
    let (note, lab) = text
        .split_once("Evidence in the labs:")
        .unwrap_or((text, ""));
    let first_line = |s: &str| s.trim().lines().next().unwrap_or("").trim().to_string();
    let answer = Answer {
        note_rationale: first_line(note),
        lab_rationale: first_line(lab),
    };
    ensure!(
        !(answer.note_rationale.is_empty() && answer.lab_rationale.is_empty()),
        "the completion is empty"
    );
    Ok(answer)
}

/// The pooled hidden state in an embeddings response body: `data[0].embedding` is one vector, or
/// one per token (llama.cpp without pooling), then averaged.
pub fn parse_embedding(body: &str) -> Result<Vec<f32>> {
    let value: Value = serde_json::from_str(body).context("the response is not JSON")?;
    let embedding = value
        .pointer("/data/0/embedding")
        .context("the response has no data[0].embedding")?;
    let rows: Vec<Vec<f32>> = if embedding.get(0).is_some_and(Value::is_array) {
        serde_json::from_value(embedding.clone())
    } else {
        serde_json::from_value(embedding.clone()).map(|row| vec![row])
    }
    .context("data[0].embedding is not an array of numbers")?;
    let width = rows.first().map_or(0, Vec::len);
    ensure!(width > 0, "data[0].embedding is empty");
    ensure!(
        rows.iter().all(|r| r.len() == width),
        "data[0].embedding's rows differ in length"
    );
    let mut pooled = vec![0.0f32; width];
    for row in &rows {
        for (p, x) in pooled.iter_mut().zip(row) {
            *p += x / rows.len() as f32;
        }
    }
    ensure!(
        pooled.iter().all(|x| x.is_finite()),
        "data[0].embedding holds values that are not finite"
    );
    Ok(pooled)
}

/// One outcome of asking: the answer, or a failure worth retrying (with the server's wait), or not.
enum Attempt<T> {
    Done(T),
    Retry(String, Option<Duration>),
    Fail(String),
}

fn ask<T>(
    agent: &ureq::Agent,
    options: &EndpointOptions,
    body: &Value,
    parse: &(dyn Fn(&str) -> Result<T> + Sync),
) -> Attempt<T> {
    let mut request = agent
        .post(&options.url)
        .header("Content-Type", "application/json");
    if let Some(key) = &options.api_key {
        request = request.header("Authorization", &format!("Bearer {key}"));
    }
    let mut response = match request.send_json(body) {
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
        200..=299 => match parse(&text) {
            Ok(answer) => Attempt::Done(answer),
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

/// What a run did: the answers in input order (failed items are left out and listed).
pub struct Run<T> {
    pub answers: Vec<(String, T)>,
    pub requests: usize,
    pub cached: usize,
    pub failed: Vec<(String, String)>,
}

impl<T> Run<T> {
    /// Says on stderr what the run did (`what`: the command) and why the first failures failed.
    pub fn report(&self, what: &str, started: std::time::Instant) {
        eprintln!(
            "{what}: {} requests, {} answers from the cache, {} failed ({:.0} s)",
            self.requests,
            self.cached,
            self.failed.len(),
            started.elapsed().as_secs_f64()
        );
        for (id, why) in self.failed.iter().take(5) {
            eprintln!("  {id}: {why}");
        }
    }
}

/// Sends one request per `(id, body)`, `concurrency` at a time, each answer read from the cache
/// where it is there and written to it where it is new.
pub fn ask_all<T: Serialize + DeserializeOwned + Send>(
    options: &EndpointOptions,
    requests: &[(String, Value)],
    parse: &(dyn Fn(&str) -> Result<T> + Sync),
) -> Result<Run<T>> {
    std::fs::create_dir_all(&options.cache)
        .with_context(|| format!("cannot create the cache {}", options.cache.display()))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(options.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let next = AtomicUsize::new(0);
    let sent = AtomicUsize::new(0);
    let cached = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<T, String>>>> =
        Mutex::new((0..requests.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..options.concurrency.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((id, body)) = requests.get(i) else {
                        break;
                    };
                    let file = cache_file(&options.cache, id, &body.to_string());
                    let outcome = match std::fs::read(&file)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<T>(&b).ok())
                    {
                        Some(answer) => {
                            cached.fetch_add(1, Ordering::SeqCst);
                            Ok(answer)
                        }
                        None => {
                            let mut wait = options.backoff;
                            let mut outcome = Err("no attempt".to_string());
                            for attempt in 0..=options.retries {
                                sent.fetch_add(1, Ordering::SeqCst);
                                match ask(&agent, options, body, parse) {
                                    Attempt::Done(answer) => {
                                        outcome = serde_json::to_vec(&answer)
                                            .map_err(|e| e.to_string())
                                            .and_then(|bytes| {
                                                write_atomic(&file, &bytes)
                                                    .map_err(|e| format!("{e:#}"))
                                            })
                                            .map(|()| answer);
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
                                            wait = wait.saturating_mul(2);
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
        .map_err(|_| anyhow!("a request worker panicked"))?;
    let mut run = Run {
        answers: Vec::new(),
        requests: sent.into_inner(),
        cached: cached.into_inner(),
        failed: Vec::new(),
    };
    for ((id, _), slot) in requests.iter().zip(slots) {
        match slot {
            Some(Ok(answer)) => run.answers.push((id.clone(), answer)),
            Some(Err(why)) => run.failed.push((id.clone(), why)),
            None => run.failed.push((id.clone(), "not asked".into())),
        }
    }
    Ok(run)
}

/// Longest rationale a base model may write (tokens); the few-shot answers take about 80.
const MAX_COMPLETION_TOKENS: usize = 200;

/// Rationales for `records` from a chat or completions endpoint (raw: [`crate::teachers::ground`]
/// filters them).
pub fn teach(
    records: &[PatientRecord],
    options: &EndpointOptions,
    hours: usize,
) -> Result<Run<Rationale>> {
    let api = Api::of(&options.url)?;
    ensure!(
        api != Api::Embeddings,
        "{}: teach needs a chat or completions endpoint, not embeddings",
        options.url
    );
    let requests: Vec<(String, Value)> = records
        .iter()
        .map(|r| {
            let body = match api {
                Api::Chat => serde_json::json!({
                    "model": options.model,
                    "messages": [{ "role": "user", "content": prompt(r, hours) }],
                    "temperature": 0.0,
                }),
                Api::Completions | Api::Embeddings => serde_json::json!({
                    "model": options.model,
                    "prompt": few_shot_prompt(r, hours),
                    "max_tokens": MAX_COMPLETION_TOKENS,
                    "temperature": 0.0,
                    "stop": ["###"],
                }),
            };
            (r.id.clone(), body)
        })
        .collect();
    let parse: &(dyn Fn(&str) -> Result<Answer> + Sync) = match api {
        Api::Chat => &parse_answer,
        _ => &parse_completion,
    };
    let run = ask_all(options, &requests, parse)?;
    let teacher = match api {
        Api::Chat => format!("endpoint:{}", options.model),
        _ => format!("endpoint:{}:{FEW_SHOT_NAME}", options.model),
    };
    Ok(Run {
        answers: run
            .answers
            .into_iter()
            .map(|(id, a)| {
                let r = Rationale {
                    id: id.clone(),
                    note_rationale: a.note_rationale,
                    lab_rationale: a.lab_rationale,
                    teacher: teacher.clone(),
                };
                (id, r)
            })
            .collect(),
        requests: run.requests,
        cached: run.cached,
        failed: run.failed,
    })
}

/// The pooled hidden state of each `(id, text)` from an embeddings endpoint.
pub fn embed(texts: &[(String, String)], options: &EndpointOptions) -> Result<Run<Vec<f32>>> {
    ensure!(
        Api::of(&options.url)? == Api::Embeddings,
        "{}: features needs an embeddings endpoint (…/v1/embeddings)",
        options.url
    );
    let requests: Vec<(String, Value)> = texts
        .iter()
        .map(|(id, text)| {
            (
                id.clone(),
                serde_json::json!({ "model": options.model, "input": text }),
            )
        })
        .collect();
    ask_all(options, &requests, &parse_embedding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_through_fences_and_refused_when_incomplete() {
        let wrap = |content: &str| {
            serde_json::json!({ "choices": [{ "message": { "role": "assistant", "content": content } }] }).to_string()
        };
        let a = parse_answer(&wrap(
            "```json\n{\"note_rationale\": \" a \", \"lab_rationale\": \"b\"}\n```",
        ))
        .unwrap();
        assert_eq!(
            (a.note_rationale.as_str(), a.lab_rationale.as_str()),
            ("a", "b")
        );
        assert!(parse_answer(&wrap("{\"note_rationale\": \"a\"}")).is_err());
        assert!(parse_answer(&wrap("no json here")).is_err());
        assert!(
            parse_answer("{\"choices\": [").is_err(),
            "a truncated response"
        );
        assert!(parse_answer("{\"choices\": []}").is_err());
    }

    #[test]
    fn completions_are_read_up_to_each_line_end() {
        let wrap = |text: &str| serde_json::json!({ "choices": [{ "text": text }] }).to_string();
        let a = parse_completion(&wrap(
            " Fever on arrival.\nEvidence in the labs: Lactate was high at 4.2 mmol/L.\nDiscussion: more",
        ))
        .unwrap();
        assert_eq!(a.note_rationale, "Fever on arrival.");
        assert_eq!(a.lab_rationale, "Lactate was high at 4.2 mmol/L.");
        let a = parse_completion(&wrap(" Fever.\n###\nEvidence in the labs: x")).unwrap();
        assert_eq!(
            (a.note_rationale.as_str(), a.lab_rationale.as_str()),
            ("Fever.", "")
        );
        assert!(parse_completion(&wrap("  \n")).is_err());
        assert!(parse_completion(&serde_json::json!({ "choices": [{}] }).to_string()).is_err());
    }

    #[test]
    fn streamed_answers_are_read_like_whole_ones() {
        // llama-cpp-python's server-sent events, pings included
        let chunk = |delta: &str| {
            format!(
                "data: {{\"object\": \"chat.completion.chunk\", \"choices\": [{{\"index\": 0, \"delta\": {delta}, \"finish_reason\": null}}]}}\n\n"
            )
        };
        let body = format!(
            ": ping - 2026-11-29 18:28:02\n\n{}{}{}{}data: [DONE]\n\n",
            chunk("{\"role\": \"assistant\"}"),
            chunk(r#"{"content": "{\"note_rationale\": \"a\", "}"#),
            chunk(r#"{"content": "\"lab_rationale\": \"b\"}"}"#),
            chunk("{}"),
        );
        let a = parse_answer(&body).unwrap();
        assert_eq!(
            (a.note_rationale.as_str(), a.lab_rationale.as_str()),
            ("a", "b")
        );
        let body = "data: {\"object\": \"text_completion\", \"choices\": [{\"text\": \" Fever.\\nEvidence in the labs: \"}]}\n\ndata: {\"choices\": [{\"text\": \"Lactate was high.\"}]}\n\ndata: [DONE]\n";
        let a = parse_completion(body).unwrap();
        assert_eq!(
            (a.note_rationale.as_str(), a.lab_rationale.as_str()),
            ("Fever.", "Lactate was high.")
        );
        assert!(parse_completion(": ping\n\n").is_err());
        let cut = body.replace("data: [DONE]\n", "");
        assert!(parse_completion(&cut).is_err(), "a stream without its end");
        assert!(parse_completion("data: {not json\n").is_err());
    }

    #[test]
    fn embeddings_are_pooled_over_tokens() {
        let body = |e: Value| serde_json::json!({ "data": [{ "embedding": e }] }).to_string();
        assert_eq!(
            parse_embedding(&body(serde_json::json!([1.0, 2.0]))).unwrap(),
            [1.0, 2.0]
        );
        assert_eq!(
            parse_embedding(&body(serde_json::json!([[1.0, 2.0], [3.0, 6.0]]))).unwrap(),
            [2.0, 4.0]
        );
        assert!(parse_embedding(&body(serde_json::json!([[1.0], [1.0, 2.0]]))).is_err());
        assert!(parse_embedding(&body(serde_json::json!([]))).is_err());
        assert!(parse_embedding(&body(serde_json::json!(["a"]))).is_err());
        assert!(parse_embedding("{\"data\": []}").is_err());
    }

    #[test]
    fn the_api_is_the_urls() {
        let api = |u: &str| Api::of(u).ok();
        assert_eq!(api("http://h/v1/chat/completions"), Some(Api::Chat));
        assert_eq!(api("http://h/v1/completions/"), Some(Api::Completions));
        assert_eq!(api("http://h/v1/embeddings?x=1"), Some(Api::Embeddings));
        assert_eq!(api("http://h/v1/models"), None);
    }

    #[test]
    fn the_few_shot_prompt_lists_the_record_and_ends_where_the_model_writes() {
        let record = bedside::self_test::self_test_record();
        let p = few_shot_prompt(&record, 48);
        assert!(p.ends_with("Evidence in the notes:"), "{p}");
        assert!(!p.contains('{'), "a placeholder is left: {p}");
        let case = &p[p.rfind("### Case").unwrap()..];
        assert!(
            case.contains("Lactate was high at 4.20 mmol/L at hour 1"),
            "{case}"
        );
        assert!(case.contains(&record.notes[0].text), "{case}");
    }
}
