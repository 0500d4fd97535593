//! Constrained decoding of the diagnosis part of a target: after `### Disease Diagnosed:` the
//! decoder may only write valid label names, separated by commas, each at most once, then ` .
//! ### Rationale:`; the rationale after it is free text.
//!
//! Label names are tokenized in both contexts in which they occur (first, after the header's
//! space; later, straight after a comma), so the allowed token sequences are exactly what the
//! tokenizer produces for well-formed targets.

use crate::prompt::{DIAGNOSED, RATIONALE};
use crate::tokenizer::TextTokenizer;

#[derive(Debug, Clone)]
pub struct DiagnosisGrammar {
    header: Vec<u32>,
    /// Token sequences of each label: as the first label, and after a comma.
    first: Vec<Vec<u32>>,
    later: Vec<Vec<u32>>,
    comma: Vec<u32>,
    end: Vec<u32>,
}

fn body(tokenizer: &TextTokenizer, text: &str) -> Option<Vec<u32>> {
    let mut ids = tokenizer.encode(text).ok()?;
    if ids.last() == Some(&tokenizer.eos_id()) {
        ids.pop();
    }
    Some(ids)
}

fn strip<'a>(ids: &'a [u32], prefix: &[u32]) -> Option<&'a [u32]> {
    ids.strip_prefix(prefix).filter(|rest| !rest.is_empty())
}

impl DiagnosisGrammar {
    /// The grammar for `labels` under `tokenizer`; `None` when the tokenizer splits the template
    /// differently from what the grammar assumes (decoding then runs unconstrained).
    pub fn new(tokenizer: &TextTokenizer, labels: &[&str]) -> Option<Self> {
        let header = body(tokenizer, DIAGNOSED)?;
        let anchor = labels.first()?;
        let anchored = body(tokenizer, &format!("{DIAGNOSED} {anchor}"))?;
        let with_comma = body(tokenizer, &format!("{DIAGNOSED} {anchor},"))?;
        let comma = strip(&with_comma, &anchored)?.to_vec();
        let end = strip(&body(tokenizer, &format!("{DIAGNOSED} {anchor} . {RATIONALE}"))?, &anchored)?.to_vec();
        let mut first = Vec::new();
        let mut later = Vec::new();
        for label in labels {
            first.push(strip(&body(tokenizer, &format!("{DIAGNOSED} {label}"))?, &header)?.to_vec());
            later.push(strip(&body(tokenizer, &format!("{DIAGNOSED} {anchor},{label}"))?, &with_comma)?.to_vec());
        }
        Some(Self { header, first, later, comma, end })
    }

    /// `prefix` cut after the diagnosis list's end marker (`. ### Rationale:`): the list part and
    /// the rationale part; `None` while the list is not finished.
    pub fn split<'a>(&self, prefix: &'a [u32]) -> Option<(&'a [u32], &'a [u32])> {
        let rest = prefix.strip_prefix(self.header.as_slice())?;
        let at = rest.windows(self.end.len()).position(|w| w == self.end.as_slice())?;
        Some(prefix.split_at(self.header.len() + at + self.end.len()))
    }

    /// The tokens allowed after `prefix` (generated tokens, start token excluded); `None` = any.
    pub fn allowed(&self, prefix: &[u32]) -> Option<Vec<u32>> {
        // header
        if prefix.len() < self.header.len() {
            return if self.header.starts_with(prefix) { Some(vec![self.header[prefix.len()]]) } else { None };
        }
        if !prefix.starts_with(&self.header) {
            return None;
        }
        let mut rest = &prefix[self.header.len()..];
        let mut chosen: Vec<usize> = Vec::new();
        loop {
            let options = if chosen.is_empty() { &self.first } else { &self.later };
            // a complete label followed by more tokens
            let complete = options
                .iter()
                .enumerate()
                .filter(|(i, seq)| !chosen.contains(i) && rest.starts_with(seq))
                .max_by_key(|(_, seq)| seq.len());
            let partial: Vec<u32> = options
                .iter()
                .enumerate()
                .filter(|(i, seq)| !chosen.contains(i) && seq.len() > rest.len() && seq.starts_with(rest))
                .map(|(_, seq)| seq[rest.len()])
                .collect();
            match complete {
                Some((i, seq)) if rest.len() >= seq.len() => {
                    let after = &rest[seq.len()..];
                    if after.is_empty() {
                        // a label just ended: continue it (a longer label), a comma, or the end
                        let mut next = partial;
                        if chosen.len() + 1 < options.len() {
                            next.extend(self.comma.first());
                        }
                        next.extend(self.end.first());
                        next.sort_unstable();
                        next.dedup();
                        return Some(next);
                    }
                    if after.starts_with(&self.comma) {
                        chosen.push(i);
                        rest = &after[self.comma.len()..];
                        continue;
                    }
                    if after.len() < self.comma.len() && self.comma.starts_with(after) {
                        return Some(vec![self.comma[after.len()]]);
                    }
                    if after.len() < self.end.len() {
                        return self.end.starts_with(after).then(|| vec![self.end[after.len()]]);
                    }
                    // past the end marker: free rationale text
                    return None;
                }
                _ => return if partial.is_empty() { None } else { Some(partial) },
            }
        }
    }
}
