"""The one error-handling layer of every tfopt command line (TensorFlow-free).

Every CLI (`tfopt.train`, `tfopt.models`, `tfopt.tflite`, `tfopt.compress.ocnna`,
`tfopt.experiments.ablation` / `fit` / `recommend`) runs its main function through `run()`:

    def main(argv=None) -> int:
        return cli.run(_main, argv, flag_values=FLAGS, doc=__doc__)

`run()` parses the absl flags (each CLI has its own `FlagValues`, except the ablation, which
owns the global `flags.FLAGS`), refuses a value carrying a `#` comment, and turns every user
error into exactly one line on stderr, `error: <flag or file>: <value>: <what is allowed>`, and
exit status 2 (never a traceback):

- `ValueError` (bad values; `modelfile.UnsafeModelError`; LiteRT's "not a flatbuffer"),
  absl's `flags.Error` (unknown flag, bad type, missing required flag), `KeyError` (a zip or
  JSON without the expected entry), `OSError` (missing / existing / unreadable / unwritable
  file, `ConnectionError` from a cluster address) and `RuntimeError` (LiteRT refusing a model).
- `SystemExit(str)` is the same one line; `SystemExit(int)` passes its code through.
- Ctrl-C is `error: interrupted` and exit status 130.

Anything else (TypeError, AttributeError, ...) is a bug in tfopt and keeps its traceback.
`TFOPT_TRACEBACK=1` shows the traceback of user errors too (for a bug report).
"""

from __future__ import annotations

import os
import re
import sys
from typing import Callable, Sequence

from absl import flags

USAGE_STATUS = 2
USER_ERRORS = (ValueError, LookupError, OSError, RuntimeError, flags.Error)
HELP_ARGS = ("-h", "--help", "-help", "--helpshort", "--helpfull", "-?")
_COMMENT = re.compile(r"(^|\s)#")
_REQUIRED = re.compile(r"Flag --(\w+) must have a value other than None")


def bad_value(flag: str, value, allowed: str) -> ValueError:
    """The one-line error for a bad flag value: `--flag=value: expected <allowed>`."""
    return ValueError(f"--{flag}={value}: expected {allowed}")


def describe(err: BaseException) -> str:
    """One line for a user error: the first line of its message, naming the file for OSError."""
    if isinstance(err, KeyError) and len(err.args) == 1:
        text = f"missing entry {err.args[0]!r}"
    elif isinstance(err, OSError) and err.filename is not None and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = str(err)
        if isinstance(err, flags.Error):
            required = _REQUIRED.search(text)
            text = f"--{required.group(1)} is required" if required else text
            text = re.sub(r"^(ERROR:+\s*)+", "", text.strip())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def check_no_comments(flag_values: flags.FlagValues) -> None:
    """Refuse a flag value holding ` #` (a comment after a value in a flagfile).

    absl keeps such a comment in the value (`--workdir=runs/x  # here` would create a folder
    named `runs/x  # here`); the rule: comments go on their own line, starting with `#`.
    """
    for name in list(flag_values):
        flag = flag_values[name]
        if not flag.present or name != flag.name:
            continue
        values = flag.value if isinstance(flag.value, list) else [flag.value]
        for value in values:
            if isinstance(value, str) and _COMMENT.search(value):
                raise ValueError(f"--{name}={value!r}: a '#' comment after a value is not "
                                 f"allowed; put comments on their own line")


def parse(flag_values: flags.FlagValues, argv: Sequence[str]) -> list[str]:
    """Parse `argv` (argv[0] is the program) into `flag_values`; the rest, program first.

    Re-parsing in one process (tests) starts from the defaults. Bad flags raise `flags.Error`.
    """
    flag_values.unparse_flags()
    rest = flag_values(list(argv))
    check_no_comments(flag_values)
    if flag_values is not flags.FLAGS and not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()   # absl logging: no "before flag parsing" warning
    return rest


def _print_help(flag_values, doc: str | None) -> None:
    if doc:
        print(doc.strip() + "\n")
    if flag_values is not None:
        print(flag_values.get_help())


def run(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None, *,
        flag_values: flags.FlagValues | None = None, doc: str | None = None,
        prog: str | None = None) -> int:
    """Run `main(rest)` with flags parsed from `argv` (without the program name; default
    `sys.argv[1:]`); returns the exit status (user errors: one line on stderr, status 2)."""
    args = list(sys.argv[1:] if argv is None else argv)
    argv0 = prog or (sys.argv[0] if sys.argv else "tfopt")
    try:
        if flag_values is None:
            code = main(args)
        elif any(a in HELP_ARGS for a in args):
            _print_help(flag_values, doc)
            return 0
        else:
            code = main(parse(flag_values, [argv0, *args]))
        return 0 if code is None else int(code)
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        return _fail(str(stop.code), stop)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        return _fail(describe(err), err)


def run_command(argv: Sequence[str] | None, *, doc: str | None, prog: str,
                commands: dict[str, Callable[[list[str]], int | None]],
                flag_values: dict[str, flags.FlagValues]) -> int:
    """`prog COMMAND [args]`: picks `commands[COMMAND]` and runs it through `run` with that
    command's FlagValues; no command or --help prints `doc`; an unknown one is one line, exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in HELP_ARGS:
        print(doc)
        return 0 if argv else USAGE_STATUS
    command = argv[0]
    if command not in commands:
        print(f"error: command {command!r}: expected one of {', '.join(commands)}",
              file=sys.stderr)
        return USAGE_STATUS
    return run(commands[command], argv[1:], flag_values=flag_values[command], doc=doc,
               prog=f"{prog} {command}")


def check_writable_dir(flag: str, path: str) -> None:
    """Create folder `path` and prove it is writable, before long work (one-line ValueError)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise bad_value(flag, path, "a folder (a file of that name exists)")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write_probe")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as err:
        raise bad_value(flag, path, f"a writable folder ({err.strerror or err})") from None


def _fail(message: str, err: BaseException) -> int:
    if os.environ.get("TFOPT_TRACEBACK"):
        raise err
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    message = lines[0] if lines else type(err).__name__
    message = message[len("error: "):] if message.startswith("error: ") else message
    print(f"error: {message}", file=sys.stderr)
    return USAGE_STATUS


def entry(main: Callable[[list[str]], int | None], **kw) -> None:
    """`if __name__ == "__main__": cli.entry(_main, flag_values=FLAGS, doc=__doc__)`."""
    sys.exit(run(main, None, **kw))
