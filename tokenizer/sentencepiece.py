"""SentencePiece BPE, the tokenizer family of Llama 2 and Mistral 7B, read from its `.model` file.

How it differs from the byte-level BPE in base.py (GPT-2, GPT-4):

Code points first, bytes only as a fallback. Byte-level BPE starts from the 256 byte values, so
every text is spellable and merges rebuild characters out of bytes. SentencePiece starts from
*characters* (Unicode code points): the vocabulary holds the characters seen in training, and
merges join characters into pieces. A character the vocabulary lacks (a rare CJK ideograph, an
emoji) becomes `<unk>`, unless the model was trained with byte fallback: then it is spelled as
its UTF-8 bytes with the 256 pieces `<0x00>`..`<0xFF>` (Llama 2 and Mistral do this, so they
never produce `<unk>`). 'é' is one piece here, two byte tokens before a merge in GPT-2.

`▁` for spaces. There is no regex splitting the text into words. Instead every space becomes
the visible character `▁` (U+2581) and is merged like any other character, so a piece such as
`▁the` carries its leading space with it, and decoding is just "join the pieces, turn `▁` back
into spaces". A `▁` is also put in front of the whole text (add_dummy_prefix), so that "the" at
the start of a text becomes the same `▁the` as in the middle of one; decoding removes it again.
Training reads its corpus a line at a time, so no piece holds a newline: Llama and Mistral
spell every newline with the byte piece `<0x0A>`.

Scores instead of merge ranks. The file lists pieces, not merges. Each piece has a score, and
for BPE models the score is minus the merge order (`▁t` -2.0, `in` -3.0, ...). To encode,
start from the characters and repeatedly join the adjacent pair whose concatenation is the
highest-scoring piece (ties: the leftmost pair), until no adjacent pair forms a piece. This
is the same "earliest-learned merge first" rule as byte-level BPE, with the rank read from the
score and the pair found by looking the concatenated string up in the vocabulary.

The other piece types: CONTROL pieces (`<s>`, `</s>`, `[INST]`) are never produced from text,
even text that spells them; USER_DEFINED pieces are cut out of the text first (longest match)
and never merged further; UNUSED pieces may appear mid-merge but are split back into the two
pieces that formed them; BYTE pieces are the fallback above; UNKNOWN is `<unk>`.

`SentencePieceTokenizer` reproduces the sentencepiece library's encode and decode for BPE models
with the identity normalizer (the one Llama 2 and Mistral use), trains such models as spm_train
does (`train`; the merges are learned in sentencepiece_trainer.py), and writes `.model` files
the library loads (`save_sentencepiece`). The file is parsed by protobuf.py, with no
dependency on the library or on protobuf.

Why no save_hf: Hugging Face's BPE applies a ranked list of *pairs*, SentencePiece a score per
*piece*. When one piece can form from two pairs at once ([a, aa, a] -> "aaa" at 0 or at 1),
SentencePiece takes the leftmost, Hugging Face the better-ranked pair; and pieces sharing a
score (Mistral's whitespace runs, all at -1e9) tie by position here but by rank there. A
tokenizer.json can only approximate these models.
"""
import copy
import heapq
import operator
import re
from pathlib import Path

from . import downloads, protobuf
from .atomic import atomic_writer
from .bpe import fix_surrogates
from .protobuf import Field
from .sentencepiece_trainer import SPACE, learn_pieces

# piece types (ModelProto.SentencePiece.Type)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
TYPE_NAMES = {NORMAL: "NORMAL", UNKNOWN: "UNKNOWN", CONTROL: "CONTROL",
              USER_DEFINED: "USER_DEFINED", UNUSED: "UNUSED", BYTE: "BYTE"}
MODEL_TYPES = {1: "UNIGRAM", 2: "BPE", 3: "WORD", 4: "CHAR"}
BPE = 2

# ---- the .model schema (sentencepiece_model.proto, the fields this module reads or writes) ----

