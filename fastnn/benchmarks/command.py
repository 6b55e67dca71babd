"""The ``fastnn bench`` command: run the workloads, print one table, write JSON and a chart."""

import datetime
import json
import os
import subprocess
import sys
import tempfile

FORMAT_VERSION = 1
QUICK = {"repeats": 3, "min_seconds": 0.1}
FULL = {"repeats": 7, "min_seconds": 0.5}
TORCH_THREADS = (1, 2)
QUICK_COMPILE = ("perceptron", "bp-784-100-10", "fc-784-100-10-f64")


def add_arguments(parser):
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats (under two minutes)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these workloads")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    parser.add_argument("--json", metavar="PATH", help="write every sample, the machine and the versions here")
    parser.add_argument("--plot", metavar="PATH", help="draw the speed-ups as a bar chart (needs matplotlib)")
    parser.add_argument("--threads", type=int, metavar="N", help="Numba threads for fastnn (NUMBA_NUM_THREADS)")
    parser.add_argument("--compare", metavar="OLD_JSON", help="print the change of every row against an earlier run")
    parser.add_argument("--report", metavar="JSON", help="render an earlier run's JSON instead of measuring")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")


# -- running ------------------------------------------------------------------------------
def _child(request, env=None):
    """Run one benchmark process and return its JSON answer; a failure becomes an error entry."""
    completed = subprocess.run([sys.executable, "-m", "fastnn.benchmarks.child", json.dumps(request)],
                               capture_output=True, text=True, env=env)
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": last}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _environment(threads):
    env = dict(os.environ)
    if threads is not None:
        env["NUMBA_NUM_THREADS"] = str(threads)
    return env


