//! Constrained decoding of the diagnosis part of a target: after `### Disease Diagnosed:` the
//! decoder may only write valid label names (or exactly a given selection of them), separated by
//! commas, each at most once, then ` . ### Rationale:`; what follows is the grounded rationale
//! ([`crate::grounded`], constrained by the engine).
//!
//! Label names are tokenized in both contexts in which they occur (first, after the header's
//! space; later, straight after a comma), so the allowed token sequences are exactly what the
//! tokenizer produces for well-formed targets.

use crate::prompt::{DIAGNOSED, RATIONALE};
use crate::tokenizer::TextTokenizer;

/// What a diagnosis list has written ([`DiagnosisGrammar::written`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    /// Labels closed by a comma or the end marker, in the order written.
    pub closed: Vec<usize>,
    /// A label whose tokens are complete, not yet followed by a comma or the end marker.
    pub pending: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct DiagnosisGrammar {
    header: Vec<u32>,
    /// Token sequences of each label: as the first label, and after a comma.
    first: Vec<Vec<u32>>,
    later: Vec<Vec<u32>>,
    comma: Vec<u32>,
    end: Vec<u32>,
    /// The end marker straight after the header (an empty list).
    empty_end: Vec<u32>,
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
    /// differently from what the grammar assumes (`explain` then refuses the bundle).
    pub fn new(tokenizer: &TextTokenizer, labels: &[&str]) -> Option<Self> {
        let header = body(tokenizer, DIAGNOSED)?;
        let anchor = labels.first()?;
        let anchored = body(tokenizer, &format!("{DIAGNOSED} {anchor}"))?;
        let with_comma = body(tokenizer, &format!("{DIAGNOSED} {anchor},"))?;
        let comma = strip(&with_comma, &anchored)?.to_vec();
        let end = strip(
            &body(tokenizer, &format!("{DIAGNOSED} {anchor} . {RATIONALE}"))?,
            &anchored,
        )?
        .to_vec();
        let mut first = Vec::new();
        let mut later = Vec::new();
        for label in labels {
            first
                .push(strip(&body(tokenizer, &format!("{DIAGNOSED} {label}"))?, &header)?.to_vec());
            later.push(
                strip(
                    &body(tokenizer, &format!("{DIAGNOSED} {anchor},{label}"))?,
                    &with_comma,
                )?
                .to_vec(),
            );
        }
        let empty_end = strip(
            &body(tokenizer, &format!("{DIAGNOSED} . {RATIONALE}"))?,
            &header,
        )?
        .to_vec();
        Some(Self {
            header,
            first,
            later,
            comma,
            end,
            empty_end,
        })
    }

    /// `prefix` cut after the diagnosis list's end marker (`. ### Rationale:`): the list part and
    /// the rationale part; `None` while the list is not finished.
    pub fn split<'a>(&self, prefix: &'a [u32]) -> Option<(&'a [u32], &'a [u32])> {
        let rest = prefix.strip_prefix(self.header.as_slice())?;
        if rest.starts_with(&self.empty_end) {
            return Some(prefix.split_at(self.header.len() + self.empty_end.len()));
        }
        let at = rest
            .windows(self.end.len())
            .position(|w| w == self.end.as_slice())?;
        Some(prefix.split_at(self.header.len() + at + self.end.len()))
    }

    /// The labels `prefix` has written so far, by index, read from the tokens alone (no text is
    /// decoded and parsed back): those closed by a comma or the end marker in order, and a last one
    /// whose tokens are complete but not yet followed by either (generation may stop there).
    pub fn written(&self, prefix: &[u32]) -> Written {
        let mut out = Written::default();
        let Some(mut rest) = prefix.strip_prefix(self.header.as_slice()) else {
            return out;
        };
        if rest.starts_with(&self.empty_end) {
            return out;
        }
        loop {
            let options = if out.closed.is_empty() {
                &self.first
            } else {
                &self.later
            };
            let Some((i, seq)) = options
                .iter()
                .enumerate()
                .filter(|(i, seq)| !out.closed.contains(i) && rest.starts_with(seq))
                .max_by_key(|(_, seq)| seq.len())
            else {
                return out;
            };
            let after = &rest[seq.len()..];
            if let Some(next) = after.strip_prefix(self.comma.as_slice()) {
                out.closed.push(i);
                rest = next;
            } else if after.starts_with(&self.end) {
                out.closed.push(i);
                return out;
            } else {
                out.pending = Some(i);
                return out;
            }
        }
    }

    /// The tokens allowed after `prefix` (generated tokens, start token excluded); `None` = any.
    pub fn allowed(&self, prefix: &[u32]) -> Option<Vec<u32>> {
        self.allowed_among(prefix, None)
    }

    /// As [`Self::allowed`], but with `only` (one flag per label) the list is exactly the flagged
    /// labels, in the order the decoder chooses: each once, the end only once all are written.
    /// This makes the written list the one the phenotype head selects.
    pub fn allowed_among(&self, prefix: &[u32], only: Option<&[bool]>) -> Option<Vec<u32>> {
        let open = |i: usize| only.is_none_or(|o| o.get(i).copied().unwrap_or(false));
        let wanted = only.map(|o| o.iter().filter(|f| **f).count());
        // header
        if prefix.len() < self.header.len() {
            return if self.header.starts_with(prefix) {
                Some(vec![self.header[prefix.len()]])
            } else {
                None
            };
        }
        if !prefix.starts_with(&self.header) {
            return None;
        }
        let mut rest = &prefix[self.header.len()..];
        if wanted == Some(0) {
            // nothing to write: the end marker straight away, then the rationale
            return (rest.len() < self.empty_end.len()).then(|| vec![self.empty_end[rest.len()]]);
        }
        let mut chosen: Vec<usize> = Vec::new();
        loop {
            let options = if chosen.is_empty() {
                &self.first
            } else {
                &self.later
            };
            let available = |i: &usize| open(*i) && !chosen.contains(i);
            // a complete label followed by more tokens
            let complete = options
                .iter()
                .enumerate()
                .filter(|(i, seq)| available(i) && rest.starts_with(seq))
                .max_by_key(|(_, seq)| seq.len());
            let partial: Vec<u32> = options
                .iter()
                .enumerate()
                .filter(|(i, seq)| available(i) && seq.len() > rest.len() && seq.starts_with(rest))
                .map(|(_, seq)| seq[rest.len()])
                .collect();
            match complete {
                Some((i, seq)) if rest.len() >= seq.len() => {
                    let after = &rest[seq.len()..];
                    if after.is_empty() {
                        // a label just ended: continue it (a longer label), a comma, or the end
                        let mut next = partial;
                        let written = chosen.len() + 1;
                        if written < wanted.unwrap_or(options.len()) {
                            next.extend(self.comma.first());
                        }
                        if wanted.is_none_or(|w| written >= w) {
                            next.extend(self.end.first());
                        }
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
                        return self
                            .end
                            .starts_with(after)
                            .then(|| vec![self.end[after.len()]]);
                    }
                    // past the end marker: free rationale text
                    return None;
                }
                _ => {
                    return if partial.is_empty() {
                        None
                    } else {
                        Some(partial)
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::PHENOTYPES;

    /// Walks the grammar until the list ends, taking the lowest (`last` false) or the highest
    /// allowed token id each step: two different paths through the same grammar.
    fn walk(grammar: &DiagnosisGrammar, only: Option<&[bool]>, last: bool) -> Vec<u32> {
        let mut tokens = Vec::new();
        while grammar.split(&tokens).is_none() {
            let next = grammar
                .allowed_among(&tokens, only)
                .expect("inside the list every step is constrained");
            let token = if last {
                next.iter().max()
            } else {
                next.iter().min()
            };
            tokens.push(*token.expect("a token is allowed"));
            assert!(tokens.len() < 400, "the list does not end");
        }
        tokens
    }

    #[test]
    fn the_list_is_exactly_the_selected_labels() {
        let tokenizer =
            TextTokenizer::from_bytes(include_bytes!("../models/demo/tokenizer.json")).unwrap();
        let labels: Vec<&str> = PHENOTYPES.iter().map(|p| p.name).collect();
        let grammar = DiagnosisGrammar::new(&tokenizer, &labels).unwrap();
        for chosen in [
            vec![],
            vec![24],
            vec![2, 13, 24],
            (0..25).collect::<Vec<usize>>(),
        ] {
            let only: Vec<bool> = (0..labels.len()).map(|i| chosen.contains(&i)).collect();
            for last in [false, true] {
                let tokens = walk(&grammar, Some(&only), last);
                let (list, rest) = grammar.split(&tokens).unwrap();
                assert!(rest.is_empty());
                let mut written =
                    crate::prompt::parse_target(&tokenizer.decode(list).unwrap()).diagnoses;
                // the grammar reads the same list from the tokens alone, in the written order
                let read = grammar.written(&tokens);
                let names: Vec<String> =
                    read.closed.iter().map(|&i| labels[i].to_string()).collect();
                assert_eq!((names, read.pending), (written.clone(), None));
                // and part-way: the labels closed so far, then the one just completed
                if let Some(&first) = read.closed.first().filter(|_| chosen.len() > 1) {
                    let one = &tokens[..grammar.header.len() + grammar.first[first].len()];
                    assert_eq!(
                        grammar.written(one),
                        Written {
                            closed: vec![],
                            pending: Some(first)
                        }
                    );
                    let two = &tokens[..one.len() + grammar.comma.len()];
                    assert_eq!(grammar.written(two).closed, [first]);
                }
                written.sort();
                let mut expected: Vec<String> =
                    chosen.iter().map(|&i| labels[i].to_string()).collect();
                expected.sort();
                assert_eq!(written, expected);
            }
        }
        // without a selection the first allowed path is a valid list of at least one label
        let free = walk(&grammar, None, false);
        let written = crate::prompt::parse_target(
            &tokenizer.decode(grammar.split(&free).unwrap().0).unwrap(),
        )
        .diagnoses;
        assert!(
            !written.is_empty() && written.iter().all(|w| labels.contains(&w.as_str())),
            "{written:?}"
        );
    }
}
