//! Text similarity of generated rationales to the teacher's: corpus BLEU-4 (Papineni et al.,
//! uniform weights, brevity penalty, no smoothing) and ROUGE-L F1 (longest common subsequence),
//! on lower-cased whitespace tokens with punctuation split off.

use std::collections::HashMap;

pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.to_lowercase().split_whitespace() {
        let mut current = String::new();
        for ch in word.chars() {
            if ch.is_alphanumeric()
                || ch == '.'
                    && !current.is_empty()
                    && current.chars().all(|c| c.is_ascii_digit() || c == '.')
            {
                current.push(ch);
            } else {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                out.push(ch.to_string());
            }
        }
        if !current.is_empty() {
            out.push(current);
        }
    }
    // a number's trailing full stop ends a sentence
    out.into_iter()
        .flat_map(|t| match t.strip_suffix('.') {
            Some(number) if !number.is_empty() => vec![number.to_string(), ".".to_string()],
            _ => vec![t],
        })
        .collect()
}

fn ngrams(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    for gram in tokens.windows(n) {
        *counts.entry(gram).or_insert(0) += 1;
    }
    counts
}

/// Clipped n-gram matches and candidate n-gram total over a corpus.
fn modified_precision(
    candidates: &[Vec<String>],
    references: &[Vec<String>],
    n: usize,
) -> (usize, usize) {
    let (mut matched, mut total) = (0, 0);
    for (c, r) in candidates.iter().zip(references) {
        let reference = ngrams(r, n);
        for (gram, count) in ngrams(c, n) {
            matched += count.min(reference.get(gram).copied().unwrap_or(0));
            total += count;
        }
    }
    (matched, total)
}

/// Corpus BLEU-4 of `candidates` against one reference each, in [0, 1].
pub fn bleu4(candidates: &[&str], references: &[&str]) -> f64 {
    let c: Vec<Vec<String>> = candidates.iter().map(|t| tokens(t)).collect();
    let r: Vec<Vec<String>> = references.iter().map(|t| tokens(t)).collect();
    let mut log_sum = 0.0;
    for n in 1..=4 {
        let (matched, total) = modified_precision(&c, &r, n);
        if matched == 0 || total == 0 {
            return 0.0;
        }
        log_sum += (matched as f64 / total as f64).ln() / 4.0;
    }
    let (cand_len, ref_len): (usize, usize) =
        (c.iter().map(Vec::len).sum(), r.iter().map(Vec::len).sum());
    let brevity = if cand_len >= ref_len {
        1.0
    } else {
        (1.0 - ref_len as f64 / cand_len.max(1) as f64).exp()
    };
    brevity * log_sum.exp()
}

fn lcs(a: &[String], b: &[String]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        let mut previous = 0;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y {
                previous + 1
            } else {
                row[j + 1].max(row[j])
            };
            previous = above;
        }
    }
    row[b.len()]
}

/// ROUGE-L F1 of one candidate against one reference.
pub fn rouge_l(candidate: &str, reference: &str) -> f64 {
    let (c, r) = (tokens(candidate), tokens(reference));
    let common = lcs(&c, &r) as f64;
    if common == 0.0 {
        return 0.0;
    }
    let (p, rec) = (common / c.len() as f64, common / r.len() as f64);
    2.0 * p * rec / (p + rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Papineni et al.'s example: "the" × 7 against "the cat is on the mat" clips to 2/7
        let c = vec![tokens("the the the the the the the")];
        let r = vec![tokens("the cat is on the mat")];
        assert_eq!(modified_precision(&c, &r, 1), (2, 7));
        assert!((bleu4(&["a b c d e f"], &["a b c d e f"]) - 1.0).abs() < 1e-12);
        assert_eq!(bleu4(&["x y z w"], &["a b c d"]), 0.0);
        // 5 of 6 unigrams, 4 of 5 bigrams, 3 of 4 trigrams, 2 of 3 4-grams; same length
        let b = bleu4(&["a b c d e x"], &["a b c d e f"]);
        let expected = ((5.0f64 / 6.0) * (4.0 / 5.0) * (3.0 / 4.0) * (2.0 / 3.0)).powf(0.25);
        assert!((b - expected).abs() < 1e-12, "{b} vs {expected}");
        // ROUGE-L: LCS 3 of 4 both ways
        assert!(
            (rouge_l("police killed the gunman", "police kill the gunman") - 0.75).abs() < 1e-12
        );
        assert_eq!(rouge_l("", "anything"), 0.0);
        assert_eq!(
            tokens("Lactate was high at 4.1 mmol/L."),
            ["lactate", "was", "high", "at", "4.1", "mmol", "/", "l", "."]
        );
    }
}
