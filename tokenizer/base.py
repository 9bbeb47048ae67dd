"""The shared machinery of every tokenizer here: a vocabulary built from merges, encode/decode,
special tokens and the tiktoken fast path. (The `.model` file format is in model_file.py.)

Why bytes. Text is first turned into UTF-8 bytes, so the 256 byte values are a base vocabulary
that can spell *anything*: no unknown-token symbol, any language, emoji, binary junk. The cost is
length (an emoji is 4 bytes), which is what byte-pair encoding (BPE) buys back.

Why merges. Training repeatedly finds the most frequent adjacent pair of tokens and gives it a
new id: (104 'h', 101 'e') -> 256 'he', then (256, 108 'l') -> 257 'hel', ... A tokenizer is
therefore nothing but an ordered list of merges; the vocabulary (id -> bytes) follows from it.

Why lowest rank first. To encode new text we must reproduce what training would have done to it.
Training applied merge 256 to everything before merge 257 existed, so encoding applies the
earliest-learned merge present, then the next, and so on. A merge's id is its rank here: ids of
merges always increase in merge order (model_file.load checks it).

Why chunks. Subclasses may cut text into chunks with a regex before BPE (RegexTokenizer), so
merges never cross a chunk boundary: "dog." and "dog!" share the token "dog" instead of
learning "dog." and "dog!" separately. BasicTokenizer treats each document as one chunk.
"""
import functools
import unicodedata

import regex

ALLOWED_SPECIAL_MODES = ("all", "none", "none_raise")


def merge(ids, pair, new_id):
    """Replace every non-overlapping occurrence of `pair` in `ids`, scanning left to right.

    Left to right matters for runs: [a, a, a] with pair (a, a) becomes [aa, a], as in training.
    """
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def rank_bpe(ranks, data, max_rank):
    """tiktoken's algorithm on `data` using only tokens of rank < max_rank; returns the parts.

    tiktoken does not look merges up as pairs of ids: it merges the adjacent pair of parts whose
    *concatenated bytes* form the lowest-ranked token. This is used twice: to recover a
    pretrained vocabulary's merges (the two parts left just before a token's own rank are its
    parents) and to check that a trained vocabulary gives the same ids through tiktoken.
    """
    parts = [data[i:i + 1] for i in range(len(data))]
    while len(parts) > 1:
        best_rank, best_i = max_rank, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1], max_rank)
            if r < best_rank:
                best_rank, best_i = r, i
        if best_i < 0:
            break
        parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return parts


def render_token(token: bytes) -> str:
    """Printable form of a token: UTF-8 with replacement, control characters escaped."""
    text = token.decode("utf-8", errors="replace")
    return "".join(ch if unicodedata.category(ch)[0] != "C" else f"\\u{ord(ch):04x}" for ch in text)


@functools.lru_cache(maxsize=64)
def _special_regex(names: frozenset):
    """One regex for these special-token names (cached: encode calls it for every text)."""
    # longest first: regex alternation takes the first alternative that matches here
    alternatives = sorted(names, key=lambda n: (-len(n), n))
    return regex.compile("|".join(regex.escape(n) for n in alternatives))


