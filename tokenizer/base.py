"""The Tokenizer: merges and special tokens packaged as one object that trains, encodes and saves.

The ideas live in the modules read before this one: bpe.py (what a merge is and how a chunk is
encoded), reference.py and trainer.py (how merges are learned), fastpath.py (when tiktoken gives
our ids), model_file.py and hf.py (files). This class ties them together around one state: an
ordered list of merges, the vocabulary they build, the special tokens and the split pattern.
BasicTokenizer (basic.py) and RegexTokenizer (regex.py) only choose the pattern.
"""
import numbers

import regex

from . import fastpath, hf, model_file
from .atomic import write_text_atomic
from .bpe import apply_merges, fix_surrogates, render_token
from .model_file import load as read_model_file
from .specials import refuse_special, resolve_allowed, special_regex
from .trainer import check_coverage, count_chunks, train_bpe

class Tokenizer:
    """Base class: merges, vocab and special tokens, plus encode/decode/save.

    Attributes (plain Python values, see docs/design.md):
      merges          {(left_id, right_id): new_id}, insertion order == merge order == rank order
      vocab           {id: bytes} for the 256 byte tokens and every merge (not the specials)
      special_tokens  {name: id}
      pattern         the chunking regex ("" = no chunking)
      decode_only     {id: bytes}, ordinary tokens that no merge makes (GPT-2's encoder.json lists
                      "<|endoftext|>" so; Hugging Face files have such entries): they are in vocab
                      and decode, but encoding never produces them, exactly as in their home library
    The 256 byte tokens normally have ids 0..255 (id == byte value). Pretrained vocabularies such
    as GPT-2's order them differently, so the byte -> id table `byte_ids` is explicit.
    Change merges through the methods (train, extend, truncated, load): they rebuild vocab.
    """

    use_tiktoken = True    # set False on an instance to force the readable pure-Python path

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        model_file.register_class(cls)  # so load() can rebuild it from its name in a .model file

    def __init__(self, pattern="", *, merges=None, byte_ids=None, special_tokens=None, name=None,
                 tiktoken_encoding=None, decode_only=None):
        """A tokenizer with these merges (none: the 256 byte tokens only); see from_merges."""
        self.pattern = pattern
        self.name = name or type(self).__name__
        self._compiled = regex.compile(pattern) if pattern else None
        self._set_merges(merges or {}, list(range(256)) if byte_ids is None else byte_ids,
                         decode_only=decode_only)
        self.special_tokens = {}
        self.register_special_tokens(special_tokens or {})
        if tiktoken_encoding is not None:
            # e.g. the Encoding pretrained merges were recovered from: exact by construction
            self._exact_prefix = len(self.merges)
            self._tiktoken = (self._state_key(), tiktoken_encoding)

    @classmethod
    def from_merges(cls, merges, *, pattern="", byte_ids=None, special_tokens=None, name=None,
                    tiktoken_encoding=None, decode_only=None):
        """A `cls` holding these merges, built without running a subclass __init__ (which may
        download, as GPT4Tokenizer's does).

        merges: {(left, right): new_id} in merge order, or [(left, right, new_id), ...] as the
        trainers return them. byte_ids: the ids of bytes 0..255 (default: id == byte).
        special_tokens: {name: id}. tiktoken_encoding: a tiktoken.Encoding known to give
        exactly these ids, used as the fast path without checking (fastpath.check_exact) or
        rebuilding it. decode_only: {id: bytes} for tokens no merge makes (see the class).
        """
        tok = cls.__new__(cls)
        Tokenizer.__init__(tok, pattern, merges=merges, byte_ids=byte_ids,
                           special_tokens=special_tokens, name=name,
                           tiktoken_encoding=tiktoken_encoding, decode_only=decode_only)
        return tok

    # ---- building the vocabulary -------------------------------------------------------------

    def _set_merges(self, merges, byte_ids, exact_prefix=0, decode_only=None):
        """Install merges, the byte -> id table and the decode-only tokens; rebuild everything
        derived from them."""
        if not isinstance(merges, dict):
            merges = {(a, b): c for a, b, c in merges}
        self.byte_ids = list(byte_ids)
        if len(set(self.byte_ids)) != 256 or len(self.byte_ids) != 256:
            raise ValueError("byte_ids must be 256 distinct ids, the ids of bytes 0..255")
        self.merges = dict(merges)
        vocab = {i: bytes([b]) for b, i in enumerate(self.byte_ids)}
        for k, ((left, right), new) in enumerate(self.merges.items()):
            if left not in vocab or right not in vocab or new in vocab:
                raise ValueError(f"merge #{k} ({left}, {right}) -> {new}: each part must be a byte "
                                 f"id or an earlier merge's id, and the new id must be unused")
            vocab[new] = vocab[left] + vocab[right]
        self.decode_only = {}
        for idx, token in sorted((decode_only or {}).items()):
            if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0 or idx in vocab:
                raise ValueError(f"decode-only token {idx!r}: the id must be an int >= 0 that no "
                                 f"byte or merge uses")
            vocab[idx] = self.decode_only[idx] = bytes(token)
        self.vocab = vocab
        self._tiktoken = None              # (state key, Encoding or the ValueError it raised)
        self._exact_prefix = exact_prefix  # merges already checked for tiktoken exactness

    @property
    def compiled_pattern(self):
        """The compiled split pattern (None without one); minbpe's name."""
        return self._compiled

    @property
    def inverse_special_tokens(self):
        """{id: name} of the special tokens; minbpe's name."""
        return {i: name for name, i in self.special_tokens.items()}

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
            if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
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

    # ---- training (trainer.py does the work; reference.py is the readable version) ------------

    def train(self, text, vocab_size, verbose=False, special_tokens=None, workers=None,
              progress=None):
        """Learn vocab_size - 256 merges from `text` (a str or an iterable of str documents).

        No merge crosses a document or a chunk. `special_tokens` (names) cut the text and are
        never counted; they are registered after the merges, at ids vocab_size, vocab_size+1, ...
        verbose prints every merge; progress shows progress bars (default: as verbose).
        """
        _check_vocab_size(vocab_size)
        progress = verbose if progress is None else progress
        specials = list(dict.fromkeys(special_tokens or ()))
        opts = {} if workers is None else {"workers": workers}
        counts = count_chunks(text, self.pattern or None, special_tokens=tuple(specials),
                              progress=progress, **opts)
        return self.train_from_counts(counts, vocab_size, specials, verbose=verbose,
                                      progress=progress)

    def train_from_counts(self, chunk_counts, vocab_size, special_tokens=None, verbose=False,
                          progress=False):
        """`train`'s second half, for callers that count chunks themselves (trainer.count_chunks,
        with this tokenizer's pattern), e.g. to time or report the two steps apart."""
        _check_vocab_size(vocab_size)
        check_coverage(chunk_counts, self.pattern)
        specials = list(dict.fromkeys(special_tokens or ()))
        triples = train_bpe(chunk_counts, vocab_size - 256, verbose=verbose, progress=progress)
        if len(triples) < vocab_size - 256:
            raise ValueError(f"vocab_size {vocab_size} is too large for this text: it has only "
                             f"{len(triples)} merges to learn (max vocab_size {256 + len(triples)})")
        self._set_merges(triples, list(range(256)))
        self.special_tokens = {}
        self.register_special_tokens({name: vocab_size + i for i, name in enumerate(specials)})
        return self

    def extend(self, texts, n_new_merges, verbose=False, progress=None):
        """A new tokenizer: these merges plus `n_new_merges` more, learned from `texts`.

        Training continues where it stopped: chunks (cut with this tokenizer's pattern and
        specials) are first encoded with the existing merges, then BPE goes on. Old ids keep their
        meaning and bytes, so a model trained with the old tokenizer can grow its embedding
        table; new ids start at n_vocab (after any specials).
        """
        if not isinstance(n_new_merges, int) or isinstance(n_new_merges, bool) or n_new_merges < 0:
            raise ValueError(f"n_new_merges must be an int >= 0, got {n_new_merges!r}")
        progress = verbose if progress is None else progress
        counts = count_chunks(texts, self.pattern or None,
                              special_tokens=tuple(self.special_tokens), progress=progress)
        check_coverage(counts, self.pattern)
        triples = train_bpe(counts, n_new_merges, base_vocab=self.vocab, base_merges=self.merges,
                            next_id=self.n_vocab, verbose=verbose, progress=progress)
        if len(triples) < n_new_merges:
            raise ValueError(f"n_new_merges {n_new_merges} is too many for this text: it has only "
                             f"{len(triples)} new merges to learn")
        merges = dict(self.merges)
        merges.update({(a, b): c for a, b, c in triples})
        return self._with_merges(merges, self._exact_prefix)

    def truncated(self, vocab_size):
        """A new tokenizer with only the first vocab_size - 256 merges.

        Training is greedy and deterministic, so this equals training at vocab_size directly: one
        run at 32k serves a whole vocabulary sweep. Specials move to vocab_size, vocab_size+1, ...
        (after the last kept id if that is larger) in their original order.
        """
        if (not isinstance(vocab_size, int) or isinstance(vocab_size, bool)
                or not 256 <= vocab_size <= 256 + len(self.merges)):
            raise ValueError(f"vocab_size must be an int in [256, {256 + len(self.merges)}], "
                             f"got {vocab_size!r}")
        kept = dict(list(self.merges.items())[:vocab_size - 256])
        new = self._with_merges(kept, min(self._exact_prefix, len(kept)), specials={},
                                decode_only={i: t for i, t in self.decode_only.items() if i < vocab_size})
        start = max(vocab_size, max(new.vocab) + 1)
        names = sorted(self.special_tokens, key=self.special_tokens.get)
        new.register_special_tokens({name: start + i for i, name in enumerate(names)})
        return new

    def copy(self):
        """An independent tokenizer equal to this one: changing the copy's merges or specials
        (e.g. register_special_tokens) leaves this one as it was."""
        new = self._with_merges(self.merges, self._exact_prefix)
        new._tiktoken = self._tiktoken  # same state, same Encoding: no need to rebuild it
        return new

    def _with_merges(self, merges, exact_prefix, specials=None, decode_only=None):
        """A new tokenizer like this one (class, name, pattern, bytes, specials, decode-only
        tokens) with `merges`."""
        new = type(self).from_merges(
            merges, pattern=self.pattern, byte_ids=self.byte_ids, name=self.name,
            special_tokens=self.special_tokens if specials is None else specials,
            decode_only=self.decode_only if decode_only is None else decode_only)
        new._exact_prefix = exact_prefix
        return new

    # ---- encoding ----------------------------------------------------------------------------

    def _encode_ordinary_python(self, text):
        """The readable encoder: chunks, then BPE in each (bpe.apply_merges). `encode` normally
        runs tiktoken's Rust code instead, which gives the same ids (fastpath.check_exact)."""
        text = fix_surrogates(text)
        chunks = self._compiled.findall(text) if self._compiled else ([text] if text else [])
        ids = []
        for chunk in chunks:
            ids.extend(apply_merges([self.byte_ids[b] for b in chunk.encode("utf-8")], self.merges))
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
        allowed, disallowed = resolve_allowed(self.special_tokens, allowed_special)
        if not allowed:
            refuse_special(text, disallowed)
            return self.encode_ordinary(text)
        ids, pos = [], 0
        for m in special_regex(frozenset(allowed | disallowed)).finditer(text):
            if m.group() in disallowed:
                refuse_special(m.group(), disallowed, offset=m.start())
            ids.extend(self.encode_ordinary(text[pos:m.start()]))
            ids.append(self.special_tokens[m.group()])
            pos = m.end()
        ids.extend(self.encode_ordinary(text[pos:]))
        return ids

    def encode_iterable(self, iterable, allowed_special="none_raise", block_chars=1 << 16):
        """Yield the ids of "".join(iterable) lazily; a file object works (it yields lines).

        Memory stays bounded (a block of about `block_chars` characters, plus the longest chunk)
        whatever the input's size. The text is encoded a block at a time and cut only where
        the cut cannot change an id (see _safe_cut): never at a line end as such, because the
        split pattern decides a chunk by looking past it (`\\s+(?!\\S)` and `\\s++$` read the next
        character or the end of the text), so a whitespace run cut at a newline would split
        differently. Without a split pattern (BasicTokenizer) a block is cut only after a
        special token, so there the memory is bounded by the distance between them.
        """
        allowed, disallowed = resolve_allowed(self.special_tokens, allowed_special)
        names = frozenset(allowed | disallowed)
        pending, size, threshold = [], 0, block_chars
        for piece in iterable:
            pending.append(piece)
            size += len(piece)
            if size < threshold:
                continue
            text = "".join(pending)
            cut = self._safe_cut(text, names)
            if cut:
                yield from self.encode(text[:cut], allowed_special)
            pending, size = [text[cut:]], len(text) - cut
            # no cut (one huge whitespace run): wait for twice as much, so joins stay linear
            threshold = block_chars if cut else 2 * size
        yield from self.encode("".join(pending), allowed_special)

    def _safe_cut(self, text, names):
        """An index c such that encode(text[:c]) + encode(text[c:] + anything) == encode(text +
        anything); 0 when none is found.

        Specials first: a name starting more than the longest name's length before the end is
        wholly inside `text`, so it matches here exactly as in the full text. Then the split
        pattern, inside the ordinary segment after the last such special: its last two chunks
        are held back (the pattern looks at most one run past a chunk, which the next chunk
        holds), and the cut is kept only if the text before it splits into the same chunks on
        its own; since chunks are encoded independently, the ids are then the same.
        """
        limit, seg_start = len(text) - max(map(len, names), default=0), 0
        if names:
            for m in special_regex(names).finditer(text):
                if m.start() >= limit:
                    break
                if m.end() > limit:
                    return m.start()  # the segment before this special is complete
                seg_start = m.end()
        if self._compiled is None or limit <= seg_start:
            return seg_start
        seg = text[seg_start:limit]
        chunks = self._compiled.findall(seg)
        for keep in range(len(chunks) - 2, max(len(chunks) - 6, 0), -1):
            cut = sum(map(len, chunks[:keep]))
            if "\ud800" <= seg[cut - 1] <= "\udbff":
                continue  # never between the halves of a surrogate pair
            if self._compiled.findall(seg[:cut]) == chunks[:keep]:
                return seg_start + cut
        return seg_start

    def encode_batch(self, texts, allowed_special="none_raise"):
        """Encode many texts; with the fast path and no allowed specials, in parallel threads."""
        texts = list(texts)
        allowed, disallowed = resolve_allowed(self.special_tokens, allowed_special)
        fast = self._fast_encoder()
        if fast and not allowed:
            for text in texts:
                refuse_special(text, disallowed)
            return fast.encode_ordinary_batch(texts)
        return [self.encode(t, allowed_special) for t in texts]

    # ---- decoding ----------------------------------------------------------------------------

    def decode_bytes(self, ids):
        """The exact bytes behind `ids` (specials become their names in UTF-8)."""
        inverse = {i: n.encode("utf-8") for n, i in self.special_tokens.items()}
        out = []
        for k, idx in enumerate(ids):
            # 65.0 == 65 and True == 1 as dict keys: refuse them rather than guess
            if type(idx) is not int and (isinstance(idx, bool) or not isinstance(idx, numbers.Integral)):
                raise TypeError(f"token ids must be ints; got {idx!r} ({type(idx).__name__}) "
                                f"at position {k}")
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

    # ---- the tiktoken fast path (fastpath.py) ------------------------------------------------

    def _state_key(self):
        last = next(reversed(self.merges.items())) if self.merges else None
        return (self.pattern, len(self.merges), last, tuple(self.special_tokens.items()))

    def _fast_encoder(self):
        """The cached tiktoken Encoding, or None when it is turned off or not exact."""
        if not self.use_tiktoken:
            return None
        try:
            return self.to_tiktoken()
        except ValueError:
            return None

    def check_tiktoken_exact(self):
        """Raise ValueError unless tiktoken, given our ranks, returns exactly our ids on every
        text (fastpath.check_exact says why that is not automatic)."""
        fastpath.check_exact(self._merged_vocab(), self.merges, self.byte_ids,
                             start=self._exact_prefix)
        self._exact_prefix = len(self.merges)

    def _merged_vocab(self):
        """vocab without the decode-only tokens: what tiktoken may rank (fastpath.check_exact)."""
        if not self.decode_only:
            return self.vocab
        return {i: t for i, t in self.vocab.items() if i not in self.decode_only}

    def to_tiktoken(self):
        """A tiktoken.Encoding with exactly our ids (cached). ValueError if that is impossible.
        Decode-only tokens are not in it (tiktoken would return a chunk equal to one as it)."""
        key = self._state_key()
        if self._tiktoken is not None and self._tiktoken[0] == key:
            cached = self._tiktoken[1]
            if isinstance(cached, ValueError):
                raise cached
            return cached
        try:
            self.check_tiktoken_exact()
            enc = fastpath.build_encoding(self.name, self.pattern, self._merged_vocab(),
                                          self.special_tokens)
        except ValueError as e:
            self._tiktoken = (key, e)
            raise
        self._tiktoken = (key, enc)
        return enc

    # ---- files -------------------------------------------------------------------------------

    def save(self, file_prefix):
        """Write file_prefix.model (for `load`) and file_prefix.vocab (for humans), atomically.

        The format and the reader live in tokenizer/model_file.py.
        """
        model_file.save(self, file_prefix)

    def load(self, model_file):
        """minbpe's way: read a `.model` file (ours or minbpe's) into this tokenizer, replacing
        its merges, pattern and special tokens. `tokenizer.load(path)` returns a new one instead."""
        self.__dict__.update(vars(read_model_file(model_file)))
        return self

    def save_tiktoken(self, path):
        """Write the standard `.tiktoken` rank file (base64 token, space, rank per line).
        Decode-only tokens are left out: tiktoken would produce them (see to_tiktoken)."""
        self.check_tiktoken_exact()
        write_text_atomic(path, fastpath.tiktoken_file_text(self._merged_vocab()))

    def save_hf(self, path):
        """Write a Hugging Face `tokenizer.json` (see tokenizer/hf.py)."""
        return hf.save_hf(self, path)


model_file.register_class(Tokenizer)


def _check_vocab_size(vocab_size):
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 256:
        raise ValueError(f"vocab_size must be an int >= 256 (the 256 byte tokens plus merges), "
                         f"got {vocab_size!r}")