def _summary(samples):
    import statistics

    ordered = sorted(samples)
    return {"samples": samples, "median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1]}


def _torch_available():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _dataset_available():
    from fastnn.datasets import find_fashion_mnist

    return find_fashion_mnist() is not None


def measure_row(workload, timing, quick, threads, torch_available, dataset_available):
    """Time one workload: twin and fastnn in one fresh process, PyTorch at 1 and at 2 threads.

    A full run gives each PyTorch thread count a process of its own (its
    two-thread runs can be slow for a whole process's life); a quick run
    times everything in one process per workload, saving two start-ups and
    two imports of torch per row.
    """
    row = {"name": workload.name, "title": workload.title, "unit": workload.unit,
           "targets": [vars(t) for t in workload.targets], "impls": {}}
    if workload.needs_dataset and not dataset_available:
        row["skipped"] = "the data set is not installed"
        return row
    local = [impl for impl in ("python", "fastnn") if impl in workload.builders]
    with_torch = "torch" in workload.builders and torch_available
    request = {"workload": workload.name, "quick": quick, **timing}
    env = _environment(threads)
    if quick:
        answer = _child({**request, "impls": local + ["torch"] * with_torch, "torch_threads": list(TORCH_THREADS)},
                        env)
        local_answer = answer
        torch_answers = {str(n): answer for n in TORCH_THREADS}
    else:
        local_answer = _child({**request, "impls": local}, env)
        torch_answers = {str(n): _child({**request, "impls": ["torch"], "torch_threads": [n]})
                         for n in TORCH_THREADS} if with_torch else {}
    for impl in local:
        row["impls"][impl] = _result(local_answer, lambda a: a[impl])
    if with_torch:
        by_threads = {n: _result(answer, lambda a: a["torch"][n]) for n, answer in torch_answers.items()}
        measured = {n: r for n, r in by_threads.items() if "median" in r}
        if measured:
            best = max(measured, key=lambda n: measured[n]["median"])
            row["impls"]["torch"] = {**measured[best], "threads": int(best), "by_threads": by_threads}
        else:
            row["impls"]["torch"] = {"error": next(iter(by_threads.values()))["error"]}
    return row


def _result(answer, samples_of):
    return {"error": answer["error"]} if "error" in answer else _summary(samples_of(answer))


def measure_compile(names, quick, threads):
    """Cold start (empty Numba cache in a temporary directory), then warm, for the fastnn steps of `names`."""
    with tempfile.TemporaryDirectory(prefix="fastnn-numba-cache-") as cache:
        env = {**_environment(threads), "NUMBA_CACHE_DIR": cache}
        cold = _child({"compile": names, "quick": quick}, env)
        warm = _child({"compile": names, "quick": quick}, env)
    return {"workloads": names, "cold": cold, "warm": warm}


def run_all(names, quick, threads, progress=True):
    from tqdm import tqdm

    from fastnn.info import collect

    from .workloads import WORKLOADS

    timing = QUICK if quick else FULL
    torch_available = _torch_available()
    dataset_available = any(WORKLOADS[n].needs_dataset for n in names) and _dataset_available()
    rows = []
    bar = tqdm(names, desc="fastnn bench", unit="workload", disable=not progress, file=sys.stderr)
    for name in bar:
        bar.set_postfix_str(name)
        rows.append(measure_row(WORKLOADS[name], timing, quick, threads, torch_available, dataset_available))
    compiled = [n for n in names if "fastnn" in WORKLOADS[n].builders and not WORKLOADS[n].needs_dataset]
    if quick:
        # Compiling every kernel cold takes minutes on 2 cores; a quick run
        # times the tutorial's first chapters (the kernels `fastnn demo` starts with).
        compiled = [n for n in compiled if n in QUICK_COMPILE] or compiled[:1]
    return {
        "format_version": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "timing": timing,
        "numba_threads": threads,
        "environment": collect(),
        "rows": rows,
        "compile": measure_compile(compiled, quick, threads),
    }


# -- reporting ----------------------------------------------------------------------------
def speedup(row, against):
    impls = row.get("impls", {})
    fast, other = impls.get("fastnn", {}), impls.get(against, {})
    if "median" not in fast or "median" not in other:
        return None
    return fast["median"] / other["median"]


def target_status(row):
    """One phrase per target: met, missed by how much, or not measured."""
    phrases = []
    for target in row["targets"]:
        ratio = speedup(row, target["against"])
        goal = f">= {target['speedup']:g}x {target['against']}"
        if ratio is None:
            phrases.append(f"{goal}: not measured")
        elif ratio >= target["speedup"]:
            phrases.append(f"{goal}: met")
        else:
            phrases.append(f"{goal}: MISSED ({ratio:.2f}x, {ratio / target['speedup']:.0%} of goal)")
    return "; ".join(phrases)


def _cell(result):
    if not result:
        return "-"
    if "error" in result:
        return "error"
    spread = f" ({result['min']:,.0f}-{result['max']:,.0f})"
    threads = f" [{result['threads']}t]" if "threads" in result else ""
    return f"{result['median']:,.0f}{spread}{threads}"


def table_rows(run):
    header = ["workload", "unit/s", "python twin", "fastnn", "PyTorch", "vs python", "vs PyTorch", "targets"]
    body = []
    for row in run["rows"]:
        if "skipped" in row:
            body.append([row["title"], row["unit"], "-", "-", "-", "-", "-", f"skipped: {row['skipped']}"])
            continue
        impls = row["impls"]
        ratios = [speedup(row, against) for against in ("python", "torch")]
        body.append([row["title"], row["unit"], _cell(impls.get("python")), _cell(impls.get("fastnn")),
                     _cell(impls.get("torch")), *[f"{r:,.1f}x" if r is not None else "-" for r in ratios],
                     target_status(row) or "-"])
    return header, body


def _compile_lines(run):
    compiled = run.get("compile", {})
    cold, warm = compiled.get("cold", {}), compiled.get("warm", {})
    if "seconds" not in cold or "seconds" not in warm:
        return [f"compile: {cold.get('error') or warm.get('error') or 'not measured'}"]
    names = compiled["workloads"]
    which = ", ".join(names) if len(names) <= 5 else f"all {len(names)} fastnn workloads"
    return [f"compile, first call of {which}: cold cache {cold['seconds']:.1f} s, "
            f"warm cache {warm['seconds']:.1f} s (start-up included)"]


def render(run, markdown=False):
    header, body = table_rows(run)
    env = run["environment"]
    lines = [f"{env['cpu']}, {env['cores']} cores ({', '.join(env['instruction_sets'])}); python {env['python']}, "
             f"numpy {env['numpy']}, numba {env['numba']}, torch {env['torch'] or 'not installed'}, "
             f"BLAS {env['blas']}; {run['mode']} run of {run['created']}",
             "Median throughput (min-max over repeats); PyTorch: the faster of 1 and 2 threads [threads used]."]
    if markdown:
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
    else:
        widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
        lines += [""] + ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + body]
    return "\n".join(lines + [""] + _compile_lines(run))


