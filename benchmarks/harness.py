"""Side-by-side benchmark: this checkout's CLI against the published ``policystrata==1.1.3``.

    uv run python benchmarks/harness.py             # the full table (tens of minutes)
    uv run python benchmarks/harness.py --quick     # CI-sized workloads, 2 pairs
    uv run python benchmarks/harness.py --only scan_10000 run_generated_5000

What it does:

* installs ``policystrata==1.1.3`` from the package index into its own virtualenv under
  ``~/.cache/policystrata-bench/`` (``$POLICYSTRATA_BENCH_CACHE`` overrides; made once, with
  ``uv`` when it is on PATH, else ``python -m venv`` + pip), never inside the repository;
* writes the scan workloads' trace files deterministically from the built-in domain
  (``benchmarks/make_traces.py``), into the same cache;
* runs each workload as child processes, interleaved: one warm-up of each CLI, then ``--pairs``
  pairs (ours, published, ours, published, ...); each child's wall time, CPU time (user + sys,
  children included) and peak RSS are read with ``os.wait4``;
* times our stages separately (``STRATA_PROFILE``: lowering, engine, proofs, proof check,
  minimization, stack, I/O; exclusive CPU seconds, worker processes summed);
* reports medians, the ratio ours / published per workload, and each target of issue 14 (met,
  or by how much it is missed), in ``benchmarks/results/latest.md`` and ``latest.json``.

Wall time on a shared machine is noisy: the load average when each workload started is
recorded, and CPU time is reported beside it. Same inputs, same outputs: the run directories of
our CLI are compared across the pairs (byte-identical, else the harness fails).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PUBLISHED = "policystrata==1.1.3"
CACHE = Path(
    os.environ.get("POLICYSTRATA_BENCH_CACHE", Path.home() / ".cache" / "policystrata-bench")
)


@dataclass
class Workload:
    name: str
    ours: list[str]  # arguments after `strata`; {out} and {config} are filled in
    published: list[str] | None  # arguments after `policystrata` (None: ours only)
    traces: int = 0  # >0: a scan over this many generated trace records
    pairs: int | None = None  # None: the --pairs option
    note: str = ""
    unit_count: int = 0  # records/cases, for a throughput column
    compare_outputs: bool = True
    alt: list[str] | None = None  # B is our own CLI with these arguments (e.g. --jobs 2)
    warmup: bool = True


def _gen(count: int, *extra: str) -> list[str]:
    return ["run", "--suite", "generated", "--count", str(count), "--seed", "1729", *extra]


def workloads(quick: bool) -> list[Workload]:
    if quick:
        return [
            Workload(
                "run_generated_100",
                [*_gen(100), "--db", "none", "--out", "{out}"],
                [*_gen(100), "--out", "{out}"],
                unit_count=100,
            ),
            Workload(
                "run_generated_100_no_minimize",
                [*_gen(100), "--db", "none", "--no-minimize", "--out", "{out}"],
                [*_gen(100), "--out", "{out}"],
                unit_count=100,
            ),
            Workload(
                "scan_500",
                ["scan", "--config", "{config}", "--out", "{out}", "--db", "none"],
                ["scan", "--config", "{config}", "--out", "{out}"],
                traces=500,
                unit_count=500,
            ),
            Workload("demo", ["demo", "--out", "{out}"], ["demo", "--out", "{out}"]),
            Workload(
                "jobs_1_vs_2_100",
                [*_gen(100), "--db", "none", "--out", "{out}", "--jobs", "1"],
                None,
                alt=[*_gen(100), "--db", "none", "--out", "{out}", "--jobs", "2"],
                unit_count=100,
                note="ours --jobs 1 (A) against ours --jobs 2 (B)",
            ),
            Workload("proof_ms", ["proof-bench", "60"], None, pairs=1),
        ]
    return [
        Workload(
            "run_generated_500",
            [*_gen(500), "--db", "none", "--out", "{out}"],
            [*_gen(500), "--out", "{out}"],
            unit_count=500,
        ),
        Workload(
            "run_generated_500_no_minimize",
            [*_gen(500), "--db", "none", "--no-minimize", "--out", "{out}"],
            [*_gen(500), "--out", "{out}"],
            unit_count=500,
        ),
        Workload(
            "run_generated_2000",
            [*_gen(2000), "--db", "none", "--out", "{out}"],
            [*_gen(2000), "--out", "{out}"],
            unit_count=2000,
        ),
        Workload(
            "run_generated_5000",
            [*_gen(5000), "--db", "none", "--out", "{out}"],
            [*_gen(5000), "--out", "{out}"],
            unit_count=5000,
        ),
        Workload(
            "run_generated_5000_no_minimize",
            [*_gen(5000), "--db", "none", "--no-minimize", "--out", "{out}"],
            [*_gen(5000), "--out", "{out}"],
            unit_count=5000,
        ),
        *(
            Workload(
                f"scan_{n}",
                ["scan", "--config", "{config}", "--out", "{out}", "--db", "none"],
                ["scan", "--config", "{config}", "--out", "{out}"],
                traces=n,
                unit_count=n,
            )
            for n in (2000, 8000, 10000)
        ),
        Workload("demo", ["demo", "--out", "{out}"], ["demo", "--out", "{out}"]),
        Workload(
            "jobs_1_vs_2_500",
            [*_gen(500), "--db", "none", "--out", "{out}", "--jobs", "1"],
            None,
            alt=[*_gen(500), "--db", "none", "--out", "{out}", "--jobs", "2"],
            unit_count=500,
            note="ours --jobs 1 (A) against ours --jobs 2 (B)",
        ),
        Workload(
            "rss_run_generated_50000",
            [*_gen(50000), "--db", "none", "--no-minimize", "--out", "{out}"],
            None,
            pairs=1,
            unit_count=50000,
            compare_outputs=False,
            warmup=False,
        ),
        Workload("proof_ms", ["proof-bench", "300"], None, pairs=1),
        Workload("pytest", ["pytest"], None, pairs=1, warmup=False, compare_outputs=False),
    ]


#: The workloads the issue's targets are read from (``--targets``).
TARGET_WORKLOADS = (
    "run_generated_5000",
    "run_generated_5000_no_minimize",
    "scan_10000",
    "jobs_1_vs_2_500",
    "rss_run_generated_50000",
    "proof_ms",
    "pytest",
)


# ---- the two CLIs -------------------------------------------------------------------------------


def published_venv() -> Path:
    """The virtualenv holding the published CLI (created on first use)."""
    venv = CACHE / "published-1.1.3"
    exe = venv / "bin" / "policystrata"
    if exe.exists():
        return exe
    venv.parent.mkdir(parents=True, exist_ok=True)
    print(f"installing {PUBLISHED} into {venv}", file=sys.stderr)
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "-q", "--python", "3.11", str(venv)], check=True)
        env = {**os.environ, "VIRTUAL_ENV": str(venv)}
        subprocess.run([uv, "pip", "install", "-q", PUBLISHED], check=True, env=env)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", PUBLISHED], check=True)
    return exe


def _generator_digest() -> str:
    """What the trace files depend on: the generator, the reference stack and the domain."""
    h = hashlib.sha256()
    files = [ROOT / "benchmarks" / "make_traces.py"]
    files += sorted((ROOT / "policystrata" / "stack").glob("*.py"))
    files += sorted(p for p in (ROOT / "domains" / "support_saas").rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def trace_config(n: int) -> Path:
    """A scan config over ``n`` generated trace records (written once per version of the
    generator, the reference stack and the domain, deterministically)."""
    directory = CACHE / f"traces-{n}-{_generator_digest()}"
    cfg = directory / "policystrata.yaml"
    if cfg.exists():
        return cfg
    # in a child process: the harness itself stays small, since a measured child's peak RSS
    # starts from the harness's (the kernel copies its resident size at fork)
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from make_traces import write_config, write_traces;"
        "d = Path(sys.argv[2]); write_traces(d / 'traces.jsonl', int(sys.argv[3]));"
        "write_config(d, 'traces.jsonl')"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "benchmarks"), str(directory), str(n)],
        check=True,
    )
    return cfg


@dataclass
class Sample:
    wall: float
    cpu: float
    rss_mb: float
    exit_code: int
    stages: dict[str, Any] = field(default_factory=dict)
    digest: str | None = None


def _tree_digest(path: Path) -> str | None:
    if not path.exists():
        return None
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode() + b"\0")
            with p.open("rb") as f:  # streamed: never a whole output file in the harness
                h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()[:16]


def _no_op() -> None:
    return None


def run_child(cmd: list[str], profile: bool, out: Path | None) -> Sample:
    env = dict(os.environ)
    prof_file = None
    if profile:
        fd, prof_file = tempfile.mkstemp(prefix="strata-profile-")
        os.close(fd)
        env["STRATA_PROFILE"] = prof_file
    start = time.perf_counter()
    # a preexec_fn makes Popen fork rather than vfork: a vforked child would inherit the
    # harness's own peak RSS as its ru_maxrss floor
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_no_op,
    )
    # read stderr while waiting (a full pipe would block the child)
    err = proc.stderr.read() if proc.stderr is not None else b""
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    stages: dict[str, Any] = {}
    if prof_file is not None:
        for f in [Path(prof_file), *Path(prof_file).parent.glob(Path(prof_file).name + ".*")]:
            try:
                data = json.loads(f.read_text() or "{}")
            except (OSError, ValueError):
                data = {}
            for name, row in data.get("stages", {}).items():
                acc = stages.setdefault(name, {"cpu_s": 0.0, "count": 0})
                acc["cpu_s"] += row["cpu_s"]
                acc["count"] += row["count"]
            f.unlink(missing_ok=True)
    if code not in (0, 1):
        sys.stderr.write(err.decode(errors="replace")[-3000:])
        raise SystemExit(f"{' '.join(cmd)} exited {code}")
    if "proof_bench.py" in " ".join(cmd):
        stages = json.loads(err.decode().strip().splitlines()[-1])
    return Sample(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mb=usage.ru_maxrss / 1024,
        exit_code=code,
        stages=stages,
        digest=_tree_digest(out) if out is not None else None,
    )


def _fill(args: list[str], out: Path, config: Path | None) -> list[str]:
    return [a.replace("{out}", str(out)).replace("{config}", str(config or "")) for a in args]


def measure(w: Workload, pairs: int, published: Path | None) -> dict[str, Any]:
    """Warm-up, then ``pairs`` interleaved pairs; medians and every sample."""
    config = trace_config(w.traces) if w.traces else None
    ours_exe = [sys.executable, "-m", "policystrata"]
    if w.ours[0] == "proof-bench":
        cmd = [sys.executable, str(ROOT / "benchmarks" / "proof_bench.py"), w.ours[1]]
        s = run_child(cmd, profile=False, out=None)
        return {"name": w.name, "kind": "proof", **s.stages, "wall_s": round(s.wall, 2)}
    if w.ours[0] == "pytest":
        return measure_pytest(w)
    a_args = w.ours
    if w.published is not None:
        b_cmd_base = [str(published), *w.published]
        b_label = "published"
    elif w.alt is not None:
        b_cmd_base = [*ours_exe, *w.alt]
        b_label = "ours " + " ".join(
            f"{w.alt[i - 1]} {b}"
            for i, (a, b) in enumerate(zip(w.ours, w.alt, strict=False))
            if a != b
        )
    else:
        b_cmd_base = None
        b_label = ""
    load = os.getloadavg()[0]
    a_samples: list[Sample] = []
    b_samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as tmp:
        for i in range(pairs + int(w.warmup)):  # the first pair is the warm-up
            out_a = Path(tmp) / f"a{i}"
            sa = run_child([*ours_exe, *_fill(a_args, out_a, config)], True, out_a)
            if w.compare_outputs is False:
                sa.digest = None
            shutil.rmtree(out_a, ignore_errors=True)
            sb = None
            if b_cmd_base is not None:
                out_b = Path(tmp) / f"b{i}"
                sb = run_child(_fill(b_cmd_base, out_b, config), b_label != "published", out_b)
                shutil.rmtree(out_b, ignore_errors=True)
            if i == 0 and w.warmup:
                continue
            a_samples.append(sa)
            if sb is not None:
                b_samples.append(sb)
    digests = {s.digest for s in a_samples if s.digest}
    if b_label.startswith("ours"):
        digests |= {s.digest for s in b_samples if s.digest}
    if len(digests) > 1:
        raise SystemExit(f"{w.name}: our outputs differ between runs: {sorted(digests)}")

    def med(samples: list[Sample], attr: str) -> float:
        return round(statistics.median(getattr(s, attr) for s in samples), 3)

    row: dict[str, Any] = {
        "name": w.name,
        "kind": "pair",
        "ours_args": w.ours,
        "b_label": b_label or None,
        "b_args": w.published if w.published is not None else None,
        "pairs": len(a_samples),
        "load_average_before": round(load, 2),
        "ours": {
            "wall_s": med(a_samples, "wall"),
            "cpu_s": med(a_samples, "cpu"),
            "rss_mb": med(a_samples, "rss_mb"),
            "samples_wall_s": [round(s.wall, 3) for s in a_samples],
            "exit_codes": sorted({s.exit_code for s in a_samples}),
            "stages_cpu_s": {
                name: round(
                    statistics.median(s.stages.get(name, {}).get("cpu_s", 0.0) for s in a_samples),
                    3,
                )
                for name in sorted({n for s in a_samples for n in s.stages})
            },
        },
        "unit_count": w.unit_count,
        "note": w.note,
    }
    if b_samples:
        row["b"] = {
            "wall_s": med(b_samples, "wall"),
            "cpu_s": med(b_samples, "cpu"),
            "rss_mb": med(b_samples, "rss_mb"),
            "samples_wall_s": [round(s.wall, 3) for s in b_samples],
            "exit_codes": sorted({s.exit_code for s in b_samples}),
        }
        row["ratio_wall"] = round(row["ours"]["wall_s"] / row["b"]["wall_s"], 2)
        row["ratio_cpu"] = round(row["ours"]["cpu_s"] / row["b"]["cpu_s"], 2)
    return row


def measure_pytest(w: Workload) -> dict[str, Any]:
    """The README's test command on a fresh clone of this checkout's HEAD (its own virtualenv,
    created by ``uv run``, is part of the time, as on a fresh machine). It must pass."""
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("pytest workload: uv is not on PATH")
    with tempfile.TemporaryDirectory(prefix="strata-bench-clone-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "STRATA_PROFILE")}
        start = time.perf_counter()
        proc = subprocess.run(
            [uv, "run", "pytest", "-q"], cwd=clone, env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
    tail = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-2000:])
        raise SystemExit(f"pytest on a fresh clone exited {proc.returncode}")
    return {"name": w.name, "kind": "pytest", "wall_s": round(wall, 1), "summary": tail}


# ---- targets ------------------------------------------------------------------------------------


def _why(row: dict[str, Any] | None) -> str:
    """Where the measured workload's CPU went: its three largest stages (share of CPU)."""
    if not row or row.get("kind") != "pair":
        return ""
    cpu = row["ours"]["cpu_s"]
    stages = sorted(row["ours"]["stages_cpu_s"].items(), key=lambda kv: (-kv[1], kv[0]))
    if not cpu or not stages:
        return ""
    top = ", ".join(f"{n} {v:.1f} s ({100 * v / cpu:.0f}%)" for n, v in stages[:3] if v > 0)
    return f"our CPU {cpu:.1f} s: {top}" if top else ""


