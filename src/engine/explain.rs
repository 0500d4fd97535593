//! `explain`: the decoder writes the diagnosis list, held by the grammar to exactly the head's
//! selection, then a rationale that picks only the record's own findings; both stream to the
//! caller as they are written.

use super::{Engine, Loaded};
use crate::bundle::MANIFEST_FILE;
use crate::chart::{ChannelSeries, channel_series};
use crate::constrained::DiagnosisGrammar;
use crate::error::{BedsideError, Result};
use crate::findings::Findings;
use crate::generate::{self, GenerateOptions};
use crate::grounded::{Evidence, Fact, RationaleVocab, evidence};
use crate::knowledge::{CHANNELS, PHENOTYPES};
use crate::model::{ClinicalInput, ClinicalModel, Encoded};
use crate::out_of_range::OutOfRange;
use crate::record::{PatientRecord, SeriesGrid};
use crate::tokenizer::TOKENIZER_FILE;
use serde::Serialize;

/// What `explain` returns: the answer as text for people, its diagnoses, the rationale rendered
/// from the record's findings with its evidence, and the knowledge attention.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub id: String,
    /// The diagnoses and the rationale as the stream wrote them: "A; B." then one sentence per
    /// stated fact.
    pub text: String,
    /// The phenotype names the decoder wrote: exactly those the phenotype head puts at or above
    /// the bundle's threshold (`diagnose`'s `diagnosed`), in the decoder's order.
    pub diagnoses: Vec<String>,
    /// The stated facts, rendered from the record (empty for a bundle without grounded rationales).
    pub rationale: String,
    /// One entry per (diagnosis, stated fact) the knowledge base links.
    pub evidence: Vec<Evidence>,
    pub tokens: usize,
    /// Channel names, in the rows of `knowledge_attention`.
    pub channels: Vec<&'static str>,
    /// `[channel][prototype]` attention weights of the knowledge attention, averaged over heads.
    pub knowledge_attention: Vec<Vec<f32>>,
    /// The observed lab and vital channels as the model read them, with where in time it looked.
    pub series: Vec<ChannelSeries>,
    /// Why the record is outside the model's range, when it is: then nothing is written but the
    /// reasons ([`crate::out_of_range`]).
    pub out_of_range: Option<OutOfRange>,
    pub backend: &'static str,
}

impl Engine {
    /// Generates the diagnoses and rationale for a record (greedy; the diagnosis list constrained
    /// to the names the phenotype head selects, the rationale to the record's findings), calling
    /// `on_piece` with each new piece of text as it is decoded. `on_piece` returns whether to go
    /// on: `false` stops decoding after that token, and the call ends with
    /// [`BedsideError::Aborted`].
    pub async fn explain(
        &self,
        record: &PatientRecord,
        options: &GenerateOptions,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Explanation> {
        let Loaded::Clinical {
            model,
            tokenizer,
            grammar,
            vocab,
            host,
        } = &self.model
        else {
            return Err(BedsideError::Incompatible {
                file: MANIFEST_FILE.into(),
                message: "this bundle's model (lab-phenotype) cannot write rationales; use a clinical bundle".into(),
            });
        };
        let Some(grammar) = grammar else {
            return Err(BedsideError::Incompatible {
                file: TOKENIZER_FILE.into(),
                message:
                    "the tokenizer does not write the diagnosis template as the grammar expects"
                        .into(),
            });
        };
        record.validate()?;
        let hours = self.manifest.model.hours();
        let grid = SeriesGrid::from_record(record, hours);
        if let Some(out) = OutOfRange::of(record, &grid) {
            let text = out.text();
            if !on_piece(&text) {
                return Err(BedsideError::Aborted("explain"));
            }
            return Ok(Explanation {
                id: record.id.clone(),
                text,
                diagnoses: Vec::new(),
                rationale: String::new(),
                evidence: Vec::new(),
                tokens: 0,
                channels: CHANNELS.iter().map(|c| c.name).collect(),
                knowledge_attention: Vec::new(),
                series: Vec::new(),
                out_of_range: Some(out),
                backend: self.backend.name(),
            });
        }
        let findings = Findings::of(record, hours);
        let prompt = self.prompt_ids(tokenizer, record, &findings)?;
        let input = self.input_of(std::slice::from_ref(&prompt), std::slice::from_ref(&grid));
        let encoded = model.encode(&input);
        // one answer: the list is exactly the head's selection, in the order the decoder writes it
        let probabilities = self
            .read_back(self.calibrated(
                model.phenotype_logits(&encoded),
                std::slice::from_ref(record),
            ))
            .await?;
        if probabilities.len() != PHENOTYPES.len() || probabilities.iter().any(|p| !p.is_finite()) {
            return Err(BedsideError::backend(
                self.backend.name(),
                "the model returned non-finite or mis-shaped probabilities",
            ));
        }
        let selected: Vec<bool> = probabilities
            .iter()
            .map(|p| *p >= self.manifest.threshold)
            .collect();
        // the rationale: each of the record's findings at most once (none without the vocabulary)
        let choices = vocab
            .as_ref()
            .map(|v| v.choices(&findings, &prompt))
            .unwrap_or_default();
        let eos = tokenizer.eos_id();
        let constraint = |prefix: &[u32]| match grammar.split(prefix) {
            Some((_, rationale)) => Some(RationaleVocab::allowed(&choices, rationale, eos)),
            None => grammar.allowed_among(prefix, Some(&selected)),
        };
        let answer = ReadBack {
            record,
            findings: &findings,
            grammar,
            vocab: vocab.as_ref(),
        };
        let mut ids: Vec<u32> = Vec::new();
        let mut shown = String::new();
        let mut go_on = true;
        let mut stream = |_: usize, token: u32| {
            ids.push(token);
            if let Ok(read) = answer.read(&ids, false) {
                if let Some(piece) = read.text.strip_prefix(shown.as_str())
                    && !piece.is_empty()
                {
                    go_on = on_piece(piece);
                }
                shown = read.text;
            }
            go_on
        };
        let t5 = &model.lm;
        let generated = generate::greedy(
            t5,
            host.as_ref(),
            encoded.hidden.clone(),
            encoded.mask.clone(),
            t5.decoder_start(),
            eos,
            options,
            Some(&constraint),
            &mut stream,
        )
        .await?;
        if !go_on {
            return Err(BedsideError::Aborted("explain"));
        }
        let tokens = generated.first().cloned().unwrap_or_default();
        let read = answer.read(&tokens, true)?;
        // what only the final reading adds (a last label where generation stopped in the list)
        if let Some(rest) = read
            .text
            .strip_prefix(shown.as_str())
            .filter(|r| !r.is_empty())
        {
            on_piece(rest);
        }
        let (series, knowledge_attention) = self.attention(model, &input, encoded, &grid).await?;
        let diagnoses: Vec<&str> = read.diagnoses.iter().map(|d| d.name).collect();
        Ok(Explanation {
            id: record.id.clone(),
            evidence: evidence(record, &read.facts, &diagnoses),
            diagnoses: diagnoses.iter().map(|d| d.to_string()).collect(),
            rationale: read
                .facts
                .iter()
                .map(|f| f.render(record))
                .collect::<Vec<_>>()
                .join(" "),
            tokens: tokens.len(),
            text: read.text,
            channels: CHANNELS.iter().map(|c| c.name).collect(),
            knowledge_attention,
            series,
            out_of_range: None,
            backend: self.backend.name(),
        })
    }

    /// What the page charts beside the answer: each channel's hourly series with the series
    /// encoder's attention over it, and the knowledge attention per channel (mean over heads).
    async fn attention(
        &self,
        model: &ClinicalModel,
        input: &ClinicalInput,
        encoded: Encoded,
        grid: &SeriesGrid,
    ) -> Result<(Vec<ChannelSeries>, Vec<Vec<f32>>)> {
        let series = match &input.series {
            Some((values, observed)) => {
                let weights = model
                    .series
                    .patch_attention(values.clone(), observed.clone());
                let weights = self.read_back(weights).await?;
                channel_series(grid, &weights, &model.series.patch_hours(grid.hours))
            }
            None => Vec::new(),
        };
        let knowledge_attention = match encoded.knowledge_weights {
            Some(weights) => {
                let [_, _, channels, prototypes] = weights.dims();
                let mean = weights.mean_dim(1).reshape([channels, prototypes]);
                let values = self.read_back(mean).await?;
                values
                    .chunks(prototypes.max(1))
                    .map(<[f32]>::to_vec)
                    .collect()
            }
            None => Vec::new(),
        };
        Ok((series, knowledge_attention))
    }
}

/// A generated target read back: the complete label names written, the facts the rationale
/// picked, and the text for people ("A; B." and a sentence per fact).
struct Read<'a> {
    diagnoses: Vec<&'static crate::knowledge::Phenotype>,
    facts: Vec<Fact<'a>>,
    text: String,
}

