"""The structured half of the PolicyStrata GitHub Action (run.sh calls it with the venv's Python).

It uses only the standard library and PyYAML (a dependency of every PolicyStrata release), never
PolicyStrata's own modules, so it works with whatever version the action's ``package`` installed.

Subcommands:

``split-args STRING``
    Split ``extra-args`` like a POSIX shell would (quotes, escapes; no expansion) and print the
    arguments NUL-separated.
``postgres-plan --config FILE --extra-args STRING``
    ``install`` when the scan will start a throwaway PostgreSQL and no server binaries exist;
    otherwise one line saying why nothing is needed.
``finish --config FILE --out DIR --exit-code N [--started EPOCH]``
    Write the step outputs (``out``, ``exit-code``, ``sarif``) to ``$GITHUB_OUTPUT``, the scan's
    ``report.md`` to ``$GITHUB_STEP_SUMMARY``, and rewrite ``scan.sarif`` so that its paths are
    relative to the repository root (what ``github/codeql-action/upload-sarif`` expects).

>>> split_args("--baseline 'main scan/scan.json' --db none")
['--baseline', 'main scan/scan.json', '--db', 'none']
>>> database_need({"database": {"schema": "schema.sql"}}, [])
(True, "the config's database section")
>>> database_need({"database": {"schema": "schema.sql"}}, ["--db", "none"])
(False, '--db none')
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import posixpath
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

#: GitHub truncates nothing but rejects a step summary above 1 MiB; stay below it.
SUMMARY_LIMIT = 1_000_000
#: Where Debian and Ubuntu install the server binaries (overridable for tests).
POSTGRES_ROOT = Path(os.environ.get("PS_POSTGRES_ROOT", "/usr/lib/postgresql"))
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")


class ActionError(Exception):
    """An input the action cannot use; reported as one line, exit 2."""


def split_args(text: str) -> list[str]:
    """``extra-args`` as a list of arguments, split like a shell would, nothing expanded.

    >>> split_args('--fail-on-severity high  --baseline "a b.json"')
    ['--fail-on-severity', 'high', '--baseline', 'a b.json']
    >>> split_args('--baseline "unclosed')
    Traceback (most recent call last):
    ...
    policystrata_action.ActionError: extra-args: No closing quotation
    """
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError as exc:
        raise ActionError(f"extra-args: {exc}") from None


def db_option(args: list[str]) -> str | None:
    """The value of the last ``--db`` option in ``args`` (``--db X`` or ``--db=X``), if any.

    >>> db_option(["--db", "none", "--db=auto"])
    'auto'
    """
    value = None
    for i, arg in enumerate(args):
        if arg == "--db" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--db="):
            value = arg.split("=", 1)[1]
    return value


def database_need(config: Any, args: list[str]) -> tuple[bool, str]:
    """Whether the scan starts a throwaway PostgreSQL (so it needs the server binaries), and why.

    The scan uses a database when ``--db`` says so or the config has a ``database`` section; it
    starts its own server unless given an external one (``--db DSN``, ``database.admin_url``).

    >>> database_need({"database": {"admin_url": "postgresql://db/x"}}, [])
    (False, 'database.admin_url: an external server')
    >>> database_need({"version": 1}, ["--db=auto"])
    (True, '--db auto')
    """
    db = db_option(args)
    if db == "none":
        return False, "--db none"
    if db == "auto":
        return True, "--db auto"
    if db is not None:
        return False, "--db DSN: an external server"
    section = config.get("database") if isinstance(config, dict) else None
    if section is None:
        return False, "the config has no database section"
    if isinstance(section, dict) and section.get("admin_url"):
        return False, "database.admin_url: an external server"
    return True, "the config's database section"


def _has_server(bindir: Path) -> bool:
    return all((bindir / name).is_file() for name in SERVER_BINARIES)


def find_postgres(root: Path | None = None) -> Path | None:
    """The first directory with ``initdb``, ``pg_ctl`` and ``postgres``: ``$PG_BINDIR``,
    ``pg_config --bindir``, ``<root>/*/bin`` (newest first), the directory of ``initdb`` on
    ``PATH`` — where the scan's throwaway server looks too."""
    root = POSTGRES_ROOT if root is None else root
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            res = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            res = None
        if res is not None and res.returncode == 0 and res.stdout.strip():
            candidates.append(Path(res.stdout.strip()))

    def version(path: str) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in Path(path).parent.name.split("."))
        except ValueError:
            return (-1,)

    found = sorted(glob.glob(str(root / "*" / "bin")), key=version, reverse=True)
    candidates.extend(Path(p) for p in found)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for candidate in candidates:
        if _has_server(candidate):
            return candidate
    return None


def _load_yaml(path: Path) -> Any:
    import yaml

    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def postgres_plan(config_path: Path, extra_args: str) -> str:
    """``install``, or why no server binaries need installing."""
    try:
        config = _load_yaml(config_path)
    except Exception as exc:  # the scan itself reports a bad config with file and line
        return f"not needed: cannot read {config_path} ({type(exc).__name__}); the scan says why"
    try:
        args = split_args(extra_args)
    except ActionError as exc:
        return f"not needed: {exc}; the scan step fails on it"
    need, why = database_need(config, args)
    if not need:
        return f"not needed: {why}"
    bindir = find_postgres()
    if bindir is not None:
        return f"found PostgreSQL server binaries in {bindir} ({why})"
    return f"install ({why})"


def github_paths(doc: Any, prefix: str) -> Any:
    """Prefix every ``%SRCROOT%``-relative artifact URI of a SARIF document with ``prefix`` (the
    config's directory, relative to the repository root): the scan writes paths relative to its
    config, code scanning resolves them from the repository root.

    >>> loc = {"artifactLocation": {"uri": "traces.jsonl", "uriBaseId": "%SRCROOT%"}}
    >>> doc = github_paths({"runs": [{"results": [{"locations": [loc]}]}]}, "ci/scan")
    >>> doc["runs"][0]["results"][0]["locations"][0]["artifactLocation"]
    {'uri': 'ci/scan/traces.jsonl', 'uriBaseId': '%SRCROOT%'}
    """
    if isinstance(doc, list):
        return [github_paths(item, prefix) for item in doc]
    if not isinstance(doc, dict):
        return doc
    out = {key: github_paths(value, prefix) for key, value in doc.items()}
    uri = out.get("uri")
    if (
        prefix not in ("", ".")
        and out.get("uriBaseId") == "%SRCROOT%"
        and isinstance(uri, str)
        and "://" not in uri
        and not uri.startswith("/")
    ):
        out["uri"] = posixpath.normpath(posixpath.join(prefix, uri))
    return out


def repo_prefix(config_path: Path, workspace: Path) -> str | None:
    """The config's directory relative to the workspace, or None when it lies outside it."""
    config_dir = (workspace / config_path).resolve().parent
    try:
        return config_dir.relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return None


def prepare_sarif(sarif: Path, config_path: Path, workspace: Path) -> None:
    """Rewrite ``sarif`` in place with repository-relative paths (see :func:`github_paths`)."""
    doc = json.loads(sarif.read_text(encoding="utf-8"))
    prefix = repo_prefix(config_path, workspace)
    if prefix is None or prefix == ".":
        return
    doc = github_paths(doc, prefix)
    for run in doc.get("runs", []):
        base = run.get("originalUriBaseIds", {}).get("%SRCROOT%")
        if isinstance(base, dict):
            base["description"] = {"text": "repository root"}
    sarif.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", "utf-8")


EXIT_MEANING = {
    0: "passed (or warnings only)",
    1: "the gate failed",
    2: "usage, input or internal error",
}


def summary_text(report: Path | None, exit_code: int) -> str:
    """The job summary: the scan's report.md, or what happened when there is none."""
    if report is None:
        meaning = EXIT_MEANING.get(exit_code, "unexpected exit code")
        return (
            f"## PolicyStrata scan: exit {exit_code} ({meaning})\n\n"
            "The scan wrote no report; the step's log says why.\n"
        )
    text = report.read_text(encoding="utf-8")
    if len(text.encode("utf-8")) > SUMMARY_LIMIT:
        cut = text.encode("utf-8")[:SUMMARY_LIMIT].decode("utf-8", "ignore")
        text = cut[: cut.rfind("\n") + 1] + (
            "\n\n… truncated: the full report is `report.md` in the scan's output directory.\n"
        )
    return text if text.endswith("\n") else text + "\n"


def _fresh(path: Path, started: float | None) -> bool:
    """``path`` exists and was written by this run (not left over from an earlier one): its
    modification time is not before the run started. A filesystem that keeps whole seconds
    only (the time's nanoseconds are 0) is compared with the start's whole second; any other
    exactly (a 1 s tolerance took a file written just before a quick run for its own).

    >>> import os, tempfile, time
    >>> f = Path(tempfile.mkdtemp()) / "x"; _ = f.write_text("")
    >>> os.utime(f, ns=(1_000_000_000_500_000_000,) * 2)  # written at 1e9 + .5 s
    >>> _fresh(f, 1_000_000_000.7), _fresh(f, 1_000_000_000.2)
    (False, True)
    >>> os.utime(f, ns=(1_000_000_000_000_000_000,) * 2)  # whole seconds only
    >>> _fresh(f, 1_000_000_000.7), _fresh(f, 1_000_000_001.2)
    (True, False)
    """
    if not path.is_file():
        return False
    if started is None:
        return True
    ns = path.stat().st_mtime_ns
    if ns % 1_000_000_000 == 0:
        return ns // 1_000_000_000 >= int(started)
    return ns >= int(started * 1_000_000_000)


def _append(env_var: str, text: str) -> bool:
    target = os.environ.get(env_var)
    if not target:
        return False
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(text)
    return True


def finish(config: Path, out: Path, exit_code: int, started: float | None) -> None:
    workspace = Path(os.environ.get("GITHUB_WORKSPACE") or os.getcwd())
    sarif = out / "scan.sarif"
    sarif_output = ""
    if _fresh(sarif, started):
        prepare_sarif(sarif, config, workspace)
        sarif_output = sarif.as_posix()
    elif exit_code in (0, 1):
        print(
            "policystrata-action: no scan.sarif written (set `sarif: true` in the scan config "
            "to upload findings to code scanning)",
            file=sys.stderr,
        )
    outputs = {"out": out.as_posix(), "exit-code": str(exit_code), "sarif": sarif_output}
    for key, value in outputs.items():
        if "\n" in value or "\r" in value:
            raise ActionError(f"output {key} contains a line break: {value!r}")
    lines = "".join(f"{key}={value}\n" for key, value in outputs.items())
    if not _append("GITHUB_OUTPUT", lines):
        sys.stderr.write(lines)
    report = out / "report.md"
    summary = summary_text(report if _fresh(report, started) else None, exit_code)
    _append("GITHUB_STEP_SUMMARY", summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="policystrata_action.py")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("split-args")
    p.add_argument("text")
    p = sub.add_parser("postgres-plan")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--extra-args", default="")
    p = sub.add_parser("finish")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--exit-code", type=int, required=True)
    p.add_argument("--started", default=None, help="epoch seconds (bash's $EPOCHREALTIME)")
    args = parser.parse_args(argv)
    try:
        if args.command == "split-args":
            sys.stdout.write("".join(arg + "\0" for arg in split_args(args.text)))
        elif args.command == "postgres-plan":
            print(postgres_plan(args.config, args.extra_args))
        else:
            started = float(args.started.replace(",", ".")) if args.started else None
            finish(args.config, args.out, args.exit_code, started)
    except ActionError as exc:
        print(f"policystrata-action: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