PIECE = {1: Field("piece", "string"), 2: Field("score", "float"), 3: Field("type", "enum")}
TRAINER_SPEC = {
    1: Field("input", "string", True), 7: Field("input_format", "string"),
    2: Field("model_prefix", "string"), 3: Field("model_type", "enum"),
    4: Field("vocab_size", "int32"), 5: Field("accept_language", "string", True),
    6: Field("self_test_sample_size", "int32"), 10: Field("character_coverage", "float"),
    11: Field("input_sentence_size", "uint64"), 12: Field("mining_sentence_size", "int32"),
    13: Field("training_sentence_size", "int32"), 14: Field("seed_sentencepiece_size", "int32"),
    15: Field("shrinking_factor", "float"), 16: Field("num_threads", "int32"),
    17: Field("num_sub_iterations", "int32"), 18: Field("max_sentence_length", "int32"),
    19: Field("shuffle_input_sentence", "bool"), 20: Field("max_sentencepiece_length", "int32"),
    21: Field("split_by_unicode_script", "bool"), 22: Field("split_by_whitespace", "bool"),
    23: Field("split_by_number", "bool"), 24: Field("treat_whitespace_as_suffix", "bool"),
    25: Field("split_digits", "bool"), 26: Field("allow_whitespace_only_pieces", "bool"),
    30: Field("control_symbols", "string", True),
    31: Field("user_defined_symbols", "string", True),
    32: Field("vocabulary_output_piece_score", "bool"), 33: Field("hard_vocab_limit", "bool"),
    34: Field("use_all_vocab", "bool"), 35: Field("byte_fallback", "bool"),
    36: Field("required_chars", "string"),
    40: Field("unk_id", "int32"), 41: Field("bos_id", "int32"), 42: Field("eos_id", "int32"),
    43: Field("pad_id", "int32"), 44: Field("unk_surface", "string"),
    45: Field("unk_piece", "string"), 46: Field("bos_piece", "string"),
    47: Field("eos_piece", "string"), 48: Field("pad_piece", "string"),
    49: Field("train_extremely_large_corpus", "bool"),
    50: Field("enable_differential_privacy", "bool"),
    51: Field("differential_privacy_noise_level", "float"),
    52: Field("differential_privacy_clipping_threshold", "uint64"),
    53: Field("pretokenization_delimiter", "string"),
    54: Field("seed_sentencepieces_file", "string"),
    55: Field("auto_character_coverage", "bool"),
}
NORMALIZER_SPEC = {
    1: Field("name", "string"), 2: Field("precompiled_charsmap", "bytes"),
    3: Field("add_dummy_prefix", "bool"), 4: Field("remove_extra_whitespaces", "bool"),
    5: Field("escape_whitespaces", "bool"), 6: Field("normalization_rule_tsv", "string"),
}
MODEL_PROTO = {
    1: Field("pieces", PIECE, True), 2: Field("trainer_spec", TRAINER_SPEC),
    3: Field("normalizer_spec", NORMALIZER_SPEC), 5: Field("denormalizer_spec", NORMALIZER_SPEC),
}
# protobuf never writes a field equal to its default, so the reader supplies these
TRAINER_DEFAULTS = dict(model_type=1, byte_fallback=False, treat_whitespace_as_suffix=False,
                        unk_surface=" \u2047 ", unk_piece="<unk>", bos_piece="<s>",
                        eos_piece="</s>", pad_piece="<pad>")
NORMALIZER_DEFAULTS = dict(name="", precompiled_charsmap=b"", add_dummy_prefix=True,
                           remove_extra_whitespaces=True, escape_whitespaces=True)


def is_sentencepiece_model(head: bytes) -> bool:
    """Whether these first bytes of a file look like a SentencePiece ModelProto.

    The file starts with its first piece: key 0x0A (field 1 `pieces`, length-delimited), a
    varint length, then that piece's own first field, key 0x0A again (field 1 `piece`, a
    string). Text formats cannot start with 0x0A 0x?? 0x0A this way unless they begin with
    a blank line, which no tokenizer file here does.
    """
    if len(head) < 3 or head[0] != 0x0A:
        return False
    try:
        _, pos = protobuf.read_varint(head, 1)
    except protobuf.ProtobufError:
        return False
    return pos < len(head) and head[pos] == 0x0A


def byte_piece(b: int) -> str:
    return f"<0x{b:02X}>"


def _spm_utf8_decode(data: bytes) -> str:
    """Decode as sentencepiece does: each invalid byte becomes one U+FFFD.

    (Python's errors="replace" is different: it replaces a truncated multi-byte sequence such
    as E2 82 with a single U+FFFD.) The sequence length is read from the lead byte; the
    sequence is valid if Python's strict decoder accepts it, which rejects the same overlong
    forms, surrogates and code points above U+10FFFF as sentencepiece.
    """
    out, i = [], 0
    while i < len(data):
        lead = data[i]
        n = 1 if lead < 0x80 else 2 if 0xC0 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 \
            else 4 if 0xF0 <= lead < 0xF8 else 0
        try:
            ch = data[i:i + n].decode("utf-8") if n and i + n <= len(data) else None
        except UnicodeDecodeError:
            ch = None
        out.append("\ufffd" if ch is None else ch)
        i += 1 if ch is None else n
    return "".join(out)


