//! What a run reads, prepared once: each admission tokenized for every stage, the batches
//! of a stage, the split, the tokenizer and the diagnosis grammar.

use std::collections::BTreeMap;

use crate::teachers::grounding::picks_from_text;
use anyhow::{Context, Result, ensure};
use bedside::constrained::DiagnosisGrammar;
use bedside::findings::Findings;
use bedside::grounded::RationaleVocab;
use bedside::knowledge::PHENOTYPES;
use bedside::model::ClinicalInput;
use bedside::model::input::{length_mask, pad_ids};
use bedside::model::knowledge_attention::knowledge_token_ids;
use bedside::prompt::{clinical_prompt, target_text};
use bedside::record::{PatientRecord, SeriesGrid};
use bedside::tokenizer::TextTokenizer;
use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::RunConfig;
use super::pretrained::Pretrained;
use super::run::Run;
use crate::shared::io::write_atomic;
use crate::teachers::{self, Rationale};

/// One admission, tokenized for every stage.
pub(crate) struct Example {
    notes_prompt: Vec<u32>,
    pub(crate) both_prompt: Vec<u32>,
    pub(crate) grid: SeriesGrid,
    targets: [Vec<u32>; 3],
    pub(crate) phenotypes: Vec<bool>,
    /// Whether the admission has notes (its probabilities take the matching temperature).
    pub(crate) has_notes: bool,
}

pub(crate) fn example(
    record: &PatientRecord,
    rationale: Option<&Rationale>,
    tok: &TextTokenizer,
    config: &RunConfig,
) -> Result<Example> {
    let labels: Vec<&str> = record
        .labels
        .as_ref()
        .map(|l| l.phenotypes.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let generated;
    let r = match rationale {
        Some(r) => r,
        None => {
            generated = teachers::knowledge_teacher(record, config.hours);
            &generated
        }
    };
    let enc = |text: &str, max| tok.encode_at_most(text, max);
    let p = config.max_prompt_tokens;
    let t = config.max_target_tokens;
    let findings = Findings::of(record, config.hours);
    let notes_prompt = enc(&clinical_prompt(record, &findings, true, false), p)?;
    let both_prompt = enc(&clinical_prompt(record, &findings, true, true), p)?;
    // the teacher's statements as the record's findings, each only where the model can see it
    let vocab = RationaleVocab::new(tok)
        .context("the tokenizer lacks the grounded rationale's reserved tokens")?;
    let (notes, _) = picks_from_text(record, &findings, &r.note_rationale, "");
    let (labs, _) = picks_from_text(record, &findings, "", &r.lab_rationale);
    let note_choices = vocab.choices(
        &Findings {
            labs: Vec::new(),
            ..findings.clone()
        },
        &notes_prompt,
    );
    let lab_choices = vocab.choices(
        &Findings {
            sentences: Vec::new(),
            ..findings.clone()
        },
        &[],
    );
    let both: Vec<u32> = note_choices.iter().chain(&lab_choices).copied().collect();
    let all: Vec<_> = notes.iter().chain(&labs).copied().collect();
    Ok(Example {
        notes_prompt,
        both_prompt,
        grid: SeriesGrid::from_record(record, config.hours),
        targets: [
            enc(
                &target_text(&labels, &vocab.target(&notes, &note_choices)),
                t,
            )?,
            enc(&target_text(&labels, &vocab.target(&labs, &lab_choices)), t)?,
            enc(&target_text(&labels, &vocab.target(&all, &both)), t)?,
        ],
        phenotypes: PHENOTYPES
            .iter()
            .map(|p| labels.contains(&p.name))
            .collect(),
        has_notes: !record.notes.is_empty(),
    })
}

pub(crate) struct Batch {
    pub input: ClinicalInput,
    pub targets: Tensor<2, Int>,
    pub target_mask: Tensor<2>,
    pub phenotypes: Tensor<2, Int>,
}

pub(crate) fn batch(examples: &[&Example], stage: usize, device: &Device) -> Batch {
    let prompts: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| match stage {
            0 => e.notes_prompt.clone(),
            _ => e.both_prompt.clone(),
        })
        .collect();
    let grids: Vec<&SeriesGrid> = examples.iter().map(|e| &e.grid).collect();
    let series = (stage > 0).then(|| SeriesGrid::tensors(&grids, device));
    // stage 2 reads the channel tokens alone, as in ClinRaGen
    let text = (stage != 1).then(|| pad_ids(&prompts, device));
    let targets: Vec<Vec<u32>> = examples.iter().map(|e| e.targets[stage].clone()).collect();
    let (targets, lengths) = pad_ids(&targets, device);
    let target_mask = length_mask(&lengths, lengths.len(), targets.dims()[1], device);
    let labels: Vec<i64> = examples
        .iter()
        .flat_map(|e| e.phenotypes.iter().map(|&b| i64::from(b)))
        .collect();
    let phenotypes = Tensor::<1, Int>::from_data(
        TensorData::new(labels, [examples.len() * PHENOTYPES.len()]),
        device,
    )
    .reshape([examples.len(), PHENOTYPES.len()]);
    Batch {
        input: ClinicalInput { text, series },
        targets,
        target_mask,
        phenotypes,
    }
}

