// Running a program as a child process for tests: separate stdout and stderr, optional stdin
// text, the exit status or the signal that ended it, and a hard deadline after which the child
// is killed (so a hang fails a test instead of blocking CI). POSIX only.
//
//   ProcessResult r = run_process({LUTRA_CLI_PATH, "info"});
//
// Interactive use (signals, input written while the child runs) goes through ChildProcess:
//   ChildProcess p({...}); p.write_stdin("hello\n");
//   p.pump_until([&] { return !p.out().empty(); }); p.send_signal(SIGINT); ...
#pragma once

#include "tests/test_data.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

extern char** environ;

struct ProcessOptions {
  // Written to the child's stdin, which is then closed; nullopt: stdin stays open (for
  // ChildProcess::write_stdin) or, for run_process, is closed at once.
  std::optional<std::string> stdin_text;
  // Variables set in the child on top of this process's environment...
  std::vector<std::pair<std::string, std::string>> set_env;
  // ...and variables removed from it (by default those that steer lutra, so tests are hermetic).
  std::vector<std::string> unset_env{"LUTRA_ISA", "LUTRA_MODEL"};
  // The child is killed (SIGKILL) when it has not ended this long after it started.
  std::chrono::milliseconds timeout{60000};
};

struct ProcessResult {
  std::string out, err;
  bool timed_out = false;  // killed at the deadline
  int exit_code = -1;      // when it exited
  int term_signal = 0;     // when a signal ended it
  bool exited() const { return term_signal == 0 && exit_code >= 0; }
};

class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv, ProcessOptions opts = {})
      : deadline_(std::chrono::steady_clock::now() + opts.timeout) {
    int in[2], out[2], err[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0 || ::pipe(err) != 0) throw std::runtime_error("pipe failed");
    for (int fd : {in[1], out[0], err[0]}) ::fcntl(fd, F_SETFD, FD_CLOEXEC);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
    for (int fd : {in[0], out[1], err[1]}) posix_spawn_file_actions_addclose(&fa, fd);
    // The child starts with default dispositions and nothing blocked, whatever the test runner
    // ignores (a shell's background job ignores SIGINT, for instance).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t defaults, none;
    sigemptyset(&defaults);
    for (int s : {SIGINT, SIGPIPE, SIGTERM, SIGQUIT}) sigaddset(&defaults, s);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    std::vector<std::string> env = environment(opts);
    std::vector<char*> envp, args;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (std::string& a : argv_copy) args.push_back(a.data());
    args.push_back(nullptr);
    int rc = ::posix_spawn(&pid_, args[0], &fa, &attr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    for (int fd : {in[0], out[1], err[1]}) ::close(fd);
    in_ = in[1];
    ::fcntl(in_, F_SETFL, ::fcntl(in_, F_GETFL) | O_NONBLOCK);  // write_stdin never blocks
    out_ = out[0];
    err_ = err[0];
    if (rc != 0) {
      close_all();
      throw std::runtime_error("cannot start '" + argv[0] + "': " + std::strerror(rc));
    }
    if (opts.stdin_text) {
      write_stdin(*opts.stdin_text);
      close_stdin();
    }
  }

  ~ChildProcess() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    close_all();
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& out() const { return result_.out; }
  const std::string& err() const { return result_.err; }

  // Writes all of `text` to the child's stdin while draining its output (so neither side can
  // block the other). A child that stopped reading (EPIPE) is not an error here: the rest is dropped.
  void write_stdin(std::string_view text) {
    while (!text.empty() && in_ >= 0 && !past_deadline()) {
      // A write to a closed pipe raises SIGPIPE: block it on this thread, take it back after.
      sigset_t pipe_set, old;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
      pollfd fds[3] = {{in_, POLLOUT, 0}, {out_, POLLIN, 0}, {err_, POLLIN, 0}};
      ssize_t n = 0;
      bool broken = false;
      if (::poll(fds, 3, 50) > 0) {
        drain(fds[1], out_, result_.out);
        drain(fds[2], err_, result_.err);
        if (fds[0].revents & (POLLOUT | POLLERR | POLLHUP)) {
          n = ::write(in_, text.data(), text.size());
          broken = n < 0 && errno != EAGAIN && errno != EINTR;  // EPIPE: it stopped reading
        }
      }
      if (broken) {
        timespec zero{0, 0};
        while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
        }
      }
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      if (broken) {
        close_stdin();
        return;
      }
      if (n > 0) text.remove_prefix(size_t(n));
    }
  }

  void close_stdin() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }

  bool send_signal(int sig) { return !reaped_ && ::kill(pid_, sig) == 0; }

  // Collects output until `done()` holds, the child has closed stdout and stderr, or the
  // deadline passes; returns done().
  bool pump_until(const std::function<bool()>& done) {
    while (!done() && (out_ >= 0 || err_ >= 0) && !past_deadline()) {
      pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
      if (::poll(fds, 2, 50) > 0) {
        drain(fds[0], out_, result_.out);
        drain(fds[1], err_, result_.err);
      }
    }
    return done();
  }

  // Closes stdin, reads everything, and reaps the child (killing it at the deadline).
  ProcessResult finish() {
    close_stdin();
    pump_until([] { return false; });
    int status = 0;
    for (;;) {
      pid_t w = ::waitpid(pid_, &status, WNOHANG);
      if (w == pid_) break;
      if (w < 0 && errno != EINTR) throw std::runtime_error("waitpid failed");
      if (past_deadline()) {
        result_.timed_out = true;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      ::usleep(2000);
    }
    reaped_ = true;
    if (WIFEXITED(status)) result_.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result_.term_signal = WTERMSIG(status);
    // What a killed child wrote last is still in the pipes.
    pump_until([] { return false; });
    close_all();
    return result_;
  }

 private:
  static std::vector<std::string> environment(const ProcessOptions& opts) {
    std::vector<std::string> env;
    auto overridden = [&](std::string_view entry) {
      std::string_view name = entry.substr(0, entry.find('='));
      for (const std::string& u : opts.unset_env)
        if (name == u) return true;
      for (const auto& [k, v] : opts.set_env)
        if (name == k) return true;
      return false;
    };
    for (char** e = environ; *e; ++e)
      if (!overridden(*e)) env.emplace_back(*e);
    for (const auto& [k, v] : opts.set_env) env.push_back(k + "=" + v);
    return env;
  }

  static void drain(const pollfd& p, int& fd, std::string& into) {
    if (fd < 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) return;
    char buf[65536];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      into.append(buf, size_t(n));
    } else if (n == 0 || errno != EINTR) {
      ::close(fd);
      fd = -1;
    }
  }

  bool past_deadline() const { return std::chrono::steady_clock::now() >= deadline_; }

  void close_all() {
    for (int* fd : {&in_, &out_, &err_})
      if (*fd >= 0) {
        ::close(*fd);
        *fd = -1;
      }
  }

  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  bool reaped_ = false;
  std::chrono::steady_clock::time_point deadline_;
  ProcessResult result_;
};

// Runs argv to the end (or the deadline) with `opts.stdin_text` as its whole input.
inline ProcessResult run_process(const std::vector<std::string>& argv, ProcessOptions opts = {}) {
  if (!opts.stdin_text) opts.stdin_text = "";
  ChildProcess p(argv, std::move(opts));
  return p.finish();
}


