//! Checkpoints: the progress kept between runs, and the weights, optimizer state and
//! parameter ids written next to the current checkpoint and swapped in whole.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, anyhow};
use bedside::model::ClinicalModel;
use burn::module::{ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::run::Run;
use crate::shared::fit::save_weights;
use crate::shared::io::write_atomic;

pub(crate) const CHECKPOINT: &str = "checkpoint";

/// Progress kept in `checkpoint/state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    /// Stage (0, 1, 2) and epoch in it being worked on, and batches of that epoch already done.
    pub stage: usize,
    pub epoch: usize,
    pub batch: usize,
    /// Steps of the current stage so far (for the learning-rate schedule).
    pub step: usize,
    /// The stage's best validation score (see [`RunConfig::patience`]).
    pub best_f1: f64,
    pub epochs_without_improvement: usize,
    pub done: bool,
    /// Stage 0, once it ran (models with a wide head: [`crate::pipelines::distill::wide_fit`]).
    #[serde(default)]
    pub wide_fit: Option<crate::pipelines::distill::wide_fit::WideFit>,
    /// What every finished epoch measured on the validation split.
    pub history: Vec<EpochRecord>,
}

impl Progress {
    /// Where a run without a checkpoint starts: the first stage, no best score yet.
    pub fn fresh() -> Self {
        Progress {
            best_f1: -1.0,
            ..Progress::default()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochRecord {
    pub stage: usize,
    pub epoch: usize,
    pub train_loss: f64,
    /// Micro-F1 of the diagnoses the decoder writes when only the grammar constrains it (not
    /// the head's selection, as `explain` does).
    pub generated_micro_f1: f64,
    /// The phenotype head at threshold 0.5 (what early stopping watches: `explain` writes
    /// exactly the head's selection), and its macro AUROC.
    pub head_micro_f1: f64,
    pub head_macro_auroc: f64,
}

/// Collects the id of every parameter by path, so that optimizer state (keyed by id) can be
/// re-attached to a rebuilt model.
#[derive(Default)]
pub(super) struct IdCollector {
    pub(super) path: Vec<String>,
    pub(super) ids: BTreeMap<String, u64>,
}

impl ModuleVisitor for IdCollector {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.ids.insert(self.path.join("."), param.id.val());
    }
}

/// Gives every parameter the id it had when the checkpoint was written.
pub(super) struct IdSetter<'a> {
    pub(super) path: Vec<String>,
    pub(super) ids: &'a BTreeMap<String, u64>,
}

impl ModuleMapper for IdSetter<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if let Some(id) = self.ids.get(&self.path.join(".")) {
            param.id = ParamId::from(*id);
        }
        param
    }
}

impl Run {
    /// Writes a complete checkpoint next to the current one, then swaps it in: a kill at any
    /// moment leaves either the old or the new checkpoint whole.
    pub(super) fn checkpoint(
        &self,
        model: &ClinicalModel,
        optimizer: &burn::optim::ModuleOptimizer,
        progress: &Progress,
    ) -> Result<()> {
        let fresh = self.dir.join("checkpoint-new");
        let old = self.dir.join("checkpoint-old");
        let current = self.dir.join(CHECKPOINT);
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh)?;
        }
        std::fs::create_dir_all(&fresh)?;
        save_weights(model, &fresh.join("model.safetensors"))?;
        optimizer
            .save(fresh.join("optimizer.bpk"))
            .map_err(|e| anyhow!("saving optimizer state: {e:?}"))?;
        let mut ids = IdCollector::default();
        model.visit(&mut ids);
        write_atomic(
            &fresh.join("param_ids.json"),
            serde_json::to_string(&ids.ids)?.as_bytes(),
        )?;
        write_atomic(
            &fresh.join("state.json"),
            serde_json::to_string_pretty(progress)?.as_bytes(),
        )?;
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        if current.exists() {
            std::fs::rename(&current, &old)?;
        }
        std::fs::rename(&fresh, &current)?;
        std::fs::remove_dir_all(&old).ok();
        Ok(())
    }

    /// The last complete checkpoint, if any (`checkpoint/`, or `checkpoint-old/` when a kill came
    /// between the two renames of [`Self::checkpoint`]).
    pub(super) fn last_checkpoint(&self) -> Option<PathBuf> {
        [CHECKPOINT, "checkpoint-old"]
            .iter()
            .map(|name| self.dir.join(name))
            .find(|dir| dir.join("state.json").exists())
    }
}
