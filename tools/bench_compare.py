#!/usr/bin/env python3
"""Speed of two revisions of mnv3, measured side by side.

Builds `mnv3-bench` for each revision (a git revision, or WORKTREE for the files as they
are) and alternates them round by round on the same machine, so that whatever else the
machine does hits both alike. Each round runs every configuration once per revision, in
alternating order; the table gives the median over rounds of each run's median latency,
and the ratio new/old.

    python3 tools/bench_compare.py --old a07ec19 --new HEAD --rounds 15 --precisions fp32,int8
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDIAN = re.compile(r"median ([0-9.]+)")


def build(rev, scratch):
    """Path of mnv3-bench built from `rev` (a commit, or WORKTREE)."""
    if rev == "WORKTREE":
        src = ROOT
        out = os.path.join(scratch, "build-worktree")
    else:
        src = os.path.join(scratch, "src-" + re.sub(r"[^A-Za-z0-9]", "_", rev))
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-f", src, rev],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = os.path.join(src, "build")
    jobs = str(os.cpu_count() or 2)
    subprocess.run(["make", "-C", src, "-j" + jobs, "BUILD=" + out, out + "/mnv3-bench"],
                   check=True, stdout=subprocess.DEVNULL)
    return os.path.join(out, "mnv3-bench")


def run(binary, arch, threads, precision, runs, isa):
    cmd = [binary, "--arch", arch, "--threads", str(threads), "--precision", precision,
           "--runs", str(runs), "--no-layers"]
    if isa:
        cmd += ["--isa", isa]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = MEDIAN.search(text)
    if not m:
        sys.exit("no median in the output of " + " ".join(cmd))
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, help="git revision (or WORKTREE)")
    ap.add_argument("--new", default="WORKTREE", help="git revision or WORKTREE (default)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--runs", type=int, default=40, help="images per mnv3-bench run")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--archs", default="large,small")
    ap.add_argument("--precisions", default="fp32",
                    help="comma-separated mnv3-bench precisions (fp32, fp16-weights, relaxed, int8)")
    ap.add_argument("--isa", default="", help="force a kernel set (default: auto)")
    args = ap.parse_args()

    scratch = tempfile.mkdtemp(prefix="mnv3-compare-")
    try:
        old, new = build(args.old, scratch), build(args.new, scratch)
        configs = [(a, int(t), p) for p in args.precisions.split(",")
                   for a in args.archs.split(",") for t in args.threads.split(",")]
        times = {(c, who): [] for c in configs for who in ("old", "new")}
        for r in range(args.rounds):
            for c in configs:
                order = [("old", old), ("new", new)]
                if r % 2:
                    order.reverse()
                for who, binary in order:
                    times[(c, who)].append(run(binary, c[0], c[1], c[2], args.runs, args.isa))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        print(f"old {args.old}, new {args.new}: median over {args.rounds} alternating rounds "
              f"of each run's median ({args.runs} images){', isa ' + args.isa if args.isa else ''}")
        print()
        print("| model | precision | threads | old ms | new ms | new/old |")
        print("| --- | --- | --- | --- | --- | --- |")
        worst = 0.0
        for c in configs:
            o = statistics.median(times[(c, "old")])
            n = statistics.median(times[(c, "new")])
            worst = max(worst, n / o)
            print(f"| {c[0]} | {c[2]} | {c[1]} | {o:.3f} | {n:.3f} | {n / o:.3f} |")
        print()
        print(f"largest ratio: {worst:.3f}")
    finally:
        for d in os.listdir(scratch):
            if d.startswith("src-"):
                subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force",
                                os.path.join(scratch, d)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
