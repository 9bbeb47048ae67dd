"""Special tokens: names such as "<|endoftext|>" that stand for one id and are never merged.

They cut text before anything else (training never counts them; encoding never lets a merge cross
them). The danger is text that merely *contains* a special's name: a user's document quoting
"<|endoftext|>" must not end a document in the middle. So, as in tiktoken, encode refuses such
text unless told what to do (`allowed_special`), and says how to tell it.
"""
import functools

import regex

ALLOWED_SPECIAL_MODES = ("all", "none", "none_raise")


@functools.lru_cache(maxsize=64)
def special_regex(names: frozenset):
    """One regex matching any of these special-token names, longest first where they overlap.

    Cached: encode calls it for every text. Longest first because regex alternation takes the
    first alternative that matches at a position ("<|a|>b" must beat "<|a|>").
    """
    alternatives = sorted(names, key=lambda n: (-len(n), n))
    return regex.compile("|".join(regex.escape(n) for n in alternatives))


def resolve_allowed(special_tokens, allowed_special):
    """-> (names to encode as specials, names whose appearance raises).

    allowed_special: "all", "none" (specials are plain text), "none_raise" (plain text would
    raise) or a set of registered names (any other special present raises).
    """
    names = set(special_tokens)
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


def refuse_special(text, disallowed, offset=0):
    """Raise ValueError, naming the token and the fix, if `text` contains a disallowed special."""
    if not disallowed or not text:
        return
    m = special_regex(frozenset(disallowed)).search(text)
    if m:
        name = m.group()
        raise ValueError(
            f"text contains the special token {name!r} (at character {offset + m.start()}), "
            f"which is not allowed. To encode it as the special token, pass "
            f"allowed_special={{{name!r}}} or allowed_special='all'; to encode it as ordinary "
            f"text, pass allowed_special='none' (or use encode_ordinary).")
