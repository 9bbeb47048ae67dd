"""One command-line convention for every vocablab command: long options with `-` or `_`.

Users type `--vocab-size` and `--vocab_size` interchangeably (the TOML keys have underscores, most
Unix tools hyphens), so every command accepts both. It lives in the first stage because every
later stage's commands (data.prepare, train_gpt.py, the studies) may import it.
"""
import argparse
import sys


def respell(argv, sep):
    """Long option names written with `sep` between words: ["--vocab_size=8"] -> ["--vocab-size=8"]
    for sep="-". Values and everything after a bare "--" are left alone."""
    other = "_" if sep == "-" else "-"
    out = list(argv)
    for k, arg in enumerate(out):
        if arg == "--":
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg.partition("=")
            out[k] = "--" + name[2:].replace(other, sep) + eq + value
    return out


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with long options accepted in either spelling (`sep` is how they are declared)."""

    def __init__(self, *args, sep="-", **kwargs):
        super().__init__(*args, **kwargs)
        self.sep = sep

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(respell(args, self.sep), namespace)