/// The admissions a run reads: those of its cohort files, split three ways by patient (the
/// test side is never read), and the built-in synthetic ones (no test side: its test admissions
/// are other seeds).
pub struct Admissions {
    pub cohorts: Vec<PatientRecord>,
    pub synthetic: Vec<PatientRecord>,
}

impl Admissions {
    /// The admissions a run trains and validates on, with the indexes of each side; the notes
    /// of `note_dropout` of the training admissions with notes dropped (seeded).
    fn split(&self, config: &RunConfig) -> (Vec<PatientRecord>, Vec<usize>, Vec<usize>) {
        let (mut records, mut train, mut validation) = (Vec::new(), Vec::new(), Vec::new());
        for (source, split) in [
            (&self.cohorts, config.split),
            (&self.synthetic, config.split.without_test()),
        ] {
            let [on_train, on_validation, _test] = split.sides(source);
            for (side, rows) in [(&mut train, on_train), (&mut validation, on_validation)] {
                for i in rows {
                    side.push(records.len());
                    records.push(source[i].clone());
                }
            }
        }
        let mut rng = StdRng::seed_from_u64(config.seed ^ 0x6e6f_7465);
        for &i in &train {
            if !records[i].notes.is_empty() && rng.random::<f64>() < config.note_dropout {
                records[i].notes.clear();
            }
        }
        (records, train, validation)
    }

    pub fn len(&self) -> usize {
        self.cohorts.len() + self.synthetic.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything a run reads, prepared once.
pub(super) struct Data {
    /// Tokens needed to write the longest validation diagnosis list and the rationale marker.
    pub(super) diagnosis_tokens: usize,
    pub(super) grammar: Option<DiagnosisGrammar>,
    pub(super) tokenizer: TextTokenizer,
    pub(super) knowledge_ids: Vec<u32>,
    pub(super) examples: Vec<Example>,
    pub(super) train: Vec<usize>,
    pub(super) validation: Vec<usize>,
}

impl Data {
    /// The rows validation reads: the validation split, or the training split where a run has
    /// too few admissions for one.
    pub(super) fn validation_rows(&self) -> &[usize] {
        if self.validation.is_empty() {
            &self.train
        } else {
            &self.validation
        }
    }
}

impl Run {
    pub(super) fn data(
        &self,
        admissions: &Admissions,
        pretrained: Option<&Pretrained>,
    ) -> Result<Data> {
        let config = &self.config;
        let (records, train, validation) = admissions.split(config);
        let records = records.as_slice();
        let rationales: BTreeMap<String, Rationale> = match self.resolve(&config.rationales) {
            Some(path) => teachers::read_jsonl(&path)?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect(),
            None => BTreeMap::new(),
        };
        let run_tokenizer = self.dir.join("tokenizer.json");
        let json = match self.resolve(&config.tokenizer) {
            _ if let Some(pretrained) = pretrained => pretrained.tokenizer.clone(),
            Some(path) => {
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?
            }
            None if run_tokenizer.exists() => std::fs::read(&run_tokenizer)?,
            None => {
                let texts: Vec<String> = records
                    .iter()
                    .map(|r| teachers::knowledge_teacher(r, config.hours))
                    .flat_map(|r| [r.note_rationale, r.lab_rationale])
                    .chain(
                        rationales
                            .values()
                            .flat_map(|r| [r.note_rationale.clone(), r.lab_rationale.clone()]),
                    )
                    .collect();
                crate::pipelines::tokenizer::train(
                    crate::pipelines::tokenizer::corpus(records, &texts),
                    config.vocab_size,
                )?
                .into_bytes()
            }
        };
        write_atomic(&run_tokenizer, &json)?;
        let tokenizer = TextTokenizer::from_bytes(&json)?;
        let knowledge_ids = knowledge_token_ids(&tokenizer)?;
        let examples = records
            .iter()
            .map(|r| {
                example(r, rationales.get(&r.id), &tokenizer, config)
                    .with_context(|| format!("admission {}", r.id))
            })
            .collect::<Result<Vec<_>>>()?;
        ensure!(!train.is_empty(), "no admissions to train on");
        let diagnosis_tokens = records
            .iter()
            .map(|r| {
                let labels: Vec<&str> = r
                    .labels
                    .as_ref()
                    .map(|l| l.phenotypes.iter().map(String::as_str).collect())
                    .unwrap_or_default();
                tokenizer
                    .encode(&target_text(&labels, ""))
                    .map(|ids| ids.len())
            })
            .collect::<bedside::Result<Vec<_>>>()?
            .into_iter()
            .max()
            .unwrap_or(0)
            + 4;
        let labels: Vec<&str> = PHENOTYPES.iter().map(|p| p.name).collect();
        let grammar = DiagnosisGrammar::new(&tokenizer, &labels);
        Ok(Data {
            diagnosis_tokens,
            grammar,
            tokenizer,
            knowledge_ids,
            examples,
            train,
            validation,
        })
    }
}
