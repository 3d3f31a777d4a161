"""Faults on the reduced benchmark: kills, damaged and lost files, changed settings, bad
``--out`` folders; each must end in the numbers of an uninterrupted run or in a refusal that
names its cause, never in a number used silently.

Run as ``python -m tests.fault_injection OUT [--quick]``: it prints one line per case, a
closing table (cases, and how many were used silently, per kind of fault) and, last, one
JSON report. ``--quick`` runs the kills, the single corruptions and a few representative
cases of every other kind (``tests/test_benchmark_faults.py`` does); without it, every case.

* **kills**: one uninterrupted run goes to ``OUT/run``, then is moved to ``OUT/reference``.
  Then, in ``OUT/run`` again (the same paths, which checkpoints record), a forked child runs
  the same command and SIGKILLs itself at the first kill point (just before or just after a
  file named there is renamed into place, i.e. inside a stage or at its boundary); the next
  child resumes that folder and dies at the next point, and so on; a last run resumes to the
  end. Forking keeps the imports of this process, so nine kills cost little more than one run.
* **single / double corruptions**: files of a copy of the reference (or of a run interrupted
  in the GMN's training) damaged, deleted, or both, with and without the record that lists
  them; the next run must name each damaged file and end with the reference's numbers.
* **changed settings**: every option that decides a number, changed against a finished run
  and against an interrupted one: refused, naming the option, with no file changed.
* **bad inputs**: ``--out`` read-only, full, with a 263-character name, not UTF-8, a
  symbolic link to a missing folder, two runs at once on one ``--out``, a run folder that
  is a symbolic link, an ``inrs/`` shared with another run folder, a data folder moved.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

TINY = [
    "--classes", "0,1", "--limit", "48", "--inr-steps", "20", "--epochs", "2", "--seeds", "2",
    "--families", "gmn,mlp,cnn", "--batch-size", "16", "--cka-permutations", "5",
    "--gmn-config",
    '{"hidden_dim": 8, "num_layers": 1, "batch_size": 16, "lr": 0.005, "epochs": 2}',
    "--no-progress", "--threads", "1",
]  # fmt: skip
GMN_CONFIG = json.loads(TINY[TINY.index("--gmn-config") + 1])

# (when, file under --out): the child dies just before or just after this file is renamed
# into place (the n-th time in that child: every child resumes where the last one died).
KILL_POINTS = [
    ("before", "inrs/shard-00000.safetensors"),  # inside the INR stage, mid-write
    ("after", "inrs/manifest.json"),  # boundary: INRs -> training
    ("after", "runs/gmn/seed0/last.pt"),  # inside training, after epoch 1's checkpoint
    ("before", "runs/gmn/seed0/last.pt"),  # inside training, mid-checkpoint (epoch 2)
    ("before", "runs/gmn/seed0/outputs.safetensors"),  # trained, outputs not yet stored
    ("after", "runs/gmn/seed0/result.json"),  # boundary between runs: one cached, one fresh
    ("after", "runs/cnn/seed1/result.json"),  # boundary: training -> CKA
    ("before", "cka.json"),  # inside the CKA stage, mid-write
    ("after", "results.json"),  # inside the report stage
]
INTERRUPTED_AT = ("after", "runs/gmn/seed0/last.pt")  # a GMN run stopped after its epoch 1

# What may differ between two correct runs: wall-clock figures (and files made of them), and
# the sha256 of checkpoint files (torch.save stores a random serialization id in each file;
# checkpoints are compared by their loaded content instead).
TIMING_FILES = {"summary.json", "metrics.jsonl", "report.md", "timings.json"}
TIMING_KEYS = {"timings", "invocations", "train_seconds", "samples_per_second", "command",
               "content_sha256"}
CHECKPOINT_HASHES = ("best.pt", "last.pt")
LOCK = ".gmn.lock"  # held while a run works in --out; a killed run leaves the file, unlocked

# (file under --out, how it is damaged): every kind of cached file, each detected by name
# on the next run, which computes that stage again. All at once, on one copy.
CORRUPTIONS = [
    ("inrs/shard-00000.safetensors", "flip"),
    ("runs/gmn/seed0/best.pt", "flip"),
    ("runs/mlp/seed1/last.pt", "flip"),
    ("runs/cnn/seed0/outputs.safetensors", "flip"),
    ("runs/gmn/seed1/result.json", "edit"),
    ("runs/mlp/seed0/result.json", "truncate"),
    ("runs/cnn/seed1/best.pt", "delete"),
    ("cka.json", "edit"),
]

# Two faults at once, each case on its own copy: a damaged file together with the loss of
# the record that lists it (the damage must still be caught by the file's own hash), or two
# damaged files of one run. "interrupted": on a copy of a run killed inside GMN training.
# (name, base, [(file, damage), ...], the file the warnings must name)
DOUBLE_CORRUPTIONS = [
    ("best.pt flipped, result.json deleted", "finished",
     [("runs/gmn/seed0/best.pt", "flip"), ("runs/gmn/seed0/result.json", "delete")],
     "runs/gmn/seed0/best.pt"),
    ("shard flipped, manifest.json deleted", "finished",
     [("inrs/shard-00000.safetensors", "flip"), ("inrs/manifest.json", "delete")],
     "inrs/shard-00000.safetensors"),
    ("last.pt flipped in an interrupted run", "interrupted",
     [("runs/gmn/seed0/last.pt", "flip")], "runs/gmn/seed0/last.pt"),
    ("best.pt and result.json deleted", "finished",
     [("runs/gmn/seed1/best.pt", "delete"), ("runs/gmn/seed1/result.json", "delete")],
     "runs/gmn/seed1/last.pt"),
    ("best.pt deleted in an interrupted run", "interrupted",
     [("runs/gmn/seed0/best.pt", "delete")], "runs/gmn/seed0/best.pt"),
    ("outputs flipped, result.json deleted", "finished",
     [("runs/mlp/seed0/outputs.safetensors", "flip"), ("runs/mlp/seed0/result.json", "delete")],
     None),  # nothing lists the outputs any more: the run is tested again from best.pt
    ("best.pt and last.pt flipped", "finished",
     [("runs/cnn/seed0/best.pt", "flip"), ("runs/cnn/seed0/last.pt", "flip")],
     "runs/cnn/seed0/best.pt"),
    ("best.pt flipped, cka.json deleted", "finished",
     [("runs/mlp/seed1/best.pt", "flip"), ("cka.json", "delete")], "runs/mlp/seed1/best.pt"),
    ("shard flipped, manifest.json and build.json deleted", "finished",
     [("inrs/shard-00000.safetensors", "flip"), ("inrs/manifest.json", "delete"),
      ("inrs/build.json", "delete")], "inrs/shard-00000.safetensors"),
]
QUICK_DOUBLES = {"best.pt flipped, result.json deleted", "shard flipped, manifest.json deleted",
                 "last.pt flipped in an interrupted run"}


def _gmn_config(**changes) -> list[str]:
    return ["--gmn-config", json.dumps({**GMN_CONFIG, **changes})]


# (option changed, arguments that change it, a word the refusal must contain)
CHANGED_SETTINGS = [
    ("--epochs", ["--epochs", "3"], "epochs"),
    ("--batch-size", ["--batch-size", "8"], "batch_size"),
    ("--lr", ["--lr", "0.01"], "lr"),
    ("gmn dropout", _gmn_config(dropout=0.05), "dropout"),
    ("gmn label_smoothing", _gmn_config(label_smoothing=0.0), "label_smoothing"),
    ("gmn lr", _gmn_config(lr=0.01), "lr"),
    ("gmn hidden_dim", _gmn_config(hidden_dim=12), "hidden_dim"),
    ("--split", ["--split", "0.6,0.2,0.2"], "split"),
    ("--seed", ["--seed", "1"], "seed"),
    ("--inr-steps", ["--inr-steps", "25"], "recipe"),
    ("--inr-lr", ["--inr-lr", "0.002"], "recipe"),
    ("--views", ["--views", "2"], "views"),
    ("--inr-init", ["--inr-init", "independent"], "recipe"),
    ("--limit", ["--limit", "40"], "images_sha256"),
    ("--classes", ["--classes", "0,2"], "images_sha256"),
]
QUICK_SETTINGS = {"gmn dropout", "gmn label_smoothing", "--split"}


def _with(argv: list[str], changed: list[str]) -> list[str]:
    """``argv`` with the options of ``changed`` replaced (or added)."""
    argv = list(argv)
    for option, value in zip(changed[::2], changed[1::2]):
        if option in argv:
            argv[argv.index(option) + 1] = value
        else:
            argv += [option, value]
    return argv


def _kill_on_rename(out: Path, when: str, target: str, fault=None) -> None:
    """Make ``os.replace`` onto ``out/target`` kill this process (or raise ``fault``)."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        hit = Path(dst).resolve() == (out / target).resolve()
        if hit and fault is not None:
            raise fault
        if hit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        real(src, dst, *args, **kwargs)
        if hit and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace


