//! `bedside-train train-tokenizer`: trains the HuggingFace BPE tokenizer of a bedside model on the
//! cohort's notes, teacher rationales, the knowledge texts, label names and the prompt template.
//! T5's conventions: `<pad>` = 0, `</s>` = 1, `<unk>` = 2, `</s>` appended to every encoding,
//! SentencePiece-style word boundaries (`▁`), digits one token each so that lab values are read
//! digit by digit, and the grounded rationale's reserved tokens (`<lab:…>`, `<note:…>`) each one
//! id. The result loads with `bedside::tokenizer::TextTokenizer`, natively and in wasm.

use anyhow::{Result, anyhow};
use bedside::PatientRecord;
use bedside::knowledge::{CHANNELS, PHENOTYPES, knowledge_texts};
use bedside::tokenizer::{EOS, PAD, UNK};
use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::unicode::NFKC;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::punctuation::Punctuation;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// The fixed text of the prompt and target templates, so its words are always in the vocabulary.
pub const TEMPLATE_TEXT: &str =
    "### Clinical Notes: ### Lab Time Series: ### Disease Diagnosed: . ### Rationale:";

/// Every text the tokenizer learns from: template, knowledge, label and channel names, the notes
/// of `records` and any extra texts (teacher rationales).
pub fn corpus<'a>(
    records: &'a [PatientRecord],
    extra: &'a [String],
) -> impl Iterator<Item = String> + 'a {
    let fixed = std::iter::once(TEMPLATE_TEXT.to_string())
        .chain(knowledge_texts().into_iter().map(str::to_string))
        .chain(PHENOTYPES.iter().map(|p| p.name.to_string()))
        .chain(CHANNELS.iter().map(|c| c.label.to_string()));
    fixed
        .chain(
            records
                .iter()
                .flat_map(|r| r.notes.iter().map(|n| n.text.clone())),
        )
        .chain(extra.iter().cloned())
}

/// Trains a tokenizer of at most `vocab_size` tokens; returns its `tokenizer.json` text.
pub fn train(texts: impl Iterator<Item = String> + Send, vocab_size: usize) -> Result<String> {
    // T5's three, then the grounded rationale's reserved tokens (one id each, never split)
    let special: Vec<AddedToken> = [PAD, EOS, UNK]
        .iter()
        .map(|t| t.to_string())
        .chain(bedside::grounded::reserved_tokens())
        .map(|t| AddedToken::from(t, true))
        .collect();
    let model = BPE::builder()
        .unk_token(UNK.to_string())
        .build()
        .map_err(|e| anyhow!("BPE model: {e}"))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_normalizer(Some(NFKC));
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        Metaspace::new('\u{2581}', PrependScheme::Always, true).into(),
        Punctuation::new(SplitDelimiterBehavior::Isolated).into(),
        Digits::new(true).into(),
    ])));
    tokenizer.with_decoder(Some(MetaspaceDecoder::new(
        '\u{2581}',
        PrependScheme::Always,
        true,
    )));
    let mut trainer = TrainerWrapper::BpeTrainer(
        BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(special.clone())
            .build(),
    );
    tokenizer
        .train(&mut trainer, texts)
        .map_err(|e| anyhow!("training the tokenizer: {e}"))?;
    tokenizer.add_special_tokens(&special);
    let eos = tokenizer
        .token_to_id(EOS)
        .ok_or_else(|| anyhow!("{EOS} missing after training"))?;
    let template = TemplateProcessing::builder()
        .try_single(format!("$A {EOS}"))
        .and_then(|b| b.try_pair(format!("$A {EOS} $B {EOS}")))
        .map_err(|e| anyhow!("template: {e}"))?
        .special_tokens(vec![(EOS.to_string(), eos)])
        .build()
        .map_err(|e| anyhow!("template: {e}"))?;
    tokenizer.with_post_processor(Some(template));
    tokenizer
        .to_string(false)
        .map_err(|e| anyhow!("serialising the tokenizer: {e}"))
}

