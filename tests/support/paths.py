"""Where things are, computed once from this file so that a test's own location (its room) never matters."""

from __future__ import annotations

from pathlib import Path

__all__ = ["FAKE_BIN", "REPO", "TESTS"]

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
FAKE_BIN = TESTS / "bin"  # fake agent-runner and fake codex