def _run(argv: list[str]) -> dict:
    from benchmarks.inr_classification.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        return main(argv)


def _run_caught(argv: list[str]) -> tuple[dict | None, str | None, list[str]]:
    """(results or None, the error that stopped the run or None, warning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            results, error = _run(argv), None
        except (Exception, SystemExit) as err:  # noqa: BLE001 - the refusal is the outcome
            results, error = None, f"{type(err).__name__}: {err}"
    return results, error, [str(w.message) for w in caught]


def _in_child(body) -> tuple[int, str]:
    """Run ``body()`` in a forked child; (its exit code or -signal, what it wrote to a pipe)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            os.close(read)
            message = body() or ""
            os.write(write, message.encode(errors="backslashreplace"))
            code = 0
        except BaseException as err:  # noqa: BLE001 - reported to the parent
            os.write(write, f"{type(err).__name__}: {err}".encode(errors="backslashreplace"))
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return code, message


def run_killed(out: Path, when: str, target: str) -> str:
    """Run the benchmark in a forked child that dies at the kill point; how it ended."""
    def body():
        _kill_on_rename(out, when, target)
        _run([*TINY, "--out", str(out)])

    code, _ = _in_child(body)
    if code == -signal.SIGKILL:
        return "killed"
    return "finished without reaching the kill point" if code == 0 else f"failed ({code})"


