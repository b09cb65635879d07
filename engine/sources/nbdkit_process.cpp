#include "engine/sources/nbdkit_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "engine/log.h"

extern char** environ;

namespace hydrate {
namespace {

constexpr auto kStopGrace = std::chrono::seconds(5);
constexpr auto kPollInterval = std::chrono::milliseconds(20);

// Options that choose where or how nbdkit listens, or that make it exit on its own.
bool takes_listener(const std::string& arg) {
  static const char* const kRefused[] = {"-U",
                                         "--unix",
                                         "-p",
                                         "--port",
                                         "-i",
                                         "--ipaddr",
                                         "-s",
                                         "--single",
                                         "--run",
                                         "--vsock",
                                         "--socket-activation",
                                         "-P",
                                         "--pidfile",
                                         "--exit-with-parent",
                                         "-f",
                                         "--foreground"};
  for (const char* refused : kRefused) {
    const std::string_view r(refused);
    if (arg == r) return true;
    if (r.starts_with("--") && arg.starts_with(std::string(r) + "=")) return true;
  }
  return false;
}

bool socket_accepts(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

bool is_credential(std::string_view key) {
  std::string lower(key);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"password", "secret", "token"})
    if (lower.find(word) != std::string::npos) return true;
  return false;
}

std::string join(const std::vector<std::string>& args) {
  return NbdkitProcess::describe(args);
}

}  // namespace

std::string NbdkitProcess::describe(const std::vector<std::string>& args) {
  std::string text;
  for (const auto& arg : args) {
    if (!text.empty()) text += ' ';
    const size_t eq = arg.find('=');
    if (eq != std::string::npos && !arg.starts_with("-") && is_credential(arg.substr(0, eq))) {
      text += arg.substr(0, eq + 1) + "***";
    } else {
      text += arg;
    }
  }
  return text;
}

NbdkitProcess::NbdkitProcess(std::vector<std::string> args, std::string directory)
    : args_(std::move(args)),
      socket_path_(directory + "/nbdkit.sock"),
      log_path_(directory + "/nbdkit.log") {}

NbdkitProcess::~NbdkitProcess() {
  stop();
}

IoResult NbdkitProcess::check_args(const std::vector<std::string>& args) {
  if (args.empty())
    return IoResult::failure(EINVAL, "nbdkit source: no arguments; give at least a plugin name");
  for (const auto& arg : args) {
    if (takes_listener(arg))
      return IoResult::failure(
          EINVAL, "nbdkit source [" + join(args) + "]: argument '" + arg +
                      "' is not allowed: hydrate runs nbdkit on its own private socket");
  }
  return IoResult::success();
}

IoResult NbdkitProcess::ensure_running() {
  std::lock_guard lock(mutex_);
  if (running_locked()) return IoResult::success();
  if (stopped_) return IoResult::failure(ESHUTDOWN, "nbdkit [" + join(args_) + "] was stopped");
  if (starts_ > 0) {
    log::warn("source.nbdkit_restart",
              {{"args", join(args_)}, {"previous", exit_description_locked()}});
  }
  return spawn_locked();
}

bool NbdkitProcess::running_locked() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  exited_ = true;
  exit_status_ = r == pid_ ? status : 0;
  pid_ = -1;
  return false;
}

IoResult NbdkitProcess::spawn_locked() {
  // nbdkit refuses to start on a socket path that exists (a previous instance's leftover).
  ::unlink(socket_path_.c_str());

  std::vector<std::string> argv_text = {"nbdkit", "-U", socket_path_, "-f", "--exit-with-parent"};
  argv_text.insert(argv_text.end(), args_.begin(), args_.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);

  // The child starts with default signal handling and an empty mask whatever this process
  // set up (a server blocks SIGTERM to sigwait for it), in its own process group so a
  // terminal's ^C reaches hydrate, which then stops nbdkit itself.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGUSR1}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, "nbdkit", &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0)
    return IoResult::failure(rc, "cannot start nbdkit [" + join(args_) + "]: " + std::strerror(rc));
  pid_ = pid;
  exited_ = false;
  ++starts_;
  log::info("source.nbdkit_started",
            {{"pid", static_cast<int64_t>(pid)}, {"args", join(args_)}, {"socket", socket_path_}});
  return IoResult::success();
}

asio::awaitable<IoResult> NbdkitProcess::wait_listening(std::chrono::milliseconds timeout) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (!running_locked())
        co_return IoResult::failure(EIO,
                                    "nbdkit [" + join(args_) + "] " + exit_description_locked() +
                                        " before its socket accepted connections" + log_tail());
    }
    if (socket_accepts(socket_path_)) co_return IoResult::success();
    if (std::chrono::steady_clock::now() >= deadline)
      co_return IoResult::failure(
          ETIMEDOUT, "nbdkit [" + join(args_) + "] did not listen on " + socket_path_ + " within " +
                         std::to_string(timeout.count()) + " ms" + log_tail());
    std::error_code ec;
    timer.expires_after(kPollInterval);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void NbdkitProcess::stop() {
  std::lock_guard lock(mutex_);
  stopped_ = true;
  if (!running_locked()) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
  while (running_locked()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::unlink(socket_path_.c_str());
}

bool NbdkitProcess::running() {
  std::lock_guard lock(mutex_);
  return running_locked();
}

pid_t NbdkitProcess::pid() const {
  std::lock_guard lock(mutex_);
  return pid_;
}

unsigned NbdkitProcess::starts() const {
  std::lock_guard lock(mutex_);
  return starts_;
}

std::string NbdkitProcess::exit_description_locked() const {
  if (!exited_) return "is running";
  if (WIFEXITED(exit_status_))
    return "exited with status " + std::to_string(WEXITSTATUS(exit_status_));
  if (WIFSIGNALED(exit_status_))
    return std::string("was killed by signal ") + ::strsignal(WTERMSIG(exit_status_));
  return "exited";
}

// The last lines nbdkit wrote, so a plugin's own complaint reaches the user.
std::string NbdkitProcess::log_tail() const {
  std::ifstream in(log_path_);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    lines.push_back(line);
    if (lines.size() > 3) lines.erase(lines.begin());
  }
  if (lines.empty()) return "";
  std::string tail = "; nbdkit said: ";
  for (size_t i = 0; i < lines.size(); ++i) tail += (i ? " / " : "") + lines[i];
  return tail;
}

}  // namespace hydrate
