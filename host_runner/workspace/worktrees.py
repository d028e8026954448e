"""The ``isolated-worktree`` mode: each task works in its own git worktree on its own branch.

Lifecycle of one worktree (git never runs in an actor's thread):

1. submit: :func:`inspect_worktree_request` (in the API's thread) checks the repository, the path and the branch
   name with git and takes a snapshot of ``git worktree list``; the WorktreeRegistryActor then refuses paths
   and branches held by other active tasks (claims), and then ones the snapshot shows in use outside the runner;
2. :meth:`WorktreeWorkspace.prepare`: ``git worktree add -B <branch> -- <path> <base>`` under the repository's
   lock; a failure leaves the repository as it found it (branch restored, nothing registered);
3. :meth:`WorktreeWorkspace.cleanup`: first the work is saved (base commit, final HEAD, changed files, patches in
   the run directory), then ``git worktree remove --force`` and ``git worktree prune``.

Everything the runner did with git for a run is also written to ``worktree.log`` in its run directory.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from host_runner.domain.claims import Admission, Claim, worktree_claims
from host_runner.domain.errors import Conflict
from host_runner.domain.errors import ValidationError
from host_runner.domain.record import utc_now
from host_runner.domain.request import TaskRequest
from host_runner.run.process_group import RunFiles
from host_runner.workspace import git
from host_runner.workspace.follow_up import FOLLOW_UP_FIELD, apply_saved_work, follow_up_base
from host_runner.workspace.interface import WorkspaceError

logger = logging.getLogger(__name__)

#: Attempts at listing worktrees (see :func:`list_worktrees_settled`).
LIST_ATTEMPTS = 5
#: At most this many changed files are listed on the record (the count is always exact).
MAX_LISTED_FILES = 1000
#: Options that make a patch ``git apply`` can read whatever the user's git configuration says.
_PATCH_OPTIONS = (
    "--binary", "--full-index", "--no-ext-diff", "--no-textconv", "--no-color", "--no-relative",
    "--src-prefix=a/", "--dst-prefix=b/",
)
#: A repository's fsmonitor hook would start a daemon from our cleanup; we do not need it to read a worktree.
_NO_FSMONITOR = ("-c", "core.fsmonitor=false")


def list_worktrees_settled(root: str) -> list[git.WorktreeEntry]:
    """``git worktree list``, retried briefly: git fails to list while another worktree of the repository is
    half created (``failed to read .git/worktrees/<name>/commondir``)."""
    for attempt in range(LIST_ATTEMPTS):
        try:
            return git.list_worktrees(root)
        except git.GitError:
            if attempt == LIST_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def inspect_worktree_request(request: TaskRequest) -> Admission:
    """Check an isolated-worktree submission against git and the file system, and say what it claims.

    Raises :class:`ValidationError` naming the field: ``project_root`` must be a git repository with a commit,
    ``worktree_path`` absent or an empty directory outside the git directory, ``git_branch`` a name
    ``git check-ref-format --branch`` accepts. Blocking (a few git queries): call it outside actors.
    The returned :class:`Admission` carries a snapshot of ``git worktree list`` that the registry checks
    once no active task holds the path or the branch (so that our own tasks are named as holders first).
    """
    workspace = request.workspace
    assert workspace is not None and workspace.project_root and workspace.worktree_path and workspace.git_branch
    root, branch = workspace.project_root, workspace.git_branch
    try:
        info = git.repository_info(root)
    except git.GitError as exc:
        raise ValidationError("workspace.project_root", f"is not a git repository ({exc.message})") from None
    if info.head is None:
        raise ValidationError("workspace.project_root", "has no commit yet: HEAD must name a commit to branch from")

    path = os.path.realpath(workspace.worktree_path)
    for git_dir in sorted({info.git_dir, info.common_dir, os.path.realpath(os.path.join(root, ".git"))}):
        if path == git_dir or path.startswith(git_dir.rstrip(os.sep) + os.sep):
            raise ValidationError("workspace.worktree_path", f"is inside the repository's git directory {git_dir}")
    if os.path.lexists(workspace.worktree_path):
        if not os.path.exists(workspace.worktree_path):
            raise ValidationError("workspace.worktree_path", "is a broken symbolic link")
        if not os.path.isdir(path):
            raise ValidationError("workspace.worktree_path", "exists and is not a directory")
        try:
            empty = not os.listdir(path)
        except OSError as exc:
            raise ValidationError("workspace.worktree_path", f"cannot be read: {exc.strerror}") from None
        if not empty:
            raise ValidationError("workspace.worktree_path", "exists and is not empty")

    try:
        valid = git.is_valid_branch_name(root, branch)
    except git.GitError as exc:
        raise ValidationError("workspace.git_branch", f"could not be checked: {exc.message}") from None
    if not valid:
        raise ValidationError("workspace.git_branch", "is not a valid branch name (git check-ref-format --branch)")

    try:
        entries = list_worktrees_settled(root)
    except git.GitError as exc:
        raise ValidationError("workspace.project_root", f"its worktrees cannot be listed ({exc.message})") from None
    lock_paths = tuple(Claim("path", os.path.realpath(item), "lock path") for item in workspace.lock_paths)
    return Admission(
        claims=lock_paths + worktree_claims(path, info.common_dir, branch),
        verify=functools.partial(_check_worktrees, tuple(entries), root, path, branch),
    )


def _check_worktrees(entries: tuple[git.WorktreeEntry, ...], root: str, path: str, branch: str) -> None:
    """The path must not be a registered worktree yet, and the branch not checked out in any worktree of the
    repository, the main one included. Raises :class:`Conflict` naming the worktree in the way."""
    for entry in entries:
        if entry.real_path == path:
            hint = " (its directory is gone; `git worktree prune` forgets it)" if entry.prunable else ""
            raise Conflict(f"worktree path {path} is already a worktree of {root}{hint}")
        if entry.branch == branch:
            raise Conflict(f"branch {branch} is already checked out in worktree {entry.path}")


def _cleanup_fields(attempted: bool, succeeded: bool | None, message: str) -> dict[str, Any]:
    return {
        "worktree_cleanup_attempted": attempted,
        "worktree_cleanup_succeeded": succeeded,
        "worktree_cleanup_message": message,
    }


class WorktreeWorkspace:
    """One task's worktree. ``prepared`` are the record fields of an earlier :meth:`prepare` (a task adopted
    after a restart), so that its cleanup knows the base commit without preparing again."""

    def __init__(self, request: TaskRequest, files: RunFiles, *, cleanup_enabled: bool = True,
                 prepared: Mapping[str, Any] | None = None) -> None:
        workspace = request.workspace
        assert workspace is not None and workspace.project_root and workspace.worktree_path and workspace.git_branch
        self.project_root = workspace.project_root
        # The resolved path is what the claims compare and what git records; use it everywhere.
        self.path = os.path.realpath(workspace.worktree_path)
        self.branch = workspace.git_branch
        self.files = files
        self.cleanup_enabled = cleanup_enabled
        prepared = prepared or {}
        self.base_commit: str | None = prepared.get("worktree_base_commit")
        self.previous_tip: str | None = prepared.get("worktree_previous_branch_tip")
        self.created = self.base_commit is not None
        #: The earlier run this one continues (host_runner.workspace.follow_up), None for a fresh start.
        self.follow_up: dict[str, Any] | None = prepared.get(FOLLOW_UP_FIELD)

    @property
    def log_path(self) -> Path:
        return self.files.directory / "worktree.log"

    def _log(self, text: str) -> None:
        try:
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(f"{utc_now()} {text.rstrip()}\n")
        except OSError as exc:  # the log is a convenience; the record has what matters
            logger.warning("cannot write %s: %s", self.log_path, exc.strerror)

    def _log_result(self, args: list[str], result: git.GitResult) -> None:
        output = "\n".join(part.strip() for part in (result.stdout, result.stderr) if part.strip())
        self._log(f"git {' '.join(args)} -> exit {result.returncode}" + (f"\n{output}" if output else ""))

    def _registered(self) -> bool:
        return any(entry.real_path == self.path for entry in list_worktrees_settled(self.project_root))

    # --- prepare ---------------------------------------------------------------------------------------------
    def prepare(self) -> Path:
        """Create the worktree on its branch at the project's current HEAD (a follow-up: at the earlier run's
        branch, with its uncommitted work applied); return its path."""
        try:
            lock = git.repository_lock(git.common_dir(self.project_root))
        except git.GitError as exc:
            raise WorkspaceError(f"cannot prepare the worktree: {exc.message}") from None
        with lock:
            try:
                if self.follow_up is not None:
                    base = follow_up_base(self.project_root, self.follow_up)
                else:
                    base = git.run_git(["rev-parse", "--verify", "HEAD^{commit}"],
                                       cwd=self.project_root).stdout.strip()
                if self._registered():
                    raise WorkspaceError(f"cannot prepare the worktree: {self.path} is already a worktree")
                previous = git.branch_tip(self.project_root, self.branch)
            except git.GitError as exc:
                raise WorkspaceError(f"cannot prepare the worktree: {exc.message}") from None
            existed = os.path.lexists(self.path)
            # The resolved base commit rather than the word HEAD: the same commit, but the base we record is
            # exactly the one checked out even if somebody commits in the main worktree meanwhile.
            args = ["worktree", "add", "-B", self.branch, "--", self.path, base]
            try:
                result = git.run_git(args, cwd=self.project_root, timeout=git.SLOW_TIMEOUT, check=False)
            except git.GitError as exc:
                self._log(f"git {' '.join(args)} failed: {exc.message}")
                self._roll_back(base, previous, existed)
                raise WorkspaceError(f"git worktree add failed: {exc.message}") from None
            self._log_result(args, result)
            if result.returncode != 0:
                self._roll_back(base, previous, existed)
                raise WorkspaceError(f"git worktree add failed: {result.message}")
        self.created = True
        self.base_commit = base
        self._log(f"worktree {self.path} created on branch {self.branch} at base commit {base}")
        if previous is not None and previous != base:
            self.previous_tip = previous
            self._log(f"branch {self.branch} was reset by -B; its previous tip was {previous} "
                      f"(recover it with: git branch <name> {previous})")
            logger.warning("worktree task reset branch %s of %s; its previous tip was %s", self.branch,
                           self.project_root, previous)
        if self.follow_up is not None:  # raises when it no longer applies: the run fails before it starts
            self._log(apply_saved_work(self.path, self.follow_up))
        return Path(self.path)

    def _roll_back(self, base: str, previous: str | None, existed: bool) -> None:
        """Undo what a failed ``worktree add`` may have done (it creates or resets the branch before it checks
        the path). Called with the repository lock held; failures are logged, never raised."""
        ref = f"refs/heads/{self.branch}"
        try:
            if self._registered():
                self._log_result(["worktree", "remove"], git.run_git(
                    ["worktree", "remove", "--force", "--", self.path], cwd=self.project_root,
                    timeout=git.SLOW_TIMEOUT, check=False))
            git.run_git(["worktree", "prune"], cwd=self.project_root, check=False)
            if not existed and os.path.isdir(self.path) and not os.path.islink(self.path):
                shutil.rmtree(self.path, ignore_errors=True)  # a directory git made before it was stopped
            current = git.branch_tip(self.project_root, self.branch)
            if current == base and previous is None:
                # Deleted only while it still points at the base (update-ref checks the old value).
                self._log_result(["update-ref", "-d", ref], git.run_git(
                    ["update-ref", "-d", ref, base], cwd=self.project_root, check=False))
            elif current == base and previous is not None and previous != base:
                self._log_result(["update-ref", ref, previous], git.run_git(
                    ["update-ref", "-m", "host-runner: restore after a failed worktree add", ref, previous, base],
                    cwd=self.project_root, check=False))
        except git.GitError as exc:
            self._log(f"rolling back the failed worktree add failed: {exc.message}")
            logger.warning("could not roll back the failed worktree add at %s: %s", self.path, exc.message)

    def discard_unfinished(self) -> str | None:
        """At start, for a run stopped while its worktree was being made: remove the worktree git registered at
        our path (the claims kept anybody else off it), so that the run can be prepared again. Never raises."""
        try:
            with git.repository_lock(git.common_dir(self.project_root)):
                if not self._registered():
                    git.run_git(["worktree", "prune"], cwd=self.project_root, check=False)
                    return None
                args = ["worktree", "remove", "--force", "--", self.path]
                self._log_result(args, git.run_git(args, cwd=self.project_root, timeout=git.SLOW_TIMEOUT,
                                                   check=False))
                git.run_git(["worktree", "prune"], cwd=self.project_root, check=False)
        except git.GitError as exc:
            logger.warning("could not remove the half-made worktree %s: %s", self.path, exc.message)
            return f"could not remove the half-made worktree {self.path}: {exc.message}"
        self._log(f"removed the half-made worktree {self.path} (the runner stopped while preparing it)")
        return f"removed the half-made worktree {self.path}"

    def record_fields(self) -> dict[str, Any]:
        """What the task record keeps once the worktree exists (persisted when the task starts running)."""
        if not self.created:
            return {}
        return {"worktree_base_commit": self.base_commit, "worktree_previous_branch_tip": self.previous_tip}

    # --- cleanup ---------------------------------------------------------------------------------------------
    def cleanup(self) -> dict[str, Any]:
        """Save the work, then remove the worktree (unless HOST_RUNNER_CLEANUP_WORKTREE=false). Never raises."""
        if not self.created:
            return _cleanup_fields(False, None, "no worktree was created")
        fields = self.record_fields()
        try:
            saved, problem = self._preserve(fields)
            if not self.cleanup_enabled:
                fields.update(_cleanup_fields(False, None, f"kept {self.path} (HOST_RUNNER_CLEANUP_WORKTREE=false)"))
            elif not saved:
                fields.update(_cleanup_fields(
                    False, None, f"kept {self.path}: its work could not be saved ({problem})"))
            else:
                fields.update(self._remove())
        except Exception:
            logger.exception("cleaning up worktree %s failed", self.path)
            fields.update(_cleanup_fields(True, False, "internal error while cleaning up; see the runner log"))
        self._log(f"cleanup: {fields.get('worktree_cleanup_message')}")
        return fields

    def _preserve(self, fields: dict[str, Any]) -> tuple[bool, str | None]:
        """Record the final HEAD, the changed files and two patches. Returns (saved, problem): removing the
        worktree is safe only when saved (or when there is nothing left to save)."""
        assert self.base_commit is not None
        if not os.path.isdir(self.path):
            fields["worktree_preserve_error"] = "the worktree directory was gone when the task ended"
            return True, None  # nothing left that removing could lose
        run_dir = self.files.directory
        index = run_dir / "worktree.index"
        try:
            final = git.run_git(["rev-parse", "--verify", "HEAD^{commit}"], cwd=self.path).stdout.strip()
            fields["worktree_final_head"] = final
            fields["worktree_commits"] = int(git.run_git(
                ["rev-list", "--count", f"{self.base_commit}..{final}"], cwd=self.path).stdout.strip() or 0)
            # Untracked files must be in the patches too. Marking them intent-to-add in a copy of the worktree's
            # index makes `git diff` show them as new files without writing anything into the repository.
            real_index = git.run_git(["rev-parse", "--path-format=absolute", "--git-path", "index"],
                                     cwd=self.path).stdout.strip()
            env = {"GIT_INDEX_FILE": str(index), "GIT_OPTIONAL_LOCKS": "0"}
            if os.path.isfile(real_index):
                shutil.copyfile(real_index, index)
            else:
                git.run_git(["read-tree", final], cwd=self.path, env=env)
            git.run_git([*_NO_FSMONITOR, "add", "--all", "--intent-to-add"], cwd=self.path, env=env,
                        timeout=git.SLOW_TIMEOUT)
            for name, since in (("worktree.patch", self.base_commit), ("uncommitted.patch", final)):
                git.run_git([*_NO_FSMONITOR, "diff", *_PATCH_OPTIONS, since, "--"], cwd=self.path, env=env,
                            timeout=git.SLOW_TIMEOUT, stdout_path=run_dir / name)
            fields["worktree_patch"] = str(run_dir / "worktree.patch")
            fields["worktree_uncommitted_patch"] = str(run_dir / "uncommitted.patch")
            names_file = run_dir / "worktree.changed"
            git.run_git([*_NO_FSMONITOR, "diff", "--name-only", "-z", "--no-renames", "--no-relative",
                         self.base_commit, "--"], cwd=self.path, env=env, timeout=git.SLOW_TIMEOUT,
                        stdout_path=names_file)
            names = [name for name in names_file.read_bytes().decode("utf-8", "replace").split("\0") if name]
            names_file.unlink()
            fields["worktree_changed_files"] = names[:MAX_LISTED_FILES]
            fields["worktree_changed_files_count"] = len(names)
        except (git.GitError, OSError, ValueError) as exc:
            problem = exc.message if isinstance(exc, git.GitError) else str(exc)
            fields["worktree_preserve_error"] = problem
            self._log(f"saving the work failed: {problem}")
            logger.warning("could not save the work of worktree %s: %s", self.path, problem)
            return False, problem
        finally:
            index.unlink(missing_ok=True)
        self._log(f"work saved: final HEAD {final}, {fields['worktree_commits']} commit(s) since the base, "
                  f"{len(names)} changed file(s); patches in {run_dir}")
        return True, None

    def _remove(self) -> dict[str, Any]:
        """``git worktree remove --force`` then ``git worktree prune``, under the repository's lock."""
        args = ["worktree", "remove", "--force", "--", self.path]
        try:
            with git.repository_lock(git.common_dir(self.project_root)):
                result = git.run_git(args, cwd=self.project_root, timeout=git.SLOW_TIMEOUT, check=False)
                self._log_result(args, result)
                self._log_result(["worktree", "prune"],
                                 git.run_git(["worktree", "prune"], cwd=self.project_root, check=False))
                registered = self._registered()
        except git.GitError as exc:
            return _cleanup_fields(True, False, f"git worktree remove failed: {exc.message}")
        if not registered and not os.path.lexists(self.path):
            return _cleanup_fields(True, True, f"removed {self.path}")
        if result.returncode != 0:
            return _cleanup_fields(True, False, f"git worktree remove failed: {result.message}")
        return _cleanup_fields(True, False, f"{self.path} is still there after git worktree remove")
