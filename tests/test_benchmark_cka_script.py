"""benchmarks/cka.py: --device reaches the per-case processes, and the CUDA path syncs
around the clock, reads CUDA memory counters and drops the CPU-time column (faked here)."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import torch

from benchmarks import cka


def test_device_is_passed_to_the_case_process(monkeypatch):
    calls = []

    def fake_run(argv, **kwargs):
        calls.append(argv)
        return SimpleNamespace(stdout=json.dumps({"ok": 1}) + "\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert cka.run_in_subprocess("pair", "cuda:1") == {"ok": 1}
    assert calls[0][-4:] == ["--case", "pair", "--device", "cuda:1"]


def test_cpu_measure_keeps_memory_and_both_times():
    _, figures = cka.measure(lambda: torch.ones(3).sum(), torch.device("cpu"), repeats=2)
    assert set(figures) == {"cold_extra_mb", "warm_extra_mb", "seconds", "cpu_seconds"}


def test_cuda_measure_syncs_and_reads_cuda_memory(monkeypatch):
    events = []
    for name, event in (("synchronize", "sync"), ("reset_peak_memory_stats", "reset")):
        monkeypatch.setattr(torch.cuda, name, lambda device, e=event: events.append(e))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 100 * 2**20)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 102 * 2**20)

    def fn():
        events.append("call")
        return 1.0

    _, figures = cka.measure(fn, torch.device("cuda"), repeats=2)
    assert figures["cold_extra_mb"] == figures["warm_extra_mb"] == 2.0
    assert set(figures) == {"cold_extra_mb", "warm_extra_mb", "seconds"}
    memory, timing = events[:8], events[8:]
    assert memory == ["sync", "reset", "call", "sync"] * 2
    assert timing == ["sync", "call", "sync"] * 2
