"""Run every benchmark (``make bench``), then print the figures against the targets and write BENCHMARKS.md.

Each script prints its own table and writes bench/results/<name>.json; this collects them. ``--summary`` only
re-reads the existing results (no benchmark is run).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
SCRIPTS = ["dispatch", "cgroup_overhead", "throughput", "profile_tasks", "output_capture", "cancel_latency", "scale",
           "status_reads", "chaos", "observability", "callback_latency", "event_latency", "agent", "dashboard"]
#: Arguments of the scripts that take some in ``make bench`` (the profile: 1,000 tasks, with py-spy when installed).
ARGUMENTS = {"profile_tasks": ["1000", "--py-spy"]}
# The dashboard bench drives headless Chromium (apt-get install chromium chromium-driver); without it, it is
# left out of the run and its last figures are shown.
BROWSER = (Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver"))


def load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def rows() -> list[tuple[str, str, str, str]]:
    """(what, figure, target, met?)"""
    out = []

    def add(what: str, figure: str, target: str, met: bool | None) -> None:
        out.append((what, figure, target, "—" if met is None else ("yes" if met else "no")))

    if d := load("dispatch"):
        add("submit → started, median", f"{d['submit_to_started']['median_ms']:.1f} ms", "≤ 5 ms",
            d["submit_to_started"]["median_ms"] <= 5)
        add("submit → terminal, median", f"{d['submit_to_terminal']['median_ms']:.1f} ms "
            f"(p99 {d['submit_to_terminal']['p99_ms']:.1f}; baseline {d['baseline']['median_ms']:.2f})", "≤ 6 ms",
            d["submit_to_terminal"]["median_ms"] <= 6)
        if off := d.get("submit_to_terminal_without_cgroups"):
            add("submit → terminal, median, HOST_RUNNER_CGROUPS=off", f"{off['median_ms']:.1f} ms (p99 "
                f"{off['p99_ms']:.1f})", "≤ 6 ms", off["median_ms"] <= 6)
    if g := load("cgroup_overhead"):
        for backend in ("v1", "v2"):
            if f := g.get(backend):
                add(f"task spawn, {backend} cgroup per task vs none (same run)",
                    f"{f['spawn_with_cgroup']['median_ms']:.1f} vs {f['spawn_without_cgroup']['median_ms']:.1f} ms "
                    f"= {f['cgroup_cost_median_ms']:+.1f} ms", "—", None)
    if t := load("throughput"):
        add("throughput vs 16-thread pool (callbacks on)", f"{t['runner_tasks_per_second']:.0f}/s vs "
            f"{t['baseline_tasks_per_second']:.0f}/s = {t['ratio'] * 100:.1f} %", "≥ 15 %", t["ratio"] >= 0.15)
    if f := load("profile_tasks"):
        add(f"worker CPU per task ({f['tasks']} × true, 16 clients)", f"{f['worker_cpu_ms_per_task']:.2f} ms (user "
            f"{f['worker_user_ms_per_task']:.2f}, system {f['worker_system_ms_per_task']:.2f}; "
            f"{f['tasks_per_second']:.0f} tasks/s)", "≤ 6 ms", f["worker_cpu_ms_per_task"] <= 6)
    if o := load("output_capture"):
        add("1 GiB output: wall vs cat", f"{o['wall_seconds']:.2f} s vs {o['baseline_cat_seconds']:.2f} s = "
            f"{o['ratio']:.2f}x (vs writing the file: {o.get('ratio_vs_file', 0):.2f}x)", "≤ 1.2x",
            o["ratio"] <= 1.2)
        add("1 GiB output: worker RSS growth", f"{o['rss_growth_mib']:.1f} MiB", "≤ 30 MB", o["rss_growth_mib"] <= 28.6)
    if c := load("cancel_latency"):
        add("cancel → group gone, p99", f"{c['cancel_to_group_gone']['p99_ms']:.1f} ms "
            f"(median {c['cancel_to_group_gone']['median_ms']:.1f})", "≤ 100 ms",
            c["cancel_to_group_gone"]["p99_ms"] <= 100)
    if s := load("scale"):
        add(f"{s['tasks']} concurrent tasks: worker RSS", f"{s['rss_busy_mib']:.0f} MiB ({s['threads_busy']} threads)",
            "≤ 400 MB", s["rss_busy_mib"] <= 381)
        if w := s.get("wrk_reads"):  # judged on the C client's view; the Python clients' own CPU is beside it
            add(f"{s['tasks']} concurrent tasks: GET p99 (wrk, 16 conn.)", f"{w['p99_ms']:.1f} ms (p50 "
                f"{w['p50_ms']:.1f}, {w['requests_per_second']:.0f} req/s; 16 Python clients: p99 "
                f"{s['get_p99_ms']:.1f})", "≤ 50 ms", w["p99_ms"] <= 50)
        else:
            add(f"{s['tasks']} concurrent tasks: GET p99", f"{s['get_p99_ms']:.1f} ms (p50 {s['get_p50_ms']:.1f})",
                "≤ 50 ms", s["get_p99_ms"] <= 50)
        add(f"{s['tasks']} concurrent tasks: submit → all running", f"{s['seconds_to_all_running']:.1f} s", "≤ 30 s",
            s["seconds_to_all_running"] <= 30)
        add(f"{s['tasks']} concurrent tasks: cancel all → none left", f"{s['seconds_cancel_all_to_gone']:.1f} s, "
            f"{s['processes_left']} left", "≤ 15 s, 0 left",
            s["seconds_cancel_all_to_gone"] <= 15 and s["processes_left"] == 0)
    if r := load("status_reads"):
        add("status reads vs bare Falcon", f"{r['runner']['requests_per_second']:.0f} vs "
            f"{r['baseline']['requests_per_second']:.0f} req/s = {r['ratio'] * 100:.0f} %", "≥ 50 %", r["ratio"] >= 0.5)
    if k := load("chaos"):
        add("chaos: lost/stuck/duplicated/leftovers", f"{k['lost']}/{k['stuck']}/{k['duplicated']}/"
            f"{k['leftover_processes']} ({k['tasks']} tasks, {k['kills']} SIGKILLs)", "0/0/0/0",
            k["lost"] + k["stuck"] + k["duplicated"] + k["leftover_processes"] == 0)
    if v := load("observability"):
        add(f"/debug/actors with {v['running_tasks']} running tasks, median",
            f"{v['/debug/actors']['median_ms']:.1f} ms (p95 {v['/debug/actors']['p95_ms']:.1f}; "
            f"/metrics {v['/metrics']['median_ms']:.1f})", "—", None)
        add("idle log follower: worker CPU", f"{v['cpu_percent_per_idle_follower']:.2f} % of a core; "
            f"following {v['follow_bytes'] >> 20} MiB at {v['follow_mib_per_second']:.0f} MiB/s", "—", None)
    if b := load("callback_latency"):
        one, beside = b["one_receiver"]["all"], b["beside_a_hanging_receiver"]["all"]
        add(f"callbacks, state change → receipt ({b['one_receiver']['tasks']} tasks)",
            f"median {one['median_ms']:.1f} ms, p99 {one['p99_ms']:.1f} ms", "—", None)
        add("callbacks, same, beside a hanging receiver",
            f"median {beside['median_ms']:.1f} ms, p99 {beside['p99_ms']:.1f} ms", "—", None)
        if paced := b.get("paced"):
            add(f"callbacks, paced ({paced['paced_per_second']}/s, {paced['tasks']} tasks): change → receipt",
                f"median {paced['all']['median_ms']:.1f} ms, p99 {paced['all']['p99_ms']:.1f} ms", "≤ 5 ms (median)",
                paced["all"]["median_ms"] <= 5)
    if e := load("event_latency"):
        for run in e["scenarios"]:
            stream, callback = run["stream"], run["callback"]
            add(f"event stream, state change → receipt, {run['streams']} stream(s) ({run['tasks']} paced tasks)",
                f"median {stream['median_ms']:.1f} ms, p99 {stream['p99_ms']:.1f} ms (callbacks beside it: "
                f"{callback['median_ms']:.1f} / {callback['p99_ms']:.1f} ms)", "—", None)
    if a := load("agent"):
        p, v = a["parser"], a["service"]
        add("agent frame parser", f"{p['mib_per_s']:.0f} MiB/s, at most {p['max_buffered_bytes']} bytes held", "—",
            None)
        add(f"agent: {v['frames']} frames → record / → callbacks", f"{v['submit_to_record_success_s']:.2f} s / "
            f"{v['submit_to_terminal_callback_s']:.1f} s", "—", None)
        add("agent: message → answer callback, median", f"{v['message_round_trip']['median_ms']:.0f} ms "
            f"(p99 {v['message_round_trip']['p99_ms']:.0f})", "—", None)
    if d := load("dashboard"):
        if "task_list" in d:
            add(f"dashboard, {d['tasks']} tasks: polled list", f"{d['task_list']['brief']['bytes'] / 1024:.0f} KiB in "
                f"{d['task_list']['brief']['fetch_ms_median']:.0f} ms (full list "
                f"{d['task_list']['full']['bytes'] / 1048576:.1f} MiB)", "—", None)
        add(f"dashboard, {d['tasks']} tasks: API round / redraw, median",
            f"{d['api_round_ms']['median']:.0f} ms / {d['render_ms']['median']:.0f} ms "
            f"({d['table_rows_drawn']} rows drawn)", "—", None)
    return out


def markdown_table() -> str:
    lines = ["| measure | figure | target | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {what} | {figure} | {target} | {met} |" for what, figure, target, met in rows()]
    return "\n".join(lines)


def main() -> None:
    if "--summary" not in sys.argv:
        for name in SCRIPTS:
            print(f"\n===== {name} =====", flush=True)
            if name == "dashboard" and not all(path.exists() for path in BROWSER):
                print("skipped: no chromium / chromedriver (the last figures are kept)")
                continue
            if name == "cgroup_overhead" and os.geteuid() != 0:
                print("skipped: needs root to make cgroups (the last figures are kept)")
                continue
            arguments = ARGUMENTS.get(name, [])
            if name == "profile_tasks" and not Path(sys.executable).with_name("py-spy").exists():
                print("py-spy is not installed (pip install py-spy): worker CPU only, no profile")
                arguments = ["1000"]
            subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *arguments], check=True)
    print("\n===== summary =====")
    for what, figure, target, met in rows():
        print(f"{what:<48}{figure:<52}{target:<14}{met}")
    marker = "<!-- results -->"
    document = (BENCH.parent / "BENCHMARKS.md")
    text = document.read_text() if document.exists() else marker
    head = text.split(marker)[0]
    stamp = f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.platform()}, " \
            f"{os.cpu_count()} CPUs, shared machine.\n\n"
    document.write_text(head + marker + "\n" + stamp + markdown_table() + "\n")


if __name__ == "__main__":
    main()
