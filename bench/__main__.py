"""Every engine benchmark of issue #6, on SQLite and PostgreSQL, and their figures written into
BENCHMARKS.md (`make bench`).

    python -m bench             # run them all, print them, rewrite their blocks in BENCHMARKS.md
    python -m bench --no-write  # run and print only
    python -m bench --only feed-cost  # one block (and not the summary, which needs them all)

Each benchmark runs as its own process per backend, so a process's peak memory is its own
(bench.transport covers both backends in one run). One PostgreSQL server is started here
(initdb + pg_ctl in a temporary directory, durable defaults) and handed to every run in
BENCH_POSTGRES_DSN. The runs with Telegram's limits on
take 6,000 / 30 = 200 s each whatever the machine does, and mostly wait: the two backends' runs
go side by side, together with the polling benchmark (which counts requests and times nothing).
Everything else runs one at a time.

In BENCHMARKS.md only the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` is
replaced; a missing block is appended at the end of the file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.support import BACKENDS, POSTGRES_DSN_ENV
from tests.pgserver import running_postgres

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "BENCHMARKS.md"


@dataclass(frozen=True)
class Benchmark:
    """One block of BENCHMARKS.md: a module run once per backend."""

    block: str
    title: str
    module: str
    arguments: tuple[str, ...] = ()
    side_by_side: bool = False  # waits more than it computes: runs beside the others
    per_backend: bool = True  # False: one run covers both backends

    def command(self, backend: str | None) -> list[str]:
        """The command line (`python -m ...`)."""
        backends = ["--backend", backend] if backend else []
        return ["python", "-m", self.module, *self.arguments, *backends]

    def backends(self) -> tuple[str | None, ...]:
        """One run per backend, or one run for both."""
        return BACKENDS if self.per_backend else (None,)


BENCHMARKS = (
    Benchmark("delivery-limited", "1. Delivery, Telegram's limits on", "bench.delivery",
              ("--limits", "on"), side_by_side=True),
    Benchmark("delivery-ceiling", "2. Engine ceiling, limits off", "bench.delivery",
              ("--limits", "off", "--chats", "1000")),
    Benchmark("transport", "2. Where a message's time goes", "bench.transport",
              per_backend=False),
    Benchmark("scale", "3, 5, 6. 100,000 chats", "bench.scale"),
    Benchmark("latency", "4. Latency, 10,000 subscribers", "bench.latency"),
    Benchmark("poll-cost", "7. Polling cost", "bench.poll_cost", side_by_side=True),
    Benchmark("feed-cost", "8. Feed polling cost", "bench.feed_cost"),
    Benchmark("abuse", "9. Open to strangers, before and after (#15)", "bench.abuse",
              per_backend=False),
    Benchmark("takeover", "10. Recovery after kill -9, three workers as one bot (#16)",
              "bench.takeover"),
)  # fmt: skip


@dataclass
class Result:
    """What one run printed."""

    benchmark: Benchmark
    backend: str | None
    output: str
    seconds: float
    code: int


async def run_one(benchmark: Benchmark, backend: str | None, env: dict[str, str]) -> Result:
    """One benchmark on one backend as a child process."""
    command = benchmark.command(backend)
    start = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command[1:],
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    seconds = time.monotonic() - start
    text = out.decode().strip()
    code = process.returncode or 0
    if code:
        text += f"\n\n(exit status {code})\n```\n{err.decode()[-3000:]}\n```"
    print(f"--- {' '.join(command)} ({seconds:.0f} s)\n{text}\n", flush=True)
    return Result(benchmark, backend, text, seconds, code)


async def run_all(env: dict[str, str]) -> list[Result]:
    """The side-by-side runs together (two lanes for the first, one for the rest), then the
    others one at a time."""
    beside = [b for b in BENCHMARKS if b.side_by_side]
    results: list[Result] = []

    async def lane(jobs: list[tuple[Benchmark, str | None]]) -> None:
        for benchmark, backend in jobs:
            results.append(await run_one(benchmark, backend, env))

    lanes: list[list[tuple[Benchmark, str | None]]] = [
        [(beside[0], backend)] for backend in beside[0].backends()
    ]
    lanes.append([(b, backend) for b in beside[1:] for backend in b.backends()])
    await asyncio.gather(*(lane(jobs) for jobs in lanes))
    for benchmark in BENCHMARKS:
        if not benchmark.side_by_side:
            for backend in benchmark.backends():
                results.append(await run_one(benchmark, backend, env))
    return results


async def run_only(benchmark: Benchmark, env: dict[str, str]) -> list[Result]:
    """One benchmark, on each of its backends in turn."""
    return [await run_one(benchmark, backend, env) for backend in benchmark.backends()]


_BOLD_RE = re.compile(r"\*\*(.+?)\*\*")
_VERDICT_RE = re.compile(r"\b(PASS|BELOW)\)")


def summary(results: list[Result]) -> str:
    """A table of every figure that has a target: the bold figure and its verdict per backend."""
    rows = ["| benchmark | figure | target | SQLite | PostgreSQL |", "|---|---|---|---|---|"]
    for benchmark in BENCHMARKS:
        cells: dict[str, list[tuple[str, str, str]]] = {}
        for result in results:
            if result.benchmark is benchmark and result.backend is not None:
                cells[result.backend] = _verdict_lines(result.output)
        for index, (label, target, _) in enumerate(cells.get(BACKENDS[0], [])):
            values = []
            for backend in BACKENDS:
                found = cells.get(backend, [])
                values.append(found[index][2] if index < len(found) else "—")
            rows.append(f"| {benchmark.title} | {label} | {target} | {values[0]} | {values[1]} |")
    return "\n".join(rows)


def _verdict_lines(output: str) -> list[tuple[str, str, str]]:
    found = []
    for line in output.splitlines():
        verdict = _VERDICT_RE.search(line)
        bold = _BOLD_RE.search(line)
        if verdict is None or bold is None or not line.startswith("- "):
            continue
        label = line[2:].split(":", 1)[0].replace("`", "").strip()
        target = re.search(r"\(target ([^:]+):", line)
        found.append(
            (label, target.group(1) if target else "", f"{bold.group(1)} {verdict.group(1)}")
        )
    return found


def blocks(results: list[Result], total: float) -> dict[str, str]:
    """The text of each block of BENCHMARKS.md."""
    day = datetime.now(UTC).date().isoformat()
    text: dict[str, str] = {
        "summary": (
            f"Measured {day} by `make bench` ({total / 60:.1f} min in all), on this machine "
            f"(2 vCPUs, Python {sys.version.split()[0]}).\n\n" + summary(results)
        )
    }
    for benchmark in BENCHMARKS:
        mine = sorted(
            (r for r in results if r.benchmark is benchmark),
            key=lambda r: BACKENDS.index(r.backend) if r.backend else 0,
        )
        commands = " and ".join(f"`{' '.join(benchmark.command(r.backend))}`" for r in mine)
        beside = " (run side by side by `make bench`)" if benchmark.side_by_side else ""
        parts = [f"Commands: {commands}{beside}; {day}.", ""]
        parts += [r.output + "\n" for r in mine]
        text[benchmark.block] = "\n".join(parts).strip()
    return text


def write(report: Path, text: dict[str, str]) -> None:
    """Replace each block's content in the report (appending missing blocks)."""
    content = report.read_text(encoding="utf-8")
    for name, body in text.items():
        start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
        block = f"{start}\n{body}\n{end}"
        if start in content and end in content:
            before, rest = content.split(start, 1)
            _, after = rest.split(end, 1)
            content = before + block + after
        else:
            content = content.rstrip("\n") + "\n\n" + block + "\n"
    report.write_text(content, encoding="utf-8")


def main() -> int:
    """Run everything; write BENCHMARKS.md unless --no-write."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--only",
        choices=[b.block for b in BENCHMARKS],
        help="run one benchmark and rewrite only its block",
    )
    args = parser.parse_args()
    start = time.monotonic()
    with running_postgres(durable=True) as server:
        if server is None:
            print("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
            return 1
        env = {**os.environ, POSTGRES_DSN_ENV: server.admin_dsn, "PYTHONPATH": str(ROOT)}
        if args.only:
            only = next(b for b in BENCHMARKS if b.block == args.only)
            results = asyncio.run(run_only(only, env))
        else:
            results = asyncio.run(run_all(env))
    total = time.monotonic() - start
    if args.only:
        if not args.no_write:
            write(REPORT, {args.only: blocks(results, total)[args.only]})
            print(f"figures of {args.only} written to {REPORT.name}")
        return 1 if any(r.code for r in results) else 0
    print(f"all benchmarks: {total / 60:.1f} min")
    print(summary(results))
    if not args.no_write:
        write(REPORT, blocks(results, total))
        print(f"figures written to {REPORT.name}")
    return 1 if any(r.code for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
