/*
 * The native build of host_runner/run/wrapper.py: the same protocol, started in about a millisecond instead of ten.
 *
 *   wrapper STATUS_FILE GO_FD GRACE [--namespace PLAN... --] COMMAND...
 *   wrapper --check-namespace
 *
 * Started by the runner as the leader of a new session, with stdin, stdout and stderr already pointing at the
 * run's files.
 *
 * 1. Wait for the runner to write "g" on the pipe GO_FD (it does so only after it persisted the pid). Anything
 *    else (the runner died: EOF) and the wrapper exits 125 without running anything.
 * 2. Create "launched" beside STATUS_FILE, start COMMAND (PATH lookup) in the same process group, wait for it.
 * 3. Write {"exit_code", "signal", "error", "finished_at"} to STATUS_FILE atomically (tmp + rename); if that
 *    fails (a full disk), the exit status below still carries the command's.
 * 4. As a child subreaper, daemons the command forked that left the group (setsid) are re-parented here: once
 *    the command ended, TERM them, KILL those left after GRACE seconds, reap them, and only then exit.
 *
 * If "launched" cannot be created, the command does not start (fail closed; the status file says why).
 *
 * SIGTERM, SIGINT and SIGHUP are caught and noted, so the wrapper outlives a group signal and records the
 * outcome; one noted before the command started means it never starts (exit 125); the command gets default handlers back (posix_spawn resets caught signals). Exit status: the
 * command's, 128 + N when signal N ended it, 127 when it could not start.
 *
 * With --namespace (HOST_RUNNER_AGENT_PATHS=container, see host_runner/run/container_paths.py), step 2 starts the
 * command in a private mount namespace instead (a user namespace too when not root) where PLAN's directories
 * appear at the paths an agent-runner written for a container hard-codes, and /tmp is a fresh tmpfs; the rest of
 * the file system is the host's. PLAN is a list of words:
 *   rw SOURCE TARGET   bind SOURCE (with what is mounted below it) at TARGET, writable
 *   ro SOURCE TARGET   bind SOURCE at TARGET, read-only
 *   cwd TARGET         the command's working directory
 * TARGETs lie under /workspace, which exists only in the namespace (nothing is created on the host). The wrapper
 * itself stays outside (its status file may be under the host's /tmp); the namespace ends with the task's last
 * process. A plan that cannot be set up is reported like a command that cannot start (127, the reason in the
 * status file). `wrapper --check-namespace` sets up an empty plan and exits 0, or prints why it cannot and exits 1:
 * the runner asks at start. Only this native wrapper does this; wrapper.py refuses a plan.
 *
 * Keep this file and wrapper.py in step: tests/run/test_wrapper.py runs both against the same cases.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NOT_STARTED 125
#define CANNOT_START 127

extern char **environ;

static volatile sig_atomic_t stopped = 0;

/* Noted, not obeyed, once the command runs; before that, a stop means it never starts. */
static void note(int signum) { stopped = signum; }

/* Appends `text` to `out` as the body of a JSON string; control, quote, backslash and non-ASCII bytes are
 * escaped (\u00XX), so the file is valid ASCII JSON whatever the command name was. */
static void json_string(FILE *out, const char *text) {
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c < 0x20 || *c >= 0x7f || *c == '"' || *c == '\\')
            fprintf(out, "\\u%04x", *c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

static void record(const char *status_path, int exit_code, int signum, const char *error) {
    char temporary[4096], stamp[32];
    time_t now = time(NULL);
    struct tm utc;
    if (snprintf(temporary, sizeof temporary, "%s.tmp", status_path) >= (int)sizeof temporary)
        return;
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &utc));
    /* 0600: the run directory's files are the runner user's alone, whatever umask the command gets */
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (out == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    fprintf(out, "{\"exit_code\": %d, \"signal\": ", exit_code);
    if (signum)
        fprintf(out, "%d", signum);
    else
        fputs("null", out);
    fputs(", \"error\": ", out);
    if (error)
        json_string(out, error);
    else
        fputs("null", out);
    fprintf(out, ", \"finished_at\": \"%s\"}", stamp);
    if (fclose(out) == 0)
        rename(temporary, status_path);
}

struct proc {
    pid_t pid, ppid, pgrp;
    char state;
};