class SentencePieceTokenizer:
    """A SentencePiece BPE model: its pieces, scores and types, and the specs that steer it.

    Attributes:
      pieces          [str], index = id, spaces written as ▁
      scores          [float], float32 values as stored in the file
      types           [int], NORMAL/UNKNOWN/CONTROL/USER_DEFINED/UNUSED/BYTE
      trainer_spec    {field: value}, as in the file (see TRAINER_SPEC)
      normalizer_spec {field: value}, as in the file (see NORMALIZER_SPEC)
      name            a short name (from the file name when loaded)
    Derived: special_tokens {piece: id} of the CONTROL pieces; unk_id, bos_id, eos_id (None when
    the model has none); vocab {id: bytes} the text each id decodes to on its own (▁ as a
    space, a leading ▁ kept: the dummy prefix is only removed from a whole text).
    """

    def __init__(self, pieces=None, trainer_spec=None, normalizer_spec=None,
                 denormalizer_spec=None, name="sentencepiece"):
        """pieces: (piece, score, type) triples in id order. Specs: dicts of the file's fields.

        With no pieces: the untrained model, <unk> <s> </s> and the 256 byte pieces, which
        spells every text in bytes (as the byte-level Tokenizer() does before training).
        """
        if pieces is None:
            pieces, trainer_spec, normalizer_spec = base_model(byte_fallback=True)
        self.pieces = [p for p, _, _ in pieces]
        self.scores = [float(s) for _, s, _ in pieces]
        self.types = [int(t) for _, _, t in pieces]
        self.trainer_spec = dict(trainer_spec or {})
        self.normalizer_spec = dict(normalizer_spec or {})
        self.denormalizer_spec = dict(denormalizer_spec or {})
        self.name = name
        self._check_and_index()

    # ---- reading the file --------------------------------------------------------------------

    @classmethod
    def load(cls, path):
        """Read a SentencePiece `.model` file (protobuf ModelProto)."""
        path = Path(path)
        return cls.from_bytes(path.read_bytes(), name=_short_name(path), source=str(path))

    @classmethod
    def from_bytes(cls, data, name="sentencepiece", source="<bytes>"):
        try:
            model = protobuf.decode(data, MODEL_PROTO)
        except protobuf.ProtobufError as e:
            raise ValueError(f"{source}: not a SentencePiece .model file ({e})") from None
        if not model.get("pieces"):
            raise ValueError(f"{source}: not a SentencePiece .model file (it has no pieces)")
        for spec in ("trainer_spec", "normalizer_spec"):  # spm_train always writes both
            if spec not in model:
                raise ValueError(f"{source}: incomplete SentencePiece .model file (no {spec}; "
                                 f"truncated?)")
        pieces = [(p.get("piece", ""), p.get("score", 0.0), p.get("type", NORMAL))
                  for p in model["pieces"]]
        try:
            return cls(pieces, model.get("trainer_spec"), model.get("normalizer_spec"),
                       model.get("denormalizer_spec"), name=name)
        except (ValueError, NotImplementedError) as e:
            raise type(e)(f"{source}: {e}") from None

    def _trainer(self, key):
        return self.trainer_spec.get(key, TRAINER_DEFAULTS.get(key))

    def _normalizer(self, key):
        return self.normalizer_spec.get(key, NORMALIZER_DEFAULTS.get(key))

    def _check_and_index(self):
        """Refuse what we cannot reproduce exactly, check the library's invariants, build maps."""
        model_type = self._trainer("model_type")
        if model_type != BPE:
            raise NotImplementedError(
                f"model_type {MODEL_TYPES.get(model_type, model_type)} is not supported; "
                f"SentencePieceTokenizer implements BPE models only")
        for what, spec in (("normalizer", self.normalizer_spec),
                           ("denormalizer", self.denormalizer_spec)):
            # The normalizer's name only picks a rule table at training time; what encoding
            # applies is the compiled table (precompiled_charsmap), empty for identity.
            if spec.get("precompiled_charsmap"):
                raise NotImplementedError(
                    f"{what} {spec.get('name') or '(unnamed)'!r} is not supported: only the "
                    f"identity normalizer is implemented (train with "
                    f"--normalization_rule_name=identity)")
        self.byte_fallback = bool(self._trainer("byte_fallback"))
        # The library keeps two maps: pieces BPE may form (NORMAL, USER_DEFINED, UNUSED) and
        # reserved ones (UNKNOWN, CONTROL, BYTE), looked up first by piece_to_id.
        self._mergeable, self._reserved = {}, {}
        self._byte_ids = [None] * 256
        unk_ids, user_defined = [], []
        for i, (piece, t) in enumerate(zip(self.pieces, self.types)):
            if not piece:
                raise ValueError(f"piece {i} is empty")
            if t not in TYPE_NAMES:
                raise ValueError(f"piece {i} {piece!r} has unknown type {t}")
            table = self._mergeable if t in (NORMAL, USER_DEFINED, UNUSED) else self._reserved
            if piece in table:
                raise ValueError(f"piece {piece!r} is defined twice (ids {table[piece]} and {i})")
            table[piece] = i
            if t == USER_DEFINED:
                user_defined.append(piece)
            elif t == UNKNOWN:
                unk_ids.append(i)
            elif t == BYTE:
                m = re.fullmatch(r"<0x([0-9A-F]{2})>", piece)
                if not self.byte_fallback:
                    raise ValueError(f"byte piece {piece!r} found although byte_fallback is off")
                if m is None:
                    raise ValueError(f"invalid byte piece {piece!r}")
                self._byte_ids[int(m.group(1), 16)] = i
        if len(unk_ids) != 1:
            raise ValueError(f"a model needs exactly one UNKNOWN piece, found {len(unk_ids)}")
        if self.byte_fallback and None in self._byte_ids:
            raise ValueError(f"byte_fallback is on but byte piece "
                             f"{byte_piece(self._byte_ids.index(None))} is missing")
        self.unk_id = unk_ids[0]
        self.bos_id = self._control_id(self._trainer("bos_piece"))
        self.eos_id = self._control_id(self._trainer("eos_piece"))
        self._unused = {p for p, t in zip(self.pieces, self.types) if t == UNUSED}
        # One pass of this regex cuts text into user-defined pieces (longest first, as the
        # library's prefix matcher does) and single characters.
        self._units = None
        if user_defined:
            alternatives = sorted(user_defined, key=len, reverse=True)
            self._units = re.compile("(?P<user>" + "|".join(map(re.escape, alternatives))
                                     + ")|.", re.DOTALL)
        self._chunks = self._chunk_pattern()
        self._cache = {}
        # every two neighbouring characters inside some piece: BPE never joins any others
        self._bigrams = {p[i:i + 2] for p in self._mergeable for i in range(len(p) - 1)}
        self.special_tokens = {p: i for i, (p, t) in enumerate(zip(self.pieces, self.types))
                               if t == CONTROL}
        self.vocab = {i: self.decode_bytes([i], strip_dummy_prefix=False)
                      for i in range(len(self.pieces))}

    def _chunk_pattern(self):
        """A regex cutting normalized text into chunks that BPE can encode independently.

        The chunks are "a run of ▁, then everything up to the next ▁". No merge can cross a
        chunk boundary when no piece has a ▁ right after another character (true of models
        trained with split_by_whitespace, Mistral's included), and merges inside a chunk
        happen in the same relative order alone as in the whole text (same scores, same
        left-to-right order). So each distinct chunk is encoded once and cached. Not used
        when that does not hold, or with UNUSED pieces: how one is split back depends on
        every pair formed earlier in the whole text. (_encode_chunk cuts chunks further by
        the same argument.)
        """
        space = SPACE if self._normalizer("escape_whitespaces") else " "
        if self._unused or self._trainer("treat_whitespace_as_suffix"):
            return None
        inside = re.compile(f"[^{re.escape(space)}]{re.escape(space)}")
        if any(inside.search(p) for p in self._mergeable):
            return None
        return re.compile(f"{re.escape(space)}*[^{re.escape(space)}]+|{re.escape(space)}+")

    def __getstate__(self):
        # the encode cache is only a speed-up: do not ship it to worker processes
        return {**self.__dict__, "_cache": {}}

    def copy(self):
        """An independent copy (load_any hands out copies of the pretrained tokenizers it caches)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(copy.deepcopy(self.__getstate__()))
        return clone

    def _control_id(self, piece):
        i = self._reserved.get(piece)
        return i if i is not None and self.types[i] == CONTROL else None

    # ---- lookups -----------------------------------------------------------------------------

    @property
    def n_vocab(self):
        """Number of pieces: the rows an embedding table needs."""
        return len(self.pieces)

    @property
    def adds_dummy_prefix(self):
        """Whether encoding puts a ▁ the text does not have in front of every non-empty text."""
        return bool(self._normalizer("add_dummy_prefix"))

    def piece_to_id(self, piece):
        """The library's lookup: reserved pieces first, then the others, else <unk>."""
        i = self._reserved.get(piece)
        if i is None:
            i = self._mergeable.get(piece, self.unk_id)
        return i

    def id_to_piece(self, idx):
        try:
            i = operator.index(idx)  # any integer, numpy's included
        except TypeError:
            i = -1
        if not 0 <= i < len(self.pieces):
            raise ValueError(f"invalid token id {idx!r}: not in this tokenizer's vocabulary "
                             f"(n_vocab={self.n_vocab})")
        return self.pieces[i]

    # ---- encoding ----------------------------------------------------------------------------

    def _split_units(self, text):
        """Text as a list of (unit, is_user_defined): user-defined pieces or single characters."""
        if self._units is None:
            return [(ch, False) for ch in text]
        return [(m.group(), m.group("user") is not None) for m in self._units.finditer(text)]

    def normalize(self, text):
        """The string BPE runs on: spaces as ▁, the dummy prefix, extra spaces removed if asked.

        The identity normalizer maps every character to itself; only the whitespace rules of
        the normalizer spec apply. Space means ' ' only: tabs and newlines are ordinary
        characters (Mistral spells them with byte pieces).
        """
        text = fix_surrogates(text)  # the library refuses lone surrogates
        remove_extra = self._normalizer("remove_extra_whitespaces")
        space = SPACE if self._normalizer("escape_whitespaces") else " "
        dummy = space if self._normalizer("add_dummy_prefix") else ""
        as_suffix = self._trainer("treat_whitespace_as_suffix")
        if not remove_extra:
            if not text:
                return ""
            out = text.replace(" ", space)
            return out + dummy if as_suffix else dummy + out
        units = self._split_units(text)
        start = 0
        while start < len(units) and units[start][0] == " ":
            start += 1
        if start == len(units):  # empty, or nothing but spaces
            return ""
        parts, prev_space = [] if as_suffix else [dummy], True
        for unit, _ in units[start:]:
            if prev_space:
                unit = unit.lstrip(" ")  # a run of spaces collapses to its first one
            if unit:
                parts.append(unit.replace(" ", space))
                prev_space = unit.endswith(" ")
        out = "".join(parts)
        while space and out.endswith(space):  # trailing spaces go, the dummy prefix too
            out = out[:-len(space)]
        return out + dummy if as_suffix else out

    def _bpe(self, normalized):
        """Merge the characters of `normalized` into pieces (strings), highest score first.

        A doubly linked list of symbols and a heap of candidate pairs keyed by (-score, left
        position): the heap's smallest key is the best pair, the leftmost among equal scores.
        A merge leaves stale heap entries behind; an entry is stale when either symbol is gone
        or has grown, which the stored combined length detects (symbols only ever grow).
        """
        units = self._split_units(normalized)
        symbols = [u for u, _ in units]
        frozen = [f for _, f in units]
        n = len(symbols)
        prev = list(range(-1, n - 1))
        nxt = list(range(1, n + 1))
        if n:
            nxt[-1] = -1
        heap, unused_parts = [], {}

        def push(left, right):
            if left < 0 or right < 0 or frozen[left] or frozen[right]:
                return
            piece = symbols[left] + symbols[right]
            idx = self._mergeable.get(piece)
            if idx is None:
                return
            heapq.heappush(heap, (-self.scores[idx], left, right, len(piece)))
            if piece in self._unused:  # remember how it was formed, to split it back later
                unused_parts[piece] = (symbols[left], symbols[right])

        for i in range(1, n):
            push(i - 1, i)
        while heap:
            _, left, right, size = heapq.heappop(heap)
            a, b = symbols[left], symbols[right]
            if not a or not b or len(a) + len(b) != size:
                continue
            symbols[left], symbols[right] = a + b, ""
            nxt[left] = nxt[right]
            if nxt[right] >= 0:
                prev[nxt[right]] = left
            push(prev[left], left)
            push(left, nxt[left])

        out = []

        def resplit(piece):
            if piece in self._unused and piece in unused_parts:
                left, right = unused_parts[piece]
                resplit(left)
                resplit(right)
            else:
                out.append(piece)

        i = 0 if n else -1
        while i != -1:
            resplit(symbols[i])
            i = nxt[i]
        return out

    def _encode_chunk(self, chunk):
        """BPE on one chunk, cut first wherever two neighbouring characters occur together in
        no piece: no merge can join them, so the parts are independent (code such as
        `self.assertEqual(x,` falls into `self`, `.`, `assert`, ...). Parts are cached too."""
        out, start = [], 0
        for i in range(1, len(chunk) + 1):
            if i == len(chunk) or chunk[i - 1:i + 1] not in self._bigrams:
                part = chunk[start:i]
                cached = self._cache.get(part)
                if cached is None:
                    cached = self._cache[part] = self._bpe(part)
                out += cached
                start = i
        return out

    def encode_ordinary(self, text):
        """Text -> ids, without BOS/EOS. Names of control pieces in the text stay plain text."""
        normalized = self.normalize(text)
        if self._chunks is None:
            pieces = self._bpe(normalized)
        else:
            pieces = []
            if len(self._cache) > 100_000:  # bound the memory of a long run
                self._cache.clear()
            for chunk in self._chunks.findall(normalized):
                cached = self._cache.get(chunk)
                if cached is None:
                    cached = self._cache[chunk] = self._encode_chunk(chunk)
                pieces.extend(cached)
        ids, prev_unk = [], False
        for piece in pieces:
            # only mergeable pieces come from text: a symbol spelling a control piece is unknown
            idx = self._mergeable.get(piece, self.unk_id)
            is_unk = idx == self.unk_id
            if is_unk and self.byte_fallback:
                ids.extend(self._byte_ids[b] for b in piece.encode("utf-8"))
            elif not (is_unk and prev_unk):  # a run of unknown characters is one <unk>
                ids.append(idx)
            prev_unk = is_unk
        return ids

    def encode(self, text, add_bos=False, add_eos=False):
        """Text -> ids, optionally with the BOS id in front and the EOS id at the end.

        Unlike the byte-level Tokenizer.encode there is no allowed_special: as in the
        sentencepiece library, text never becomes a control piece, whatever it spells.
        """
        ids = self.encode_ordinary(text)
        for flag, idx, what in ((add_bos, self.bos_id, "bos"), (add_eos, self.eos_id, "eos")):
            if flag and idx is None:
                raise ValueError(f"add_{what}: this model has no {what} piece "
                                 f"({self._trainer(what + '_piece')!r} is not a control piece)")
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def encode_batch(self, texts, add_bos=False, add_eos=False):
        return [self.encode(t, add_bos=add_bos, add_eos=add_eos) for t in texts]

    # ---- decoding ----------------------------------------------------------------------------

    def _surfaces(self, ids, strip_dummy_prefix=True):
        """Yield each id's text as str, or each run of byte pieces as bytes, the library's way.

        Control pieces are invisible, <unk> shows the unk_surface (" ⁇ "), ▁ becomes a space.
        Until some text has been produced, a leading ▁ is the dummy prefix and is removed
        (once; with remove_extra_whitespaces, every leading ▁ until text appears).
        """
        strip = strip_dummy_prefix and (self._normalizer("add_dummy_prefix")
                                        or self._normalizer("remove_extra_whitespaces"))
        at_start, stripped, have_text, run = strip, False, False, bytearray()
        for idx in ids:
            piece = self.id_to_piece(idx)
            idx = self.piece_to_id(piece)
            t = self.types[idx]
            if t == BYTE:
                run.append(int(piece[3:5], 16))
                continue
            if run:
                yield bytes(run)
                run, have_text = bytearray(), True
            at_start = at_start and not (stripped or have_text)
            stripped = False
            if t == CONTROL:
                surface = ""
            elif t == UNKNOWN:
                surface = self._trainer("unk_surface")
            else:
                if at_start and piece.startswith(SPACE):
                    piece = piece[len(SPACE):]
                    stripped = not self._normalizer("remove_extra_whitespaces")
                surface = piece.replace(SPACE, " ")
            have_text = have_text or bool(surface)
            yield surface
        if run:
            yield bytes(run)

    def decode_bytes(self, ids, strip_dummy_prefix=True):
        """The bytes behind `ids`: byte pieces as raw bytes, the rest as UTF-8.

        decode(ids) == decode_bytes(ids).decode() whenever the byte pieces form valid UTF-8;
        otherwise decode replaces each invalid byte with U+FFFD.
        """
        return b"".join(s if isinstance(s, bytes) else s.encode("utf-8")
                        for s in self._surfaces(ids, strip_dummy_prefix))

    def decode(self, ids):
        """Ids -> text, as sentencepiece's DecodeIds (byte pieces regrouped into characters)."""
        return "".join(_spm_utf8_decode(s) if isinstance(s, bytes) else s
                       for s in self._surfaces(ids))

    # ---- training ----------------------------------------------------------------------------

    def train(self, text_or_docs, vocab_size, *, byte_fallback=True, character_coverage=0.9995,
              split_digits=False, split_by_whitespace=True, max_piece_length=16,
              user_defined_symbols=(), add_dummy_prefix=True, allow_whitespace_only_pieces=False,
              workers=1, verbose=False, progress=False):
        """Learn a SentencePiece BPE model of `vocab_size` pieces in all, as spm_train would.

        text_or_docs: a str or an iterable of str documents; each line is a sentence, as in
        spm_train. The options are spm_train's, with its defaults except byte_fallback (on,
        as in Llama and Mistral). Not supported: split_by_unicode_script (needs Unicode
        script data; it is off here), normalizers other than identity, removing extra spaces,
        sampling sentences; and no line is skipped for length (spm_train drops lines over
        max_sentence_length, 4192 bytes by default).
        The merges are greedy and exact (see sentencepiece_trainer.bpe_merges); spm_train instead
        re-ranks only its most frequent pairs every 100 merges, so on large corpora the two can
        part ways. workers: processes that count the words (the result is the same for any
        number; spm_train's --num_threads is the like).
        """
        if not isinstance(vocab_size, int) or vocab_size < 1:
            raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
        pieces, trainer, normalizer = base_model(byte_fallback, tuple(user_defined_symbols),
                                                 add_dummy_prefix)
        base = SentencePieceTokenizer(pieces, trainer, normalizer)
        merged, chars = learn_pieces(
            base.training_sentences(text_or_docs), vocab_size, len(pieces),
            character_coverage=character_coverage, split_digits=split_digits,
            split_by_whitespace=split_by_whitespace, max_piece_length=max_piece_length,
            allow_whitespace_only_pieces=allow_whitespace_only_pieces, workers=workers,
            verbose=verbose, progress=progress)
        taken = {p for p, _, _ in pieces}
        new = [p for p in merged + chars if p not in taken]  # a user symbol may also be a char
        pieces += [(p, -float(k), NORMAL) for k, p in enumerate(new)]
        trainer.update(vocab_size=len(pieces), character_coverage=character_coverage,
                       split_digits=split_digits, split_by_whitespace=split_by_whitespace,
                       max_sentencepiece_length=max_piece_length,
                       allow_whitespace_only_pieces=allow_whitespace_only_pieces,
                       split_by_unicode_script=False)
        self.__init__(pieces, trainer, normalizer, name=self.name)
        return self

    def training_sentences(self, text_or_docs):
        """Yield the normalized sentences training counts: each line of each document, as
        spm_train reads its input, with spaces as ▁ and the dummy prefix, cut at user-defined
        symbols (they are frozen when encoding, so no merge may cross or enter them). Newlines
        are therefore never inside a piece: encoding spells them with byte pieces, as Llama and
        Mistral do. In the usual case a document's sentences come as one string, joined by
        "\n" (str methods over the whole document instead of a Python step per line)."""
        docs = [text_or_docs] if isinstance(text_or_docs, str) else text_or_docs
        # the usual case, done a document at a time: what normalize() does to each line
        simple = self._units is None and not self._normalizer("remove_extra_whitespaces") \
            and self._normalizer("escape_whitespaces")
        dummy = SPACE if self._normalizer("add_dummy_prefix") else ""
        as_suffix = self._trainer("treat_whitespace_as_suffix")
        for doc in docs:
            if simple:
                text = _EMPTY_LINES.sub("\n", fix_surrogates(doc).replace(" ", SPACE)).strip("\n")
                if text and dummy:
                    text = (text.replace("\n", dummy + "\n") + dummy if as_suffix
                            else dummy + text.replace("\n", "\n" + dummy))
                if text:
                    yield text
                continue
            for line in doc.split("\n"):
                normalized = self.normalize(line)
                if self._units is None:
                    if normalized:
                        yield normalized
                    continue
                part = []
                for unit, is_user in self._split_units(normalized):
                    if is_user:
                        if part:
                            yield "".join(part)
                        part = []
                    else:
                        part.append(unit)
                if part:
                    yield "".join(part)

    def truncated(self, vocab_size):
        """A trained model cut to `vocab_size`: equal to training at that size.

        Greedy merges do not depend on where training stops, and the kept characters do not
        depend on vocab_size, so training at a smaller size gives the first merges of this
        one, then the same characters, scored on from the last merge.
        """
        meta = [(p, s, t) for p, s, t in zip(self.pieces, self.scores, self.types) if t != NORMAL]
        normal = [p for p, t in zip(self.pieces, self.types) if t == NORMAL]
        merges = [p for p in normal if len(p) > 1]
        chars = [p for p in normal if len(p) == 1]
        n_merges = vocab_size - len(meta) - len(chars)
        if not 0 <= n_merges <= len(merges):
            raise ValueError(f"vocab_size must be between {len(meta) + len(chars)} and "
                             f"{self.n_vocab} for this model, got {vocab_size}")
        pieces = meta + [(p, -float(k), NORMAL) for k, p in enumerate(merges[:n_merges] + chars)]
        trainer = dict(self.trainer_spec, vocab_size=len(pieces))
        return SentencePieceTokenizer(pieces, trainer, self.normalizer_spec,
                                      self.denormalizer_spec, name=self.name)

    # ---- writing -----------------------------------------------------------------------------

    def to_bytes(self):
        """The ModelProto bytes of this model (fields as loaded; unknown fields are not kept)."""
        # type is omitted for NORMAL pieces (its default), as spm_train writes it
        model = {"pieces": [{"piece": p, "score": s, **({"type": t} if t != NORMAL else {})}
                            for p, s, t in zip(self.pieces, self.scores, self.types)],
                 "trainer_spec": self.trainer_spec, "normalizer_spec": self.normalizer_spec}
        if self.denormalizer_spec:
            model["denormalizer_spec"] = self.denormalizer_spec
        return protobuf.encode(model, MODEL_PROTO)

    def save_sentencepiece(self, path):
        """Write a `.model` file the sentencepiece library loads (atomically: temp + rename)."""
        with atomic_writer(path) as f:
            f.write(self.to_bytes())


