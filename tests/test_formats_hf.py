"""Reading Hugging Face tokenizer.json: files written by the `tokenizers` library itself.

The expectation is always `tokenizers` encoding its own file: tokenizers trained here (GPT-2's
ByteLevel split, a Llama 3 Split regex), GPT-2's vocabulary saved by HF, a Llama 3-style file
(ignore_merges, tiktoken-derived) made from cl100k, and our own exports read back.
"""
import json

import pytest
import regex
from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer

from tokenizer import (EOT, GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, BasicTokenizer, RegexTokenizer,
                       load, load_any)
from tokenizer.downloads import DownloadError, fetch
from tokenizer.formats import UnsupportedFormat
from tokenizer.hf import from_onig, save_hf, to_hf_dict, to_onig
from tokenizer.sample_texts import SAMPLE_TEXTS

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = [EOT, "<|fim middle|>"]
TEXTS = dict(SAMPLE_TEXTS, tricky="don't  stop\n\n\t  'LL 'Ve x\u200by 1234567 ,,,\r\n  end  ",
             specials="doc one<|endoftext|>doc two <|fim middle|> three<|endoftext|>",
             spaces=" " * 37 + "\n \n\n  \t\t x" + "\n" * 5, emoji="😀👍🏽🇫🇷 👨‍👩‍👧‍👦!!")


def corpus(corpus_text):
    return corpus_text[:50_000] + "".join(SAMPLE_TEXTS.values()) * 4


def hf_train(kind, text, path):
    tok = HFTokenizer(models.BPE())
    if kind == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([text], trainer)
    tok.save(str(path))
    return HFTokenizer.from_file(str(path))


@pytest.fixture(scope="module", params=["gpt2", "llama3"])
def trained(request, corpus_text, tmp_path_factory):
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    hf = hf_train(request.param, corpus(corpus_text), path)
    return hf, load(path)


@pytest.mark.parametrize("name", list(TEXTS))
def test_hf_trained_file_encodes_as_hf(trained, name):
    hf, ours = trained
    want = hf.encode(TEXTS[name], add_special_tokens=False).ids
    assert ours.encode(TEXTS[name], allowed_special="all") == want
    slow = ours.copy()
    slow.use_tiktoken = False
    assert slow.encode(TEXTS[name], allowed_special="all") == want
    assert ours.decode(want) == hf.decode(want, skip_special_tokens=False)


def test_hf_trained_file_keeps_ids_and_specials(trained, corpus_text):
    hf, ours = trained
    assert ours.special_tokens == {s: hf.token_to_id(s) for s in SPECIALS}
    assert ours.n_vocab == hf.get_vocab_size() == 700
    text = corpus_text[60_000:80_000]
    assert ours.encode_ordinary(text) == hf.encode(text, add_special_tokens=False).ids


@pytest.fixture(scope="module")
def gpt2_hf(tmp_path_factory):
    """GPT-2's vocabulary as Hugging Face writes it (vocab + added <|endoftext|>)."""
    try:
        folder = fetch("gpt2")
    except DownloadError as e:
        pytest.skip(f"GPT-2's files could not be downloaded: {e}")
    hf = HFTokenizer(models.BPE.from_file(str(folder / "encoder.json"), str(folder / "vocab.bpe")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens([EOT])
    path = tmp_path_factory.mktemp("gpt2hf") / "tokenizer.json"
    hf.save(str(path))
    return HFTokenizer.from_file(str(path)), path


@pytest.mark.parametrize("name", list(TEXTS))
def test_gpt2_tokenizer_json_encodes_as_hf(gpt2_hf, name):
    hf, path = gpt2_hf
    ours = load_any(str(path))
    assert ours.special_tokens == {EOT: 50256} and ours.decode_only == {}
    assert ours.encode(TEXTS[name], allowed_special="all") == hf.encode(TEXTS[name]).ids


def test_llama3_style_file_with_ignore_merges(gpt4, tmp_path):
    # Llama 3's tokenizer.json is a tiktoken vocabulary with ignore_merges=true and its own split
    data = to_hf_dict(gpt4)
    data["model"]["ignore_merges"] = True
    data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = LLAMA3_PATTERN
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    hf, ours = HFTokenizer.from_file(str(path)), load(path)
    assert ours.pattern == LLAMA3_PATTERN and ours.special_tokens == gpt4.special_tokens
    for text in TEXTS.values():
        assert ours.encode(text, allowed_special="all") == hf.encode(text).ids


@pytest.mark.parametrize("kind", ["gpt4", "gpt2", "basic"])
def test_our_exports_read_back(kind, corpus_text, tmp_path):
    tok = BasicTokenizer() if kind == "basic" else RegexTokenizer(
        GPT4_SPLIT_PATTERN if kind == "gpt4" else GPT2_SPLIT_PATTERN)
    tok.train(corpus(corpus_text), 400, special_tokens=SPECIALS)
    back = load(save_hf(tok, tmp_path))  # a folder holding tokenizer.json
    assert type(back) is type(tok) and back.merges == tok.merges
    assert back.special_tokens == tok.special_tokens and back.byte_ids == tok.byte_ids
    for text in TEXTS.values():
        assert back.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")


@pytest.mark.parametrize("pattern", [GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, LLAMA3_PATTERN,
                                     r"\p{N}{1,3}+|\s+$|^\S+|\S+|\s+"])
def test_from_onig_splits_as_hf_does(pattern):
    """HF's own Split (Oniguruma) is the oracle for what a tokenizer.json regex means."""
    split = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    ours = regex.compile(from_onig(pattern))
    for text in list(TEXTS.values()) + ["12345678 x\n  \ny  \n", "line one  \nline two  "]:
        assert [c for c, _ in split.pre_tokenize_str(text)] == ours.findall(text)


def test_to_onig_and_back_keeps_the_chunks():
    for pattern in (GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN):
        back = regex.compile(from_onig(to_onig(pattern)))
        for text in TEXTS.values():
            assert back.findall(text) == regex.findall(pattern, text)


def edit(data, change):
    data = json.loads(json.dumps(data))
    change(data)
    return data


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(normalizer={"type": "NFC"}), "normalizer 'NFC' is not supported"),
    (lambda d: d["model"].update(type="WordPiece"), "model type 'WordPiece'"),
    (lambda d: d["model"].update(byte_fallback=True), "byte_fallback=True is not supported"),
    (lambda d: d["pre_tokenizer"]["pretokenizers"][1].update(add_prefix_space=True), "add_prefix_space"),
    (lambda d: d.update(pre_tokenizer={"type": "Whitespace"}), "pre-tokenizer 'Whitespace'"),
    (lambda d: d["added_tokens"][0].update(lstrip=True), "lstrip"),
])
def test_unsupported_variants_are_named(change, message, tmp_path):
    tok = RegexTokenizer()
    tok.train("hello world " * 50, 260, special_tokens=[EOT])
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(edit(to_hf_dict(tok), change)), encoding="utf-8")
    with pytest.raises(UnsupportedFormat, match=message):
        load(path)



def test_exported_special_ids_survive_a_gap_in_the_ids(gpt4):
    # cl100k has no id 100256: HF used to renumber <|endoftext|> from 100257 to 100256
    hf = HFTokenizer.from_str(json.dumps(to_hf_dict(gpt4)))
    assert {s: hf.token_to_id(s) for s in gpt4.special_tokens} == gpt4.special_tokens
    assert hf.encode("a<|endoftext|>b").ids == gpt4.encode("a<|endoftext|>b", allowed_special="all")