/* Every process in /proc (pid, parent, group, state); the array is malloc'ed, the count returned. */
static int scan(struct proc **out) {
    struct proc *list = NULL;
    int count = 0, capacity = 0;
    DIR *dir = opendir("/proc");
    if (dir != NULL) {
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
                continue;
            char path[300], text[1024];
            snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            ssize_t length = read(fd, text, sizeof text - 1);
            close(fd);
            if (length <= 0)
                continue;
            text[length] = 0;
            char *name_end = strrchr(text, ')');  /* the command name may hold spaces and parentheses */
            char state;
            int ppid, pgrp;
            if (name_end == NULL || sscanf(name_end + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
                continue;
            if (count == capacity) {
                capacity = capacity ? capacity * 2 : 256;
                struct proc *grown = realloc(list, capacity * sizeof *list);
                if (grown == NULL)
                    break;
                list = grown;
            }
            list[count++] = (struct proc){(pid_t)atoi(entry->d_name), ppid, pgrp, state};
        }
        closedir(dir);
    }
    *out = list;
    return count;
}

/* Live descendants of this process outside its process group (malloc'ed into *found); returns the count. */
static int escaped(pid_t **found) {
    pid_t self = getpid(), group = getpgrp();
    struct proc *list = NULL;
    int total = scan(&list), head = 0, tail = 0, count = 0;
    pid_t *queue = malloc((total + 1) * sizeof *queue);
    pid_t *result = malloc((total + 1) * sizeof *result);
    if (queue == NULL || result == NULL) {
        free(queue);
        free(result);
        free(list);
        *found = NULL;
        return 0;
    }
    queue[tail++] = self;
    while (head < tail) {
        pid_t parent = queue[head++];
        for (int i = 0; i < total; i++) {
            if (list[i].ppid != parent || list[i].state == 'Z' || tail > total)
                continue;
            queue[tail++] = list[i].pid;
            if (list[i].pgrp != group)
                result[count++] = list[i].pid;
        }
    }
    free(queue);
    free(list);
    *found = result;
    return count;
}

static void reap(void) {
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

static void pause_ms(long ms) {
    struct timespec left = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) < 0 && errno == EINTR)
        ;
}

static double monotonic(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec + now.tv_nsec / 1e9;
}

static void signal_all(const pid_t *pids, int count, int signum) {
    for (int i = 0; i < count; i++)
        kill(pids[i], signum);
}

/* TERM the descendants that left the group, KILL what is left after `grace` seconds, reap them. */
static void stop_escaped(double grace) {
    reap();
    if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
        return;  /* no child at all, so no descendant either (orphans would be ours): no /proc scan */
    pid_t *pids = NULL;
    int count = escaped(&pids);
    if (count > 0) {
        signal_all(pids, count, SIGTERM);
        double deadline = monotonic() + grace;
        while (count > 0 && monotonic() < deadline) {
            free(pids);
            pause_ms(50);
            reap();
            count = escaped(&pids);
        }
        for (int round = 0; count > 0 && round < 100; round++) {  /* one may fork while being killed */
            signal_all(pids, count, SIGKILL);
            free(pids);
            pause_ms(20);
            reap();
            count = escaped(&pids);
        }
    }
    free(pids);
    reap();
}


/* --- container paths: the command in a private mount namespace ------------------------------------------------ */

#define MAX_MOUNTS 64
#define NEW_ROOT "/tmp"  /* where the namespace's root is assembled: the task gets a fresh /tmp anyway */
#define WORKSPACE "/workspace/"

struct mount_plan {
    int count;
    struct {
        int read_only, fd;
        const char *source, *target;
    } mounts[MAX_MOUNTS];
    const char *cwd;
};

static char problem[1024];  /* why the namespace could not be made (reported through a pipe by the child) */

static int failed(const char *what, const char *path) {
    int saved = errno;
    snprintf(problem, sizeof problem, "container paths: %s%s%s: %s", what, path ? " " : "", path ? path : "",
             strerror(saved));
    return -1;
}