def targets(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target of issue 14 that this run measured: value, goal, met or by how much missed."""
    out: list[dict[str, Any]] = []

    def add(
        what: str, value: float | None, goal: float, better: str, unit: str, why: str = ""
    ) -> None:
        if value is None:
            return
        met = value <= goal if better == "lower" else value >= goal
        miss = None
        if not met:
            miss = round(value / goal, 2) if better == "lower" else round(goal / value, 2)
        out.append(
            {
                "target": what,
                "value": value,
                "goal": goal,
                "unit": unit,
                "met": met,
                "missed_by_x": miss,
                "why": "" if met else why,
            }
        )

    def ratio(name: str) -> float | None:
        r = rows.get(name)
        return r.get("ratio_wall") if r else None

    add(
        "run generated 5000 (minimization, proofs checked) / published",
        ratio("run_generated_5000"),
        3.0,
        "lower",
        "x",
        _why(rows.get("run_generated_5000")),
    )
    add(
        "run generated 5000 --no-minimize / published",
        ratio("run_generated_5000_no_minimize"),
        1.5,
        "lower",
        "x",
        _why(rows.get("run_generated_5000_no_minimize")),
    )
    for name, r in rows.items():
        if name.startswith("scan_") and r.get("kind") == "pair" and r["unit_count"] >= 10000:
            add(
                f"{name}: traces/s end to end",
                round(r["unit_count"] / r["ours"]["wall_s"], 1),
                1000,
                "higher",
                "traces/s",
                _why(r),
            )
        if name.startswith("jobs_") and "b" in r:
            add(
                f"{name}: --jobs 2 speed-up over --jobs 1",
                round(r["ours"]["wall_s"] / r["b"]["wall_s"], 2),
                1.7,
                "higher",
                "x",
                "the serial part (imports, rules, case generation, the parent's writing) "
                "bounds the speed-up",
            )
        if name.startswith("rss_"):
            add(f"{name}: peak RSS", r["ours"]["rss_mb"], 300, "lower", "MB", _why(r))
    proof = rows.get("proof_ms")
    if proof and "median_ms" in proof:
        add(
            "proof construction + independent check, median per witness",
            proof["median_ms"],
            1.0,
            "lower",
            "ms",
            f"construction {proof.get('prove_median_ms')} ms + check "
            f"{proof.get('check_median_ms')} ms (median)",
        )
    pytest = rows.get("pytest")
    if pytest and "wall_s" in pytest:
        add(
            "`uv run pytest` on a fresh clone (wall)",
            pytest["wall_s"],
            300,
            "lower",
            "s",
            pytest.get("summary", ""),
        )
    return out


#: What a measured workload runs (not the tests, the docs or this harness).
CODE_PATHS = (
    "policystrata",
    "rules",
    "grammars",
    "domains",
    "pyproject.toml",
    "uv.lock",
    "benchmarks/make_traces.py",
    "benchmarks/proof_bench.py",
)


def _code_digest(rev: str) -> str | None:
    """The git object ids of :data:`CODE_PATHS` at ``rev``."""
    ids = []
    for path in CODE_PATHS:
        got = subprocess.run(
            ["git", "rev-parse", "-q", "--verify", f"{rev}:{path}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        ids.append(got.stdout.strip() if got.returncode == 0 else "-")
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def _code_clean() -> bool:
    """No uncommitted change under :data:`CODE_PATHS` (else HEAD is not what would run)."""
    got = subprocess.run(
        ["git", "status", "--porcelain", "--", *CODE_PATHS], cwd=ROOT, capture_output=True
    )
    return got.returncode == 0 and not got.stdout.strip()


def _machine() -> dict[str, Any]:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "commit": commit or None,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def render_md(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Benchmark: this checkout vs the published policystrata 1.1.3",
        "",
        f"`{result['command']}` — commit {m['commit']}, {m['cpu_count']} cores ({m['cpu']}), "
        f"Python {m['python']}, load average at start {m['load_average_at_start']}.",
        f"Medians of {result['pairs']} interleaved pairs after a warm-up (wall seconds; CPU is "
        "user + sys of the process tree; RSS is the largest process).",
    ]
    earlier = [r for r in result["workloads"] if r.get("measured_at_commit")]
    if earlier:
        at = ", ".join(f"`{r['name']}` at {r['measured_at_commit']}" for r in earlier)
        lines += [
            "",
            f"Kept from an interrupted run on the same code (`--resume`; only tests, docs or the "
            f"harness changed since): {at}.",
        ]
    lines += [
        "",
        "| workload | published / B | ours | ratio (wall) | ours CPU s | ours peak RSS MB | load |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["workloads"]:
        if r["kind"] != "pair":
            continue
        b = r.get("b")
        btext = f"{b['wall_s']:.2f} s ({r['b_label']})" if b else "—"
        lines.append(
            f"| `{r['name']}` | {btext} | {r['ours']['wall_s']:.2f} s | "
            f"{r.get('ratio_wall', '—')}× | {r['ours']['cpu_s']:.2f} | {r['ours']['rss_mb']:.0f} "
            f"| {r['load_average_before']} |"
        )
    lines += ["", "## Where our time goes (median CPU seconds per stage)", ""]
    names = sorted(
        {n for r in result["workloads"] if r["kind"] == "pair" for n in r["ours"]["stages_cpu_s"]}
    )
    lines.append("| workload | " + " | ".join(names) + " |")
    lines.append("| --- |" + " --- |" * len(names))
    for r in result["workloads"]:
        if r["kind"] == "pair":
            st = r["ours"]["stages_cpu_s"]
            lines.append(
                f"| `{r['name']}` | " + " | ".join(f"{st.get(n, 0):.2f}" for n in names) + " |"
            )
    proof = next((r for r in result["workloads"] if r["kind"] == "proof"), None)
    if proof:
        lines += [
            "",
            f"Proof construction + independent check per witness ({proof['witnesses']} witnesses): "
            f"median {proof['median_ms']} ms, p90 {proof['p90_ms']} ms (construction median "
            f"{proof['prove_median_ms']} ms, check median {proof['check_median_ms']} ms).",
        ]
    lines += [
        "",
        "## Targets (issue 14)",
        "",
        "| target | value | goal | met | why (when missed) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in result["targets"]:
        met = "yes" if t["met"] else f"no (missed by {t['missed_by_x']}×)"
        lines.append(
            f"| {t['target']} | {t['value']} {t['unit']} | {t['goal']} {t['unit']} | {met} "
            f"| {t.get('why', '')} |"
        )
    pytest = next((r for r in result["workloads"] if r["kind"] == "pytest"), None)
    if pytest:
        lines += [
            "",
            f"`uv run pytest` on a fresh clone: {pytest['wall_s']} s ({pytest['summary']}).",
        ]
    lines += [
        "",
        "Why a target is missed, beyond the stage split above: docs/benchmark.md, "
        '"Targets: where they stand".',
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI-sized workloads and 2 pairs")
    ap.add_argument("--pairs", type=int, default=None, help="measured pairs (default 5; quick 2)")
    ap.add_argument("--only", nargs="*", default=None, help="workload names to run")
    ap.add_argument(
        "--targets",
        action="store_true",
        help="only the workloads the issue's targets are read from ("
        + ", ".join(TARGET_WORKLOADS)
        + ")",
    )
    ap.add_argument("--out", type=Path, default=None, help="results directory (benchmarks/results)")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows an interrupted run already measured (same --pairs, same code: "
        "policystrata/, rules/, grammars/, domains/, pyproject.toml, uv.lock; never pytest)",
    )
    opts = ap.parse_args()
    pairs = opts.pairs or (2 if opts.quick else 5)
    only = list(TARGET_WORKLOADS) if opts.targets else opts.only
    chosen = [w for w in workloads(opts.quick) if only is None or w.name in only]
    if opts.list:
        for w in chosen:
            print(w.name)
        return
    out = opts.out or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    stem = "quick" if opts.quick else "latest"
    # each measured row is kept at once (a crash or a kill late in a long run loses nothing);
    # --resume takes the rows a previous run of the same commit and pairs already measured
    partial = out / f"{stem}.partial.jsonl"
    machine = _machine()  # at the start: the load average before the first workload
    commit = machine["commit"]
    code = _code_digest("HEAD") if _code_clean() else None
    done: dict[str, dict[str, Any]] = {}
    if opts.resume and partial.exists() and code is not None:
        for line in partial.read_text().splitlines():
            entry = json.loads(line)
            row = entry["row"]
            # a row is kept when the code it ran is this code (commits that changed only tests,
            # docs or the harness keep it); the pytest row runs the tests, so it never is
            same = entry.get("commit") == commit or _code_digest(entry["commit"]) == code
            if same and entry.get("pairs") == pairs and row.get("kind") != "pytest":
                row.setdefault("measured_at_commit", entry["commit"])
                done[row["name"]] = row
    else:
        partial.unlink(missing_ok=True)
    published = published_venv() if any(w.published for w in chosen) else None
    rows = []
    for w in chosen:
        if w.name in done:
            at = done[w.name]["measured_at_commit"]
            print(f"{w.name}: measured earlier at {at}, same code (--resume)", file=sys.stderr)
            rows.append(done[w.name])
            continue
        print(f"{w.name} ...", file=sys.stderr, flush=True)
        row = measure(w, w.pairs or pairs, published)
        rows.append(row)
        print(json.dumps(row, sort_keys=True), file=sys.stderr, flush=True)
        with partial.open("a") as f:
            f.write(json.dumps({"commit": commit, "pairs": pairs, "row": row}) + "\n")
    result = {
        "command": "python benchmarks/harness.py " + " ".join(sys.argv[1:]),
        "machine": machine,
        "published": PUBLISHED,
        "pairs": pairs,
        "workloads": rows,
        "targets": targets({r["name"]: r for r in rows}),
    }
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (out / f"{stem}.md").write_text(render_md(result))
    partial.unlink(missing_ok=True)
    print(render_md(result))


if __name__ == "__main__":
    main()