def kill_and_record(out: Path, when: str, target: str) -> dict:
    outcome = run_killed(out, when, target)
    return {"when": when, "file": target, "outcome": outcome,
            "temporaries_left": _temporaries(out)}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items()
                if k not in TIMING_KEYS and k not in CHECKPOINT_HASHES}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _numbers(results: dict | None):
    """What a run found (accuracies, overlaps, CKA), without where it ran or how long."""
    if results is None:
        return None
    return _strip({k: results[k] for k in ("accuracy", "overlap", "ensembles", "findings",
                                             "cka")} | {"runs": results["runs"]})


def _content(value):
    """A checkpoint's content, comparable with ``==`` (tensors as dtype, shape and bytes)."""
    if isinstance(value, torch.Tensor):
        return (str(value.dtype), tuple(value.shape), value.contiguous().numpy().tobytes())
    if isinstance(value, dict):
        return {k: _content(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_content(v) for v in value]
    return value


def snapshot(out: Path) -> dict[str, object]:
    """Every file of a finished run: JSON content without timings, checkpoints' content,
    other files' sha256."""
    from gmn.files import sha256

    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = str(path.relative_to(out))
        if path.name in TIMING_FILES or path.name == LOCK or "tensorboard" in path.parts:
            continue
        if path.suffix == ".json":
            files[name] = _strip(json.loads(path.read_text()))
        elif path.suffix == ".pt":
            files[name] = _content(torch.load(path, weights_only=True))
        else:
            files[name] = sha256(path)
    return files


def corrupt(path: Path, how: str) -> None:
    if how == "delete":
        path.unlink()
        return
    data = bytearray(path.read_bytes())
    if how == "flip":  # one byte in the middle: the file still parses
        data[len(data) // 2] ^= 0xFF
    elif how == "truncate":
        data = data[: len(data) // 2]
    else:  # valid JSON with one number changed
        text = data.decode()
        at = next(i for i, c in enumerate(text) if c.isdigit() and text[i - 1] in " [-")
        data = bytearray((text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1:]).encode())
    path.write_bytes(bytes(data))


def _named(messages: list[str], path: Path) -> str | None:
    return next((m for m in messages if str(path) in m), None)


class Cases:
    """The outcome of every case, and the closing table."""

    def __init__(self, reference: dict):
        self.reference = reference
        self.rows: list[dict] = []

    def add(self, kind: str, case: str, outcome: str, silent: bool, detail: str = "") -> dict:
        row = {"kind": kind, "case": case, "outcome": outcome, "used_silently": silent,
               "detail": detail}
        self.rows.append(row)
        print(f"[{kind}] {case}: {outcome}{' -- USED SILENTLY' if silent else ''}"
              f"{f' ({detail[:300]})' if detail else ''}", file=sys.stderr, flush=True)
        return row

    def recovered(self, kind: str, case: str, results: dict | None, error: str | None,
                  named: str | None, must_name: bool) -> dict:
        """A fault the run must repair: named (when ``must_name``), then the reference's
        numbers. Wrong numbers with exit 0 are "used silently"; an error is a refusal."""
        if error is not None:
            return self.add(kind, case, "stopped with an error", False, error)
        same = _numbers(results) == _numbers(self.reference)
        if not same:
            return self.add(kind, case, "other numbers", True, named or "named nowhere")
        if must_name and named is None:
            return self.add(kind, case, "reference numbers, damage not named", True)
        return self.add(kind, case, "named, recomputed: reference numbers" if must_name
                        else "reference numbers", False, named or "")

    def table(self) -> str:
        kinds = list(dict.fromkeys(row["kind"] for row in self.rows))
        lines = ["| fault | cases | reference numbers | refused, naming the cause | other "
                 "outcome | used silently |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        totals = [0] * 5
        for kind in kinds:
            rows = [r for r in self.rows if r["kind"] == kind]
            counts = [len(rows),
                      sum(r["outcome"].endswith("reference numbers") for r in rows),
                      sum(r["outcome"].startswith("refused") for r in rows),
                      0, sum(r["used_silently"] for r in rows)]
            counts[3] = counts[0] - counts[1] - counts[2]
            totals = [t + c for t, c in zip(totals, counts)]
            lines.append(f"| {kind} | " + " | ".join(map(str, counts)) + " |")
        lines.append("| **all** | " + " | ".join(f"**{t}**" for t in totals) + " |")
        return "\n".join(lines)


# ------------------------------------------------------------------ the kinds of fault
def kills(root: Path, cases: Cases) -> dict:
    killed = root / "run"
    outcomes = [kill_and_record(killed, when, target) for when, target in KILL_POINTS]
    resumed = _run([*TINY, "--out", str(killed)])
    want, got = snapshot(root / "reference"), snapshot(killed)
    differing = _differing(want, got)
    for kill in outcomes:
        cases.add("kill (SIGKILL), then resume", f"{kill['when']} {kill['file']}",
                  "reference numbers" if kill["outcome"] == "killed" and not differing
                  else kill["outcome"], bool(differing))
    killed.rename(root / "resumed")
    return {"kills": outcomes, "temporaries_after": _temporaries(root / "resumed"),
            "files_compared": len(want), "files_differing": differing,
            "numbers_equal": _strip(cases.reference) == _strip(resumed)}


def single_corruptions(root: Path, cases: Cases) -> dict:
    """Every kind of cached file damaged at once on one copy; each must be named."""
    out = _copy(root / "reference", root / "run")
    for name, how in CORRUPTIONS:
        corrupt(out / name, how)
    results, error, messages = _run_caught([*TINY, "--out", str(out)])
    found = []
    for name, how in CORRUPTIONS:
        named = _named(messages, out / name)
        found.append({"file": name, "damage": how, "named_by": named})
        cases.recovered("single corruption", f"{name} {how}", results, error, named, True)
    return {"corruptions": found,
            "after_corruption_files_differing": _differing(snapshot(root / "reference"),
                                                           snapshot(out)),
            "after_corruption_numbers_equal": _numbers(results) == _numbers(cases.reference)}


def double_corruptions(root: Path, cases: Cases, quick: bool) -> None:
    for name, base, damages, must_name in DOUBLE_CORRUPTIONS:
        if quick and name not in QUICK_DOUBLES:
            continue
        out = _copy(root / ("reference" if base == "finished" else "interrupted"), root / "run")
        for file, how in damages:
            corrupt(out / file, how)
        results, error, messages = _run_caught([*TINY, "--out", str(out)])
        named = _named(messages, out / must_name) if must_name else None
        cases.recovered("double corruption", name, results, error, named, must_name is not None)
        shutil.rmtree(out)


def changed_settings(root: Path, cases: Cases, quick: bool) -> None:
    """Each changed option against a finished and an interrupted run: refused, naming it,
    with no file changed; then the interrupted run resumes to the reference's numbers."""
    for base in ("finished", "interrupted"):
        source = root / ("reference" if base == "finished" else "interrupted")
        out = _copy(source, root / "run")
        before = snapshot(out)
        for option, change, word in CHANGED_SETTINGS:
            if quick and option not in QUICK_SETTINGS:
                continue
            results, error, _ = _run_caught(_with([*TINY, "--out", str(out)], change))
            kind = f"changed setting, {base} run"
            if error is None:
                cases.add(kind, option, "ran", True, "not refused")
            elif word not in error:
                cases.add(kind, option, "refused, without naming the setting", False, error)
            else:
                cases.add(kind, option, "refused, naming the setting", False, error)
        changed = _differing(before, snapshot(out))
        if changed:
            cases.add(f"changed setting, {base} run", "files after the refusals",
                      "files changed", True, ", ".join(changed))
        if base == "interrupted":
            results, error, _ = _run_caught([*TINY, "--out", str(out)])
            cases.recovered(f"changed setting, {base} run", "resumed with its own settings",
                            results, error, None, False)
        shutil.rmtree(out)


def bad_inputs(root: Path, cases: Cases, quick: bool) -> None:
    kind = "bad input"
    # a name longer than the file system allows: refused, naming it, before any work
    long_name = root / ("x" * 263)
    _, error, _ = _run_caught([*TINY, "--out", str(long_name)])
    cases.add(kind, "--out with a 263-character name", _refusal(error, "263 characters"),
              error is None, error or "")
    # a symbolic link to a folder that does not exist
    link = root / "dangling"
    link.symlink_to(root / "nowhere")
    _, error, _ = _run_caught([*TINY, "--out", str(link)])
    cases.add(kind, "--out a link to a missing folder", _refusal(error, "does not exist"),
              error is None, error or "")
    link.unlink()
    _read_only(root, cases)
    _two_runs_at_once(root, cases)
    _full_disk(root, cases)
    _symlinked_run_folder(root, cases)
    _shared_inrs(root, cases)
    if quick:
        return
    _non_utf8_out(root, cases)
    _moved_data_folder(root, cases)


def _refusal(error: str | None, word: str) -> str:
    if error is None:
        return "ran"
    one_line = "\n" not in error.strip()
    return ("refused, naming the cause" if word in error and one_line
            else f"error without '{word}'")


def _read_only(root: Path, cases: Cases) -> None:
    """``--out`` in a folder this process cannot write: a clear refusal, no traceback."""
    folder = root / "read-only"
    folder.mkdir()
    out = folder / "out"

    def body():
        if os.geteuid() == 0:  # root writes anywhere: drop to an unprivileged user
            os.setgid(65534)
            os.setuid(65534)
        return _run_caught([*TINY, "--out", str(out)])[1]

    os.chmod(folder, 0o555)
    try:
        _, error = _in_child(body)
    finally:
        os.chmod(folder, 0o755)
    cases.add("bad input", "--out in a read-only folder",
              _refusal(error or None, "not writable"), not error, error)


def _two_runs_at_once(root: Path, cases: Cases) -> None:
    """Two runs started together on one --out: one works, the other is refused at once,
    naming the first's pid; the finished folder holds the reference's numbers, one log line
    per epoch."""
    out = root / "together"
    children = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read)
                _, error, _ = _run_caught([*TINY, "--out", str(out)])
                os.write(write, (error or "").encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        children.append((pid, read))
    errors = {}
    for pid, read in children:
        with os.fdopen(read, "rb") as pipe:
            errors[pid] = pipe.read().decode()
        os.waitpid(pid, 0)
    refused = [(pid, e) for pid, e in errors.items() if e]
    other = [pid for pid in errors if not errors[pid]]
    epochs = [json.loads(line)["epoch"] for line in
              (out / "runs/gmn/seed0/metrics.jsonl").read_text().splitlines()
              if '"event": "epoch"' in line]
    numbers = _numbers(json.loads((out / "results.json").read_text()))
    ok = (len(refused) == 1 and len(other) == 1 and f"pid {other[0]}" in refused[0][1]
          and epochs == [1, 2] and numbers == _numbers(cases.reference))
    cases.add("bad input", "two runs at once on one --out",
              "refused, naming the cause" if ok else "both ran or a wrong message",
              numbers != _numbers(cases.reference), refused[0][1] if refused else "")
    shutil.rmtree(out)


@contextlib.contextmanager
def _small_disk(folder: Path, size: str):
    """A tmpfs of ``size`` at ``folder`` (True), or nothing (False) where mounting is not
    allowed; unmounted afterwards."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(folder)], capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)


def _full_disk(root: Path, cases: Cases) -> None:
    """The disk fills mid-run: a one-line error naming the file; after space is freed, the
    same command ends with the reference's numbers. A real small tmpfs where this process
    may mount one, else ENOSPC raised at one file's write."""
    with _small_disk(root / "small-disk", "3M") as mounted:
        out = root / "small-disk" / "out"
        if mounted:
            _, error, _ = _run_caught([*TINY, "--out", str(out)])
            how = "a 3 MB tmpfs"
            subprocess.run(["mount", "-o", "remount,size=64M", str(root / "small-disk")],
                           check=True)
        else:
            how = "ENOSPC raised at runs/mlp/seed0/last.pt (no mount allowed)"

            def body():
                _kill_on_rename(out, "before", "runs/mlp/seed0/last.pt",
                                OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
                return _run_caught([*TINY, "--out", str(out)])[1]

            _, error = _in_child(body)
        refused = _refusal(error or None, "disk is full")
        results, error_after, _ = _run_caught([*TINY, "--out", str(out)])
        cases.add("bad input", f"disk full mid-run ({how})", refused, False, error or "")
        cases.recovered("bad input", "... then space freed: the same command", results,
                        error_after, None, False)


def _symlinked_run_folder(root: Path, cases: Cases) -> None:
    """A run folder that is a symbolic link (moved to another disk), with a damaged best.pt:
    named and recomputed in place, the link kept."""
    out = _copy(root / "reference", root / "run")
    elsewhere = root / "elsewhere-seed0"
    shutil.move(out / "runs/gmn/seed0", elsewhere)
    (out / "runs/gmn/seed0").symlink_to(elsewhere)
    corrupt(elsewhere / "best.pt", "flip")
    results, error, messages = _run_caught([*TINY, "--out", str(out)])
    row = cases.recovered("bad input", "run folder a symbolic link, best.pt flipped", results,
                          error, _named(messages, out / "runs/gmn/seed0/best.pt"), True)
    if not (out / "runs/gmn/seed0").is_symlink():
        row.update(outcome="the link was replaced")
    shutil.rmtree(out)
    shutil.rmtree(elsewhere)


def _shared_inrs(root: Path, cases: Cases) -> None:
    """``inrs/`` a link to another run folder's: a refused run (another split) writes
    nothing there."""
    other = _copy(root / "reference", root / "owner")
    out = root / "borrower"
    out.mkdir()
    (out / "inrs").symlink_to(other / "inrs")
    before = {p.name: p.read_bytes() for p in (other / "inrs").iterdir()}
    _, error, _ = _run_caught(_with([*TINY, "--out", str(out)], ["--split", "0.6,0.2,0.2"]))
    after = {p.name: p.read_bytes() for p in (other / "inrs").iterdir()}
    cases.add("bad input", "inrs/ linked to another run's, other --split",
              _refusal(error, "split"), before != after,
              (error or "") + ("" if before == after else "; the other run's INRs changed"))
    shutil.rmtree(out)
    shutil.rmtree(other)


def _non_utf8_out(root: Path, cases: Cases) -> None:
    """A --out whose name is not UTF-8 (the OS accepts it), through the real command line:
    the run works, and its rerun reuses every file (nothing reported damaged or refitted)."""
    out = root / os.fsdecode(b"out-\xff")
    command = [sys.executable, "-m", "benchmarks.inr_classification", *TINY, "--out", str(out)]
    for case in ("--out not UTF-8", "--out not UTF-8, second run (cached)"):
        done = subprocess.run(command, capture_output=True, text=True, errors="replace",
                              cwd=Path(__file__).resolve().parents[1])
        if done.returncode != 0:
            cases.add("bad input", case, "stopped with an error", False, done.stderr[-300:])
        elif "Warning" in done.stderr:
            cases.add("bad input", case, "warned on a valid folder", True, done.stderr[-300:])
        else:
            results = json.loads((out / "results.json").read_text())
            cases.recovered("bad input", case, results, None, None, False)
    shutil.rmtree(out)


def _moved_data_folder(root: Path, cases: Cases) -> None:
    """The same images read from another folder: the fitted INRs are reused, not refitted."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    data = root / "digits-idx"
    data.mkdir()
    images = (digits.images * 255 / 16).round().astype("uint8")
    shape = b"".join(int(d).to_bytes(4, "big") for d in images.shape)
    (data / "t10k-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03" + shape + images.tobytes())
    count = len(digits.target).to_bytes(4, "big")
    (data / "t10k-labels-idx1-ubyte").write_bytes(
        b"\0\0\x08\x01" + count + digits.target.astype("uint8").tobytes())
    argv = [*TINY, "--dataset", "mnist", "--source-split", "test", "--out",
            str(root / "mnist-out")]
    first, error, _ = _run_caught([*argv, "--root", str(data)])
    shards = {p.name: p.stat().st_mtime_ns for p in (root / "mnist-out/inrs").glob("shard-*")}
    moved = shutil.move(data, root / "digits-idx-moved")
    again, error_after, messages = _run_caught([*argv, "--root", str(moved)])
    kept = shards == {p.name: p.stat().st_mtime_ns
                      for p in (root / "mnist-out/inrs").glob("shard-*")}
    same = error is None and error_after is None and _numbers(first) == _numbers(again)
    cases.add("bad input", "data folder moved", "reference numbers" if same and kept
              else "refitted or refused", not same, error or error_after or "; ".join(messages))


# ------------------------------------------------------------------ helpers
def _copy(source: Path, target: Path) -> Path:
    """A copy of a run folder at ``target`` (``OUT/run``: the path the reference was made
    in, which its checkpoints and records hold)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, symlinks=True)
    return target


def _temporaries(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*")
                  if p.is_file() and p.name != LOCK)


def _differing(want: dict, got: dict) -> list[str]:
    return sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))


def main(folder: str, quick: bool = False) -> dict:
    torch.set_num_threads(1)
    start = time.perf_counter()
    root = Path(folder)
    killed = root / "run"  # both runs write here (paths are inside checkpoints and records)
    reference = _run([*TINY, "--out", str(killed)])
    killed.rename(root / "reference")
    run_killed(root / "interrupted", *INTERRUPTED_AT)  # the base of "interrupted" cases
    cases = Cases(reference)
    report = kills(root, cases)
    report.update(single_corruptions(root, cases))
    shutil.rmtree(root / "run")
    double_corruptions(root, cases, quick)
    changed_settings(root, cases, quick)
    bad_inputs(root, cases, quick)
    report["cases"] = cases.rows
    report["table"] = cases.table()
    report["used_silently"] = sum(row["used_silently"] for row in cases.rows)
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--quick"]
    result = main(arguments[0], quick="--quick" in sys.argv)
    print(result["table"])
    print(json.dumps(result))