/// What reads a generated target back for one record.
struct ReadBack<'a> {
    record: &'a PatientRecord,
    findings: &'a Findings,
    grammar: &'a DiagnosisGrammar,
    vocab: Option<&'a RationaleVocab>,
}

impl<'a> ReadBack<'a> {
    /// Reads `tokens`: the labels the grammar says were written (no text parsed back), the
    /// rationale's picks, and the text for people. `finished`: generation has ended (it can stop
    /// inside the list).
    fn read(&self, tokens: &[u32], finished: bool) -> Result<Read<'a>> {
        let (list, rationale) = self
            .grammar
            .split(tokens)
            .map_or((tokens, None), |(l, r)| (l, Some(r)));
        let written = self.grammar.written(list);
        let mut labels = written.closed;
        // while decoding a label is shown once the next one or the end begins, so that the text
        // only ever grows; at the end a last complete label counts too
        if finished {
            labels.extend(written.pending);
        }
        let diagnoses: Vec<&'static crate::knowledge::Phenotype> =
            labels.iter().filter_map(|&i| PHENOTYPES.get(i)).collect();
        // every pick must be a fact of the record: the constraint allows no other, so one that is
        // not is a fault to report, never a sentence to drop quietly
        let picks = match (rationale, self.vocab) {
            (Some(r), Some(vocab)) => r.iter().filter_map(|t| vocab.pick(*t)).collect(),
            _ => Vec::new(),
        };
        let facts = picks
            .into_iter()
            .map(|p| {
                Fact::of(p, self.findings).ok_or_else(|| {
                    BedsideError::backend(
                        "explain",
                        format!(
                            "the decoder picked {}, which the record does not have",
                            p.token()
                        ),
                    )
                })
            })
            .collect::<Result<Vec<Fact<'a>>>>()?;
        // short names: the full group names hold semicolons ("Pleurisy; pneumothorax; ...")
        let mut text = diagnoses
            .iter()
            .map(|p| p.short)
            .collect::<Vec<_>>()
            .join("; ");
        if rationale.is_some() {
            text.push_str(if diagnoses.is_empty() {
                "No diagnosis."
            } else {
                "."
            });
            for fact in &facts {
                text.push(' ');
                text.push_str(&fact.render(self.record));
            }
        }
        Ok(Read {
            diagnoses,
            facts,
            text,
        })
    }
}