/* A target the plan may name: absolute, under /workspace/, no empty, "." or ".." component. */
static int valid_target(const char *target) {
    if (strncmp(target, WORKSPACE, strlen(WORKSPACE)) != 0 || strlen(target) >= 1024)
        return 0;
    for (const char *part = target + 1; *part; ) {
        const char *end = strchr(part, '/');
        size_t length = end ? (size_t)(end - part) : strlen(part);
        if (length == 0 || (length == 1 && part[0] == '.') || (length == 2 && part[0] == '.' && part[1] == '.'))
            return 0;
        part += length + (end ? 1 : 0);
        if (end && !*part)
            return 0;  /* a trailing slash */
    }
    return 1;
}

/* Reads "--namespace WORDS... --" at argv[*index]; on success *index is the command's first word. */
static int parse_plan(char **argv, int argc, int *index, struct mount_plan *plan) {
    int i = *index + 1;
    memset(plan, 0, sizeof *plan);
    while (i < argc && strcmp(argv[i], "--") != 0) {
        if ((strcmp(argv[i], "rw") == 0 || strcmp(argv[i], "ro") == 0) && i + 2 < argc) {
            if (plan->count == MAX_MOUNTS || !valid_target(argv[i + 2]))
                return -1;
            plan->mounts[plan->count].read_only = argv[i][1] == 'o';
            plan->mounts[plan->count].source = argv[i + 1];
            plan->mounts[plan->count].target = argv[i + 2];
            plan->mounts[plan->count].fd = -1;
            plan->count++;
            i += 3;
        } else if (strcmp(argv[i], "cwd") == 0 && i + 1 < argc && valid_target(argv[i + 1])) {
            plan->cwd = argv[i + 1];
            i += 2;
        } else {
            return -1;
        }
    }
    if (i + 1 >= argc)
        return -1;  /* no "--", or no command after it */
    *index = i + 1;
    return 0;
}

static int write_text(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t written = write(fd, text, strlen(text));
    int saved = errno;
    close(fd);
    errno = saved;
    return written == (ssize_t)strlen(text) ? 0 : -1;
}

/* mkdir -p for a path inside the new root's own tmpfs (never on the host: targets are checked) */
static int make_directories(char *path) {
    for (char *slash = strchr(path + 1, '/'); ; slash = strchr(slash + 1, '/')) {
        if (slash)
            *slash = 0;
        int made = mkdir(path, 0755) == 0 || errno == EEXIST;
        if (slash)
            *slash = '/';
        if (!made)
            return -1;
        if (!slash)
            return 0;
    }
}