def compare(run, old):
    """Per row: the change of fastnn's median throughput and of its speed-ups against an earlier run."""
    previous = {row["name"]: row for row in old["rows"]}
    lines = [f"change against the run of {old['created']} ({old['environment']['cpu']}):"]
    for row in run["rows"]:
        before = previous.get(row["name"])
        now_fast = row.get("impls", {}).get("fastnn", {}).get("median")
        then_fast = (before or {}).get("impls", {}).get("fastnn", {}).get("median")
        if now_fast is None or then_fast is None:
            lines.append(f"  {row['title']}: no comparable measurement")
            continue
        parts = [f"fastnn {now_fast / then_fast - 1:+.1%}"]
        for against in ("python", "torch"):
            now, then = speedup(row, against), speedup(before, against)
            if now is not None and then is not None:
                parts.append(f"vs {against} {then:,.1f}x -> {now:,.1f}x")
        lines.append(f"  {row['title']}: " + ", ".join(parts))
    return "\n".join(lines)


def plot(run, path):
    try:
        import matplotlib
    except ImportError:
        print("--plot needs matplotlib: pip install 'fastnn[plot]'", file=sys.stderr)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in run["rows"] if "skipped" not in row]
    labels = [row["title"] for row in rows]
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.5))
    height = 0.4
    for offset, against, color in ((-height / 2, "python", "tab:blue"), (height / 2, "torch", "tab:orange")):
        values = [speedup(row, against) or 0 for row in rows]
        ax.barh([i + offset for i in range(len(rows))], values, height, label=f"vs {against}", color=color)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("fastnn speed-up (log scale; 1 = as fast)")
    ax.set_title(f"fastnn bench ({run['mode']}), {run['environment']['cpu']}", fontsize=10)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def run(args):
    from .workloads import WORKLOADS

    if args.list:
        for workload in WORKLOADS.values():
            print(f"{workload.name:<24} {workload.title}")
        return 0
    if args.report:
        with open(args.report) as handle:
            result = json.load(handle)
    else:
        names = args.only or list(WORKLOADS)
        unknown = [name for name in names if name not in WORKLOADS]
        if unknown:
            print(f"unknown workload(s) {', '.join(unknown)}; fastnn bench --list shows them", file=sys.stderr)
            return 2
        if args.threads is not None and args.threads < 1:
            print(f"--threads must be >= 1, got {args.threads}", file=sys.stderr)
            return 2
        result = run_all(names, args.quick, args.threads)
    print(render(result, markdown=args.markdown))
    if args.compare:
        with open(args.compare) as handle:
            print("\n" + compare(result, json.load(handle)))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    if args.plot and not plot(result, args.plot):
        return 1
    errors = [row["name"] for row in result["rows"]
              if any("error" in impl for impl in row.get("impls", {}).values())]
    if errors:
        print(f"workloads that failed: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 0