def _fix_surrogates(text):
    """Lone surrogates (e.g. '\\ud800') cannot be UTF-8 encoded; replace them the way tiktoken does
    (a valid surrogate *pair* becomes its character, a lone one becomes U+FFFD)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class Tokenizer:
    """Base class: merges, vocab and special tokens, plus encode/decode/save.

    Attributes (plain Python values, see docs/design.md):
      merges          {(left_id, right_id): new_id}, insertion order == merge order == rank order
      vocab           {id: bytes} for the 256 byte tokens and every merge (not the specials)
      special_tokens  {name: id}
      pattern         the chunking regex ("" = no chunking)
    The 256 byte tokens normally have ids 0..255 (id == byte value). Pretrained vocabularies such
    as GPT-2's order them differently, so the byte -> id table `byte_ids` is explicit.
    Change merges through the methods (train, extend, truncated, load): they rebuild vocab.
    """

    _classes = {}          # class name -> class, filled by __init_subclass__, used by load()
    use_tiktoken = True    # set False on an instance to force the readable pure-Python path

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Tokenizer._classes[cls.__name__] = cls

    def __init__(self, pattern=""):
        self.pattern = pattern
        self.name = type(self).__name__
        self.special_tokens = {}
        self._set_merges({}, list(range(256)))

    # ---- building the vocabulary -------------------------------------------------------------

    def _set_merges(self, merges, byte_ids=None, exact_prefix=0):
        """Install merges (and optionally a byte -> id table); rebuild everything derived."""
        if byte_ids is not None:
            self.byte_ids = list(byte_ids)
        self.merges = dict(merges)
        vocab = {i: bytes([b]) for b, i in enumerate(self.byte_ids)}
        for (left, right), new in self.merges.items():
            vocab[new] = vocab[left] + vocab[right]
        self.vocab = vocab
        self._compiled = regex.compile(self.pattern) if self.pattern else None
        self._tiktoken = None              # (state key, Encoding or the ValueError it raised)
        self._exact_prefix = exact_prefix  # merges already checked for tiktoken exactness

    @property
    def n_vocab(self):
        """Max id + 1, specials included: the number of rows an embedding table needs."""
        return max(max(self.vocab), max(self.special_tokens.values(), default=-1)) + 1

    def register_special_tokens(self, special_tokens):
        """Add special tokens {name: id}. Ids must not collide with the vocabulary or each other."""
        taken = {i: n for n, i in self.special_tokens.items()}
        for name, idx in special_tokens.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"special token name must be a non-empty string, got {name!r}")
            if not isinstance(idx, int) or idx < 0:
                raise ValueError(f"special token {name!r}: id must be an int >= 0, got {idx!r}")
            if idx in self.vocab:
                raise ValueError(f"special token {name!r}: id {idx} is already the ordinary token "
                                 f"{render_token(self.vocab[idx])!r}; use an id >= {max(self.vocab) + 1}")
            if taken.get(idx, name) != name:
                raise ValueError(f"special token {name!r}: id {idx} is already taken by special "
                                 f"token {taken[idx]!r}")
            if self.special_tokens.get(name, idx) != idx:
                raise ValueError(f"special token {name!r} is already registered with id "
                                 f"{self.special_tokens[name]}")
            taken[idx] = name
        for name, idx in special_tokens.items():
            self.special_tokens[name] = idx

    # ---- training ----------------------------------------------------------------------------

    def train(self, text, vocab_size, verbose=False, special_tokens=None, workers=None):
        """Learn vocab_size - 256 merges from `text` (a str or an iterable of str documents).

        No merge crosses a document or a chunk. `special_tokens` (names) cut the text and are
        never counted; they are registered after the merges, at ids vocab_size, vocab_size+1, ...
        The fast trainer (tokenizer/trainer.py) does the work; tokenizer/reference.py is the
        readable version of the same algorithm.
        """
        from .trainer import count_chunks, train_bpe  # lazy: trainer is a separate module

        if not isinstance(vocab_size, int) or vocab_size < 256:
            raise ValueError(f"vocab_size must be an int >= 256 (the 256 byte tokens plus merges), "
                             f"got {vocab_size!r}")
        specials = list(dict.fromkeys(special_tokens or ()))
        opts = {} if workers is None else {"workers": workers}
        counts = count_chunks(text, self.pattern or None, special_tokens=tuple(specials),
                              progress=verbose, **opts)
        triples = train_bpe(counts, vocab_size - 256, verbose=verbose, progress=verbose)
        return self._install_trained(triples, vocab_size, specials)

    def _install_trained(self, triples, vocab_size, specials):
        """Make this tokenizer the result of training: trainer triples, then the specials.

        train_tokenizer.py runs count_chunks/train_bpe itself (to time and report each step)
        and finishes through here, so both paths install a training result the same way.
        """
        if len(triples) < vocab_size - 256:
            raise ValueError(f"vocab_size {vocab_size} is too large for this text: it has only "
                             f"{len(triples)} merges to learn (max vocab_size {256 + len(triples)})")
        self.special_tokens = {}
        self._set_merges({(a, b): c for a, b, c in triples}, list(range(256)))
        self.register_special_tokens({name: vocab_size + i for i, name in enumerate(specials)})
        return self

    def extend(self, texts, n_new_merges, verbose=False):
        """A new tokenizer: these merges plus `n_new_merges` more, learned from `texts`.

        Training continues where it stopped: chunks (cut with this tokenizer's pattern and
        specials) are first encoded with the existing merges, then BPE goes on. Old ids keep their
        meaning and bytes, so a model trained with the old tokenizer can grow its embedding
        table; new ids start at n_vocab (after any specials).
        """
        from .trainer import count_chunks, train_bpe

        if not isinstance(n_new_merges, int) or n_new_merges < 0:
            raise ValueError(f"n_new_merges must be an int >= 0, got {n_new_merges!r}")
        counts = count_chunks(texts, self.pattern or None,
                              special_tokens=tuple(self.special_tokens), progress=verbose)
        triples = train_bpe(counts, n_new_merges, base_vocab=self.vocab, base_merges=self.merges,
                            next_id=self.n_vocab, verbose=verbose, progress=verbose)
        merges = dict(self.merges)
        merges.update({(a, b): c for a, b, c in triples})
        return self._with_merges(merges, self._exact_prefix)

    def truncated(self, vocab_size):
        """A new tokenizer with only the first vocab_size - 256 merges.

        Training is greedy and deterministic, so this equals training at vocab_size directly: one
        run at 32k serves a whole vocabulary sweep. Specials move to vocab_size, vocab_size+1, ...
        (after the last kept id if that is larger) in their original order.
        """
        if not isinstance(vocab_size, int) or not 256 <= vocab_size <= 256 + len(self.merges):
            raise ValueError(f"vocab_size must be an int in [256, {256 + len(self.merges)}], "
                             f"got {vocab_size!r}")
        kept = dict(list(self.merges.items())[:vocab_size - 256])
        new = self._with_merges(kept, min(self._exact_prefix, len(kept)))
        start = max(vocab_size, max(new.vocab) + 1)
        names = sorted(self.special_tokens, key=self.special_tokens.get)
        new.special_tokens = {}
        new.register_special_tokens({name: start + i for i, name in enumerate(names)})
        return new

    def copy(self):
        """An independent tokenizer equal to this one: changing the copy's merges or specials
        (e.g. register_special_tokens) leaves this one as it was."""
        new = self._with_merges(self.merges, self._exact_prefix)
        new._tiktoken = self._tiktoken  # same state, same Encoding: no need to rebuild it
        return new

    def _with_merges(self, merges, exact_prefix):
        """A new tokenizer like this one (class, name, pattern, bytes, specials) with `merges`."""
        new = type(self)._blank(self.pattern)
        new.name = self.name
        new.special_tokens = dict(self.special_tokens)
        new._set_merges(merges, self.byte_ids, exact_prefix)
        return new

    @classmethod
    def _blank(cls, pattern):
        """An empty instance of cls without running a subclass __init__ (which may download)."""
        obj = cls.__new__(cls)
        Tokenizer.__init__(obj, pattern)
        return obj

    # ---- encoding ----------------------------------------------------------------------------

    def _encode_chunk(self, chunk: bytes):
        """BPE on one chunk: apply the earliest-learned merge present, until none applies.

        This is the readable reference; `encode` normally runs tiktoken's Rust code instead,
        which gives the same ids whenever `to_tiktoken` accepts the vocabulary.
        """
        ids = [self.byte_ids[b] for b in chunk]
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: self.merges.get(p, float("inf")))
            if pair not in self.merges:
                break  # no adjacent pair was ever merged in training
            ids = merge(ids, pair, self.merges[pair])
        return ids

    def _encode_ordinary_python(self, text):
        text = _fix_surrogates(text)
        chunks = self._compiled.findall(text) if self._compiled else ([text] if text else [])
        ids = []
        for chunk in chunks:
            ids.extend(self._encode_chunk(chunk.encode("utf-8")))
        return ids

    def encode_ordinary(self, text):
        """Encode `text` as plain text: special-token names are just characters here."""
        fast = self._fast_encoder()
        return fast.encode_ordinary(text) if fast else self._encode_ordinary_python(text)

    def encode(self, text, allowed_special="none_raise"):
        """Encode text, deciding what to do with text that matches a special token's name.

        allowed_special: "all" (every special becomes its id), "none" (specials are plain text),
        "none_raise" (default: raise if the text contains one, like tiktoken), or a set of names
        to allow (any other special found raises). Special names are searched leftmost first
        and, where several start at the same place, longest first; only then does
        allowed_special decide. Text never becomes a special id unless allowed.
        """
        allowed, disallowed = self._resolve_allowed(allowed_special)
        if not allowed:
            self._raise_on_special(text, disallowed)
            return self.encode_ordinary(text)
        ids, pos = [], 0
        for m in _special_regex(frozenset(allowed | disallowed)).finditer(text):
            if m.group() in disallowed:
                self._raise_on_special(m.group(), disallowed, offset=m.start())
            ids.extend(self.encode_ordinary(text[pos:m.start()]))
            ids.append(self.special_tokens[m.group()])
            pos = m.end()
        ids.extend(self.encode_ordinary(text[pos:]))
        return ids

    def encode_batch(self, texts, allowed_special="none_raise"):
        """Encode many texts; with the fast path and no allowed specials, in parallel threads."""
        texts = list(texts)
        allowed, disallowed = self._resolve_allowed(allowed_special)
        fast = self._fast_encoder()
        if fast and not allowed:
            for text in texts:
                self._raise_on_special(text, disallowed)
            return fast.encode_ordinary_batch(texts)
        return [self.encode(t, allowed_special) for t in texts]

    def _resolve_allowed(self, allowed_special):
        """-> (names to encode as specials, names whose appearance raises)."""
        names = set(self.special_tokens)
        if isinstance(allowed_special, str):
            if allowed_special not in ALLOWED_SPECIAL_MODES:
                raise ValueError(f"allowed_special must be one of {ALLOWED_SPECIAL_MODES} or a set "
                                 f"of special token names, got {allowed_special!r}")
            return {"all": (names, set()), "none": (set(), set()),
                    "none_raise": (set(), names)}[allowed_special]
        allowed = set(allowed_special)
        unknown = allowed - names
        if unknown:
            raise ValueError(f"allowed_special names unregistered special token(s) "
                             f"{sorted(unknown)}; registered: {sorted(names)}")
        return allowed, names - allowed

    def _raise_on_special(self, text, disallowed, offset=0):
        if not disallowed or not text:
            return
        m = _special_regex(frozenset(disallowed)).search(text)
        if m:
            name = m.group()
            raise ValueError(
                f"text contains the special token {name!r} (at character {offset + m.start()}), "
                f"which is "
                f"not allowed. To encode it as the special token, pass "
                f"allowed_special={{{name!r}}} or allowed_special='all'; to encode it as ordinary "
                f"text, pass allowed_special='none' (or use encode_ordinary).")

    # ---- decoding ----------------------------------------------------------------------------

    def decode_bytes(self, ids):
        """The exact bytes behind `ids` (specials become their names in UTF-8)."""
        inverse = {i: n.encode("utf-8") for n, i in self.special_tokens.items()}
        out = []
        for idx in ids:
            token = self.vocab.get(idx)
            if token is None:
                token = inverse.get(idx)
                if token is None:
                    raise ValueError(f"invalid token id {idx!r}: not in this tokenizer's "
                                     f"vocabulary (n_vocab={self.n_vocab})")
            out.append(token)
        return b"".join(out)

    def decode(self, ids):
        """Decode to text. A token can end mid-character, so invalid UTF-8 becomes U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # ---- the tiktoken fast path --------------------------------------------------------------

    def _state_key(self):
        last = next(reversed(self.merges.items())) if self.merges else None
        return (self.pattern, len(self.merges), last, tuple(self.special_tokens.items()))

    def _fast_encoder(self):
        """The cached tiktoken Encoding, or None when it is unavailable or not exact."""
        if not self.use_tiktoken:
            return None
        try:
            return self.to_tiktoken()
        except (ValueError, ImportError):
            return None

    def check_tiktoken_exact(self):
        """Raise ValueError unless tiktoken, given our ranks, returns exactly our ids on every text.

        tiktoken merges the adjacent parts whose *concatenated bytes* are the lowest-ranked
        token; our reference merges *pairs of ids*. These differ when a token's bytes can be
        assembled from a pair that is not its merge. Example: merges (b,c) < (a,b) < (ab,c):
        on "abc" we stop at [a, bc], tiktoken goes on to "abc". The test, per merge (l, r) -> t:
        run tiktoken's algorithm on bytes(t) with the tokens ranked below t; it must end at
        exactly [bytes(l), bytes(r)].
        Why that suffices: when tiktoken forms a token t inside any text, the parts inside t's
        span evolved exactly as they do on bytes(t) alone (a merge across the span's edge was
        never the lowest, or t would not exist), so the two parts it joined are t's parents.
        Every merge tiktoken makes is then one of ours, and as a merge always ranks above its
        parents, both algorithms apply merges in the same (rank) order, left to right.
        Also required: no two ids share bytes, and merge ids increase in merge order.
        Trained vocabularies essentially always pass; pretrained ones pass by construction.
        """
        ranks = {}
        for idx in sorted(self.vocab):
            token = self.vocab[idx]
            if token in ranks:
                raise ValueError(f"ids {ranks[token]} and {idx} have the same bytes "
                                 f"{render_token(token)!r}; tiktoken needs one id per byte string")
            ranks[token] = idx
        prev = max(self.byte_ids)
        for k, ((left, right), new) in enumerate(self.merges.items()):
            if new <= prev:
                raise ValueError(f"merge #{k} has id {new} <= an earlier id {prev}; tiktoken "
                                 f"ranks tokens by id, so merge ids must increase")
            prev = new
            if k < self._exact_prefix:
                continue
            parts = rank_bpe(ranks, self.vocab[new], new)
            if parts != [self.vocab[left], self.vocab[right]]:
                shown = " + ".join(repr(render_token(p)) for p in parts)
                raise ValueError(
                    f"merge #{k} ({left}, {right}) -> {new} {render_token(self.vocab[new])!r}: "
                    f"tiktoken's rank order assembles it as {shown}, not from its own parents, "
                    f"so tiktoken's ids would differ; use the pure-Python encoder")
        self._exact_prefix = len(self.merges)

    def to_tiktoken(self):
        """A tiktoken.Encoding with exactly our ids (cached). ValueError if that is impossible."""
        key = self._state_key()
        if self._tiktoken is not None and self._tiktoken[0] == key:
            cached = self._tiktoken[1]
            if isinstance(cached, ValueError):
                raise cached
            return cached
        import tiktoken

        try:
            self.check_tiktoken_exact()
            enc = tiktoken.Encoding(
                name=self.name,
                # tiktoken needs *some* pattern; without one, the whole text is one piece
                pat_str=self.pattern or r"[\s\S]+",
                mergeable_ranks={token: idx for idx, token in self.vocab.items()},
                special_tokens=dict(self.special_tokens))
        except ValueError as e:
            self._tiktoken = (key, e)
            raise
        self._tiktoken = (key, enc)
        return enc

    def save_tiktoken(self, path):
        """Write the standard `.tiktoken` rank file (base64 token, space, rank per line)."""
        import base64

        from .model_file import write_text_atomic

        self.check_tiktoken_exact()
        lines = [f"{base64.b64encode(self.vocab[i]).decode('ascii')} {i}\n" for i in sorted(self.vocab)]
        write_text_atomic(path, "".join(lines))

    def save_hf(self, path):
        """Write a Hugging Face `tokenizer.json` (see tokenizer/hf.py)."""
        from .hf import save_hf

        return save_hf(self, path)

    # ---- save -------------------------------------------------------------------------------

    def save(self, file_prefix):
        """Write file_prefix.model (for `load`) and file_prefix.vocab (for humans), atomically.

        The format and the reader live in tokenizer/model_file.py.
        """
        from .model_file import save  # lazy: model_file imports this module

        save(self, file_prefix)
