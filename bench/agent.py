"""The agent executor: frame parsing speed, frames through the real service, and message round trips.

1. The frame parser alone: a 256 MiB stream (1 KiB frames between log lines) fed in 64 KiB reads: MiB/s and the
   most it ever buffered.
2. Through gunicorn with tests/bin/fake-agent-runner printing 5,000 frames at once: time until the record is
   ``success`` with all frames, and until the terminal callback (each frame is an ``output`` callback, sent in
   order), and the worker's RSS growth.
3. Message round trip: POST /tasks/{id}/messages → the agent's answer arriving as an ``output`` callback, 100
   sequential messages (the fake agent polls its IPC directory every 50 ms, as does the runner its stdout).

Run: ``.venv/bin/python bench/agent.py``; writes bench/results/agent.json.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import Receiver, summary_ms, table, write_result  # noqa: E402
from service import REPO, Service, rss_kib  # noqa: E402

from host_runner.agent.frames import FrameParser, render_frame  # noqa: E402

AGENT_CMD = shlex.join([sys.executable, str(REPO / "tests" / "bin" / "fake-agent-runner")])
FRAMES = 5000
MESSAGES = 100


def output_key(body: dict[str, Any]) -> Any:
    """An output callback is named by its result text, the others by their status."""
    return ("output", body["output"]["result"]) if body["status"] == "output" else body["status"]


def parser_speed() -> dict[str, float]:
    frame = render_frame({"status": "success", "result": "x" * 1000, "newSessionId": "s"})
    unit = b"some log line between frames\n" + frame
    stream = unit * (256 * 1024 * 1024 // len(unit))
    parser = FrameParser()
    most = frames = 0
    started = time.perf_counter()
    for offset in range(0, len(stream), 65536):
        frames += len(parser.feed(stream[offset:offset + 65536]))
        most = max(most, parser.buffered)
    seconds = time.perf_counter() - started
    return {"mib": len(stream) / 2**20, "seconds": seconds, "mib_per_s": len(stream) / 2**20 / seconds,
            "frames": frames, "max_buffered_bytes": most}


def through_service() -> dict[str, Any]:
    receiver = Receiver(key=output_key)
    with tempfile.TemporaryDirectory(prefix="host-runner-bench-") as scratch:
        service = Service(Path(scratch) / "data", HOST_RUNNER_EXECUTOR="agent", HOST_RUNNER_AGENT_CMD=AGENT_CMD,
                          HOST_RUNNER_CALLBACK_WORKERS="8").start()
        try:
            worker = service.worker_pid
            rss_before = rss_kib(worker)
            sent = time.time()
            requests.post(f"{service.base}/tasks", json={
                "task_id": "many", "run_id": "1", "prompt": f"frames:{FRAMES}", "group": "g",
                "status_callback_url": receiver.url}, timeout=10)
            while requests.get(f"{service.base}/tasks/many", timeout=10).json()["status"] != "success":
                time.sleep(0.01)
            recorded = time.time()
            ended = receiver.wait_arrival("success", timeout=600)
            rss_after = rss_kib(worker)
            record = requests.get(f"{service.base}/tasks/many", timeout=10).json()
            assert record["frames"] == FRAMES, record["frames"]

            requests.post(f"{service.base}/tasks", json={
                "task_id": "chat", "run_id": "1", "prompt": "loop", "group": "g2",
                "status_callback_url": receiver.url}, timeout=10)
            while requests.get(f"{service.base}/tasks/chat", timeout=10).json().get("frames", 0) < 1:
                time.sleep(0.01)  # messages are accepted once the agent runs
            round_trips = []
            for index in range(MESSAGES):
                text = f"m{index}"
                posted = time.time()
                answer = requests.post(f"{service.base}/tasks/chat/messages", json={"text": text}, timeout=10)
                assert answer.status_code == 202, answer.text
                round_trips.append(receiver.wait_arrival(("output", f"echo: {text}"), timeout=30) - posted)
            requests.post(f"{service.base}/tasks/chat/close", timeout=10)
        finally:
            service.stop()
            receiver.close()
    seconds = ended - sent
    return {"frames": FRAMES, "submit_to_record_success_s": recorded - sent,
            "record_frames_per_s": FRAMES / (recorded - sent),
            "submit_to_terminal_callback_s": seconds, "callback_frames_per_s": FRAMES / seconds,
            "worker_rss_growth_kib": rss_after - rss_before, "message_round_trip": summary_ms(round_trips)}


def main() -> None:
    parsing = parser_speed()
    service_figures = through_service()
    trip = service_figures["message_round_trip"]
    table([
        ("parser, 64 KiB reads", f"{parsing['mib_per_s']:.0f} MiB/s over {parsing['mib']:.0f} MiB "
                                 f"({parsing['frames']} frames), at most {parsing['max_buffered_bytes']} bytes held"),
        (f"{FRAMES} frames through the service", f"{service_figures['submit_to_record_success_s']:.2f} s to the "
                                                 f"record's success ({service_figures['record_frames_per_s']:.0f} "
                                                 f"frames/s)"),
        ("  … and to the terminal callback", f"{service_figures['submit_to_terminal_callback_s']:.2f} s (one "
                                             f"callback per frame, in order: "
                                             f"{service_figures['callback_frames_per_s']:.0f} /s)"),
        ("worker RSS growth", f"{service_figures['worker_rss_growth_kib']} KiB"),
        ("message → answer callback", f"median {trip['median_ms']:.0f} ms  p99 {trip['p99_ms']:.0f} ms "
                                      f"({trip['n']} messages)"),
    ])
    write_result("agent", {"parser": parsing, "service": service_figures})


if __name__ == "__main__":
    main()