/// A pretrained model's `tokenizer.json` (HuggingFace T5 / Flan-T5) with the grounded
/// rationale's reserved tokens added, one id each after its own, as `train` adds them. The ids it
/// had keep their meaning, so the checkpoint's embeddings still fit; `pad` and `eos` must be the
/// ids its `config.json` names. Returns the extended `tokenizer.json` text.
pub fn extend(json: &[u8], pad: usize, eos: usize) -> Result<String> {
    let mut tokenizer =
        Tokenizer::from_bytes(json).map_err(|e| anyhow!("not a tokenizer.json: {e}"))?;
    for (token, id) in [(PAD, pad), (EOS, eos)] {
        let found = tokenizer.token_to_id(token);
        anyhow::ensure!(
            found.map(|f| f as usize) == Some(id),
            "the tokenizer's {token} is {found:?}, but config.json says {id}"
        );
    }
    let eos_appended = tokenizer
        .encode("a", true)
        .map_err(|e| anyhow!("cannot encode with the tokenizer: {e}"))?
        .get_ids()
        .last()
        .is_some_and(|&id| id as usize == eos);
    anyhow::ensure!(
        eos_appended,
        "the tokenizer does not end an encoding with {EOS} (its post_processor), as T5's does"
    );
    let reserved: Vec<AddedToken> = bedside::grounded::reserved_tokens()
        .into_iter()
        .map(|t| AddedToken::from(t, true))
        .collect();
    tokenizer.add_special_tokens(&reserved);
    let json = tokenizer
        .to_string(false)
        .map_err(|e| anyhow!("serialising the tokenizer: {e}"))?;
    // the decoder must be able to write each diagnosis: a character the vocabulary lacks
    // becomes <unk> and the label could never be read back
    let text = bedside::tokenizer::TextTokenizer::from_bytes(json.as_bytes())?;
    for phenotype in PHENOTYPES {
        let target = bedside::prompt::target_text(&[phenotype.name], "");
        let written = text.decode(&text.encode(&target)?)?;
        anyhow::ensure!(
            bedside::prompt::parse_target(&written).diagnoses == [phenotype.name],
            "the tokenizer cannot write the diagnosis {:?}: {target:?} decodes as {written:?}",
            phenotype.name
        );
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bedside::tokenizer::TextTokenizer;

    /// The fixtures' T5 tokenizer (`tools/t5_tokenizer_fixture.py`, SentencePiece converted by
    /// transformers) keeps every id and gains the reserved tokens, one id each, after its own.
    #[test]
    fn a_t5_tokenizer_gains_the_reserved_tokens_and_keeps_its_ids() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/t5/tokenizer.json"
        );
        let json = std::fs::read(path).unwrap();
        let before = TextTokenizer::from_bytes(&json).unwrap();
        let extended = extend(&json, 0, 1).unwrap();
        let after = TextTokenizer::from_bytes(extended.as_bytes()).unwrap();
        let reserved = bedside::grounded::reserved_tokens();
        assert_eq!(after.vocab_size(), before.vocab_size() + reserved.len());
        let text = "Septic shock, lactate high.";
        assert_eq!(after.encode(text).unwrap(), before.encode(text).unwrap());
        assert!(bedside::grounded::RationaleVocab::new(&after).is_some());
        let ids = after.encode("<note:3><lab:lactate:high>").unwrap();
        assert_eq!(ids.len(), 3, "one id each, then </s>: {ids:?}");
        assert!(
            ids[..2]
                .iter()
                .all(|&id| id as usize >= before.vocab_size())
        );
        // ids that disagree with config.json are refused, naming the token
        let err = extend(&json, 0, 2).unwrap_err().to_string();
        assert!(err.contains("</s>"), "{err}");
        // a vocabulary without "#" cannot write the diagnosis template: refused, naming a label
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let hash = value["model"]["vocab"]
            .as_array()
            .unwrap()
            .iter()
            .position(|piece| piece[0] == "#")
            .unwrap();
        let mut without = value.clone();
        without["model"]["vocab"][hash][0] = "\u{2603}".into();
        let err = extend(without.to_string().as_bytes(), 0, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot write the diagnosis"), "{err}");
    }

    #[test]
    fn trains_deterministically_with_t5_special_ids_and_round_trips() {
        let records = crate::shared::synthetic::cohort(60, 48, 5);
        let json = train(corpus(&records, &[]), 800).unwrap();
        assert_eq!(
            json,
            train(corpus(&records, &[]), 800).unwrap(),
            "training is deterministic"
        );
        let tok = TextTokenizer::from_bytes(json.as_bytes()).unwrap();
        assert_eq!(
            (tok.pad_id(), tok.eos_id(), tok.token_id(UNK)),
            (0, 1, Some(2))
        );
        assert!(
            tok.vocab_size() <= 800 && tok.vocab_size() > 300,
            "{}",
            tok.vocab_size()
        );
        let text = "Septic, lactate 4.2 mmol/L; ### Disease Diagnosed: Shock .";
        let ids = tok.encode(text).unwrap();
        assert_eq!(ids.last(), Some(&1));
        assert!(
            !ids.contains(&2),
            "no <unk> in ordinary clinical text: {ids:?}"
        );
        assert_eq!(tok.decode(&ids).unwrap(), text);
        // digits one by one: two more digits, two more tokens
        let (short, long) = (tok.encode("42").unwrap(), tok.encode("4242").unwrap());
        assert_eq!(long.len(), short.len() + 2, "{short:?} {long:?}");
        // every reserved token is one id, also straight after the rationale marker
        let vocab = bedside::grounded::RationaleVocab::new(&tok).expect("every reserved token");
        let lactate = bedside::knowledge::channel_index("lactate").unwrap();
        let pick = bedside::grounded::Pick::Lab(lactate, bedside::findings::Direction::High);
        let ids = tok
            .encode("### Rationale:<note:3><lab:lactate:high>")
            .unwrap();
        let marker = tok.encode("### Rationale:").unwrap();
        let n = ids.len();
        assert_eq!(
            ids[..n - 3],
            marker[..marker.len() - 1],
            "{ids:?} {marker:?}"
        );
        assert_eq!(
            (vocab.pick(ids[n - 3]), vocab.pick(ids[n - 2])),
            (Some(bedside::grounded::Pick::Note(3)), Some(pick))
        );
    }
}