/* The flags a read-only remount must keep: inside a user namespace the kernel refuses to drop locked ones. */
static unsigned long kept_flags(const char *path) {
    struct statvfs info;
    unsigned long flags = 0;
    if (statvfs(path, &info) != 0)
        return 0;
    if (info.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (info.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (info.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (info.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (info.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (info.f_flag & ST_RELATIME) flags |= MS_RELATIME;
    return flags;
}

static int make_read_only(const char *path) {
    return mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(path), NULL);
}

/* The host's top-level entries, but /tmp and /workspace, bound into the new root (symlinks copied). */
static int bind_host_root(void) {
    DIR *top = opendir("/");
    if (top == NULL)
        return failed("cannot list", "/");
    struct dirent *entry;
    int result = 0;
    while (result == 0 && (entry = readdir(top)) != NULL) {
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, "tmp") == 0
            || strcmp(name, "workspace") == 0)
            continue;
        char source[512], target[512], link[4096];
        struct stat info;
        snprintf(source, sizeof source, "/%s", name);
        snprintf(target, sizeof target, NEW_ROOT "/%s", name);
        if (lstat(source, &info) != 0)
            continue;  /* gone meanwhile */
        if (S_ISLNK(info.st_mode)) {
            ssize_t length = readlink(source, link, sizeof link - 1);
            if (length < 0)
                continue;
            link[length] = 0;
            if (symlink(link, target) != 0)
                result = failed("cannot copy the link", source);
        } else if (S_ISDIR(info.st_mode)) {
            if (mkdir(target, 0755) != 0 || mount(source, target, NULL, MS_BIND | MS_REC, NULL) != 0)
                result = failed("cannot bind", source);
        } else if (S_ISREG(info.st_mode)) {
            int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0 || close(fd) != 0 || mount(source, target, NULL, MS_BIND, NULL) != 0)
                result = failed("cannot bind", source);
        }
    }
    closedir(top);
    return result;
}

/* Makes this process's mount namespace the plan's (called in the child, before exec). */
static int enter_namespace(struct mount_plan *plan) {
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (uid == 0) {
        if (unshare(CLONE_NEWNS) != 0)
            return failed("cannot make a mount namespace (unshare CLONE_NEWNS; is CAP_SYS_ADMIN missing?)", NULL);
    } else {
        char map[64];
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
            return failed("cannot make a user namespace (unshare CLONE_NEWUSER; are unprivileged user namespaces "
                          "disabled here?)", NULL);
        /* The runner's own ids map onto themselves: files keep their owners, nothing gains a privilege outside. */
        if (write_text("/proc/self/setgroups", "deny") != 0 && errno != ENOENT)
            return failed("cannot write", "/proc/self/setgroups");
        snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
        if (write_text("/proc/self/uid_map", map) != 0)
            return failed("cannot write", "/proc/self/uid_map");
        snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
        if (write_text("/proc/self/gid_map", map) != 0)
            return failed("cannot write", "/proc/self/gid_map");
    }
    /* Nothing mounted from here on propagates back to the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return failed("cannot make the mounts private", NULL);
    /* Sources are opened now (in the new namespace, whose mounts they must belong to) and bound from their fds
     * later: a source may lie under the /tmp about to be hidden. */
    for (int i = 0; i < plan->count; i++) {
        plan->mounts[i].fd = open(plan->mounts[i].source, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (plan->mounts[i].fd < 0)
            return failed("cannot open", plan->mounts[i].source);
    }
    if (mount("host-runner", NEW_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0)
        return failed("cannot mount a tmpfs on", NEW_ROOT);
    if (bind_host_root() != 0)
        return -1;
    if (mkdir(NEW_ROOT "/tmp", 0755) != 0
        || mount("tmp", NEW_ROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
        return failed("cannot make a private", "/tmp");
    if (mkdir(NEW_ROOT "/workspace", 0755) != 0)
        return failed("cannot make", "/workspace");
    for (int i = 0; i < plan->count; i++) {
        char target[1100], source[64];
        snprintf(target, sizeof target, NEW_ROOT "%s", plan->mounts[i].target);
        snprintf(source, sizeof source, "/proc/self/fd/%d", plan->mounts[i].fd);
        int read_only = plan->mounts[i].read_only;
        if (make_directories(target) != 0)
            return failed("cannot make", plan->mounts[i].target);
        /* read-only directories are bound without what is mounted below them: a recursive bind would stay
         * writable underneath */
        if (mount(source, target, NULL, MS_BIND | (read_only ? 0 : MS_REC), NULL) != 0)
            return failed("cannot bind", plan->mounts[i].source);
        if (read_only && make_read_only(target) != 0)
            return failed("cannot make read-only", plan->mounts[i].target);
        close(plan->mounts[i].fd);
    }
    /* The root itself read-only, as in a container: the task cannot add top-level entries. */
    if (make_read_only(NEW_ROOT) != 0)
        return failed("cannot make the new root read-only", NULL);
    if (chdir(NEW_ROOT) != 0 || syscall(SYS_pivot_root, ".", ".") != 0)
        return failed("cannot switch to the new root (pivot_root)", NULL);
    if (umount2(".", MNT_DETACH) != 0)  /* the old root, stacked on the new one by pivot_root(".", ".") */
        return failed("cannot detach the old root", NULL);
    if (chdir(plan->cwd ? plan->cwd : "/") != 0)
        return failed("cannot enter", plan->cwd);
    return 0;
}

/* Like posix_spawnp, but the child enters the plan's namespace first; returns 0, or the child's exit code with
 * the reason in `problem` (125: stopped before it started; 127: could not set up or exec). */
static int spawn_in_namespace(pid_t *pid, char **command, struct mount_plan *plan) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        failed("cannot make a pipe", NULL);
        return CANNOT_START;
    }
    pid_t child = fork();
    if (child < 0) {
        failed("cannot fork", NULL);
        close(report[0]);
        close(report[1]);
        return CANNOT_START;
    }
    if (child == 0) {
        int code = CANNOT_START;
        close(report[0]);
        if (enter_namespace(plan) == 0) {
            if (stopped) {  /* noted by this copy of the handler, which exec would have dropped */
                snprintf(problem, sizeof problem, "not started: stopped before the command started");
                code = NOT_STARTED;
            } else {
                execvp(command[0], command);
                snprintf(problem, sizeof problem, "cannot start '%s': %s", command[0], strerror(errno));
            }
        }
        ssize_t ignored = write(report[1], problem, strlen(problem));
        (void)ignored;
        _exit(code);
    }
    close(report[1]);
    ssize_t length;
    do
        length = read(report[0], problem, sizeof problem - 1);
    while (length < 0 && errno == EINTR);
    close(report[0]);
    if (length <= 0) {  /* exec closed the pipe: the command runs */
        *pid = child;
        return 0;
    }
    problem[length] = 0;
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : CANNOT_START;
}

/* `wrapper --check-namespace`: can this runner make the namespace at all? */
static int check_namespace(void) {
    struct mount_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.cwd = "/workspace";
    char *command[] = {"true", NULL};
    pid_t pid;
    stopped = 0;
    int failure = spawn_in_namespace(&pid, command, &plan);
    if (failure != 0) {
        fprintf(stderr, "%s\n", problem);
        return 1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "container paths: a command in the namespace did not run (status %d)\n", status);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--check-namespace") == 0)
        return check_namespace();
    int first = 4;
    struct mount_plan plan;
    int namespaced = argc > 4 && strcmp(argv[4], "--namespace") == 0;
    if (argc < 5 || (namespaced && parse_plan(argv, argc, &first, &plan) != 0)) {
        fputs("usage: wrapper STATUS_FILE GO_FD GRACE [--namespace PLAN... --] COMMAND...\n", stderr);
        return 2;
    }
    const char *status_path = argv[1];
    int go_fd = atoi(argv[2]);
    double grace = atof(argv[3]);
    char **command = argv + first;

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = note;  /* a handler, not SIG_IGN: the command must not inherit "ignored" */
    /* no SA_RESTART: a stop interrupts the read below, and the wrapper exits without running anything */
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);

    char go = 0;
    ssize_t got;
    do
        got = read(go_fd, &go, 1);
    while (got < 0 && errno == EINTR && !stopped);
    close(go_fd);
    if (got != 1 || go != 'g' || stopped)
        return NOT_STARTED;

    char launched[4096];
    const char *slash = strrchr(status_path, '/');
    int directory_length = slash ? (int)(slash - status_path) : 1;
    const char *directory = slash ? status_path : ".";
    int fd = -1;
    if (snprintf(launched, sizeof launched, "%.*s/launched", directory_length, directory) < (int)sizeof launched)
        fd = open(launched, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* Fail closed: without it a restarted runner could not tell the command ran (it would run it twice). */
        char message[256];
        snprintf(message, sizeof message, "not started: cannot create its launched file: %s", strerror(errno));
        record(status_path, NOT_STARTED, 0, message);
        return NOT_STARTED;
    }
    close(fd);

    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);  /* orphaned descendants become ours (step 4) */
    if (stopped)
        return NOT_STARTED;

    pid_t pid;
    if (namespaced) {
        int code = spawn_in_namespace(&pid, command, &plan);
        if (code != 0) {
            fprintf(stderr, "host-runner: %s\n", problem);
            fflush(stderr);
            record(status_path, code, 0, problem);
            return code;
        }
    }
    int failure = namespaced ? 0 : posix_spawnp(&pid, command[0], NULL, NULL, command, environ);
    if (failure != 0) {
        /* The same words as wrapper.py (which quotes with Python's repr). */
        char message[4096];
        snprintf(message, sizeof message, "cannot start '%s': %s", command[0], strerror(failure));
        fprintf(stderr, "host-runner: %s\n", message);
        fflush(stderr);
        record(status_path, CANNOT_START, 0, message);
        return CANNOT_START;
    }

    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            record(status_path, CANNOT_START, 0, "lost track of the command (waitpid failed)");
            return CANNOT_START;
        }
    }
    int code;
    if (WIFSIGNALED(status)) {
        int signum = WTERMSIG(status);
        code = 128 + signum;
        record(status_path, code, signum, NULL);
    } else {
        code = WEXITSTATUS(status);
        record(status_path, code, 0, NULL);
    }
    stop_escaped(grace);
    return code;
}