# ---- the Mistral 7B tokenizers, fetched from the package index ----------------------------------

# The Mistral 7B tokenizers, as files inside the mistral-common wheel (see downloads.py)
MISTRAL_MODELS = {"v1": "tokenizer.model.v1",                          # Mistral 7B v0.1, 32000 pieces
                  "v7": "mistral_instruct_tokenizer_241114.model.v7"}  # 32768, user-defined pieces


def mistral_model_path(version="v1", cache=None) -> Path:
    """The Mistral 7B tokenizer's `.model` file, taken once out of the pinned mistral-common wheel
    (downloads.fetch: sha256-checked, cached in ~/.cache/vocablab or `cache`). Raises
    downloads.DownloadError (an OSError's sibling: a RuntimeError) when it cannot be had."""
    if version not in MISTRAL_MODELS:
        raise ValueError(f"unknown Mistral tokenizer version {version!r}; choose one of "
                         f"{', '.join(MISTRAL_MODELS)}")
    return downloads.fetch("mistral", cache) / MISTRAL_MODELS[version]


def _short_name(path):
    name = path.name
    return name[:-len(".model")] if name.endswith(".model") else name


_EMPTY_LINES = re.compile("\n\n+")  # (spm_train skips empty lines)


# ---- the layout of a trained model --------------------------------------------------------------
#
# The vocabulary spm_train --model_type=bpe builds, in its order:
#   <unk> <s> </s>, the user-defined symbols, the 256 byte pieces (with byte_fallback),
#   the merged pieces (scores 0, -1, -2, ... in merge order), then the kept characters.
# vocab_size counts all of them, so the number of merges is what is left after the rest.

def base_model(byte_fallback=True, user_defined_symbols=(), add_dummy_prefix=True):
    """The pieces and specs every trained model starts from (ids as spm_train gives them)."""
    pieces = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL)]
    pieces += [(u, 0.0, USER_DEFINED) for u in dict.fromkeys(user_defined_symbols)]
    if byte_fallback:
        pieces += [(byte_piece(b), 0.0, BYTE) for b in range(256)]
    trainer = dict(model_type=BPE, vocab_size=len(pieces), byte_fallback=byte_fallback)
    if user_defined_symbols:
        trainer["user_defined_symbols"] = list(dict.fromkeys(user_defined_symbols))
    normalizer = dict(name="identity", add_dummy_prefix=add_dummy_prefix,
                      remove_extra_whitespaces=False)
    return pieces, trainer, normalizer
