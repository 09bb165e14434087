"""Benchmark: `chirpbase report` on 100k stats rows (goal: under 10 s).

Seeds a scratch database on the local stack (1,000 tweets x 100 stats snapshots by default),
then times, in the same run:
- baseline: the naive approach, every stats row pulled into pandas and reduced there;
- report:   build_report() end to end (SQL aggregation, pandas, 4 PNG charts, HTML, CSVs).

Prints seconds for each and their ratio. Run: `uv run python bench/report.py [--tweets N]
[--snapshots K]` (needs `scripts/pg.sh start`; `make bench` runs it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a file (`python bench/x.py`), import the project from the repository root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from tests import pg  # noqa: E402
from tests.report.seed import seed_bulk  # noqa: E402

GOAL_S = 10.0


def naive_baseline(dsn: str) -> float:
    """Latest stats per tweet the naive way: fetch every row, reduce in pandas."""
    import pandas as pd

    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        cur = conn.execute(
            "select tweet_id, likes, retweets, replies, impressions, collected_at from public.stats"
        )
        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description or []])
    latest = frame.loc[frame.groupby("tweet_id")["collected_at"].idxmax()]
    assert len(latest) > 0
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=int, default=1000)
    parser.add_argument("--snapshots", type=int, default=100)
    args = parser.parse_args()

    pg.start_cluster()
    template = pg.build_template()
    name = template.clone()
    dsn = pg.app_dsn(name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            started = time.perf_counter()
            rows = seed_bulk(conn, tweets=args.tweets, snapshots=args.snapshots)
            conn.execute("analyze public.stats")
            conn.execute("analyze public.tweets")
            seeded = time.perf_counter() - started

        started = time.perf_counter()
        import matplotlib.figure  # noqa: F401
        import pandas  # noqa: F401

        imports = time.perf_counter() - started

        from worker.report import build_report

        baseline = naive_baseline(dsn)
        with tempfile.TemporaryDirectory() as out:
            result = build_report(dsn, since="30d", out_dir=out)
            assert result.summary["stats_in_window"] == rows, result.summary
            report_s = result.seconds

        print(f"stats rows           {rows:>10,}   (seeded in {seeded:.2f} s)")
        print(f"import pandas+mpl    {imports:>10.2f} s   (paid once per process)")
        print(
            f"baseline (naive)     {baseline:>10.2f} s   pull every row into pandas, reduce there"
        )
        print(f"report               {report_s:>10.2f} s   SQL aggregation + 4 charts + HTML + CSV")
        print(f"ratio report/naive   {report_s / baseline:>10.2f} x")
        total = report_s + imports
        verdict = "ok" if total < GOAL_S else "OVER GOAL"
        print(f"report + imports     {total:>10.2f} s   goal < {GOAL_S:.0f} s: {verdict}")
        return 0 if total < GOAL_S else 1
    finally:
        pg.drop_database(name)
        pg.drop_database(template.name)


if __name__ == "__main__":
    raise SystemExit(main())
