// NAME
//   daemon.cpp - detach, milter socket, pid file and privilege drop
// SUMMARY
//   Postfix-style discipline: everything that needs root (the socket, its
//   ownership, the pid file) happens first, then the process becomes
//   User and never assumes root again.
// DIAGNOSTICS
//   Throws std::runtime_error naming the step and errno's text.
#include "icap-milter/milter/daemon.hpp"

#include "icap-milter/common/unique_fd.hpp"

#include <fcntl.h>
#include <grp.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace icapm {

namespace {

// sys_fail - throw with errno's text.
[[noreturn]] void sys_fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

// unix_path - the file of a unix:/local: socket spec, or "" for inet.
std::string unix_path(const std::string& spec) {
    if (spec.starts_with("unix:")) return spec.substr(5);
    if (spec.starts_with("local:")) return spec.substr(6);
    if (spec.starts_with("/")) return spec;
    return {};
}

} // namespace

// daemonize - classic double fork so we are no session leader.
void daemonize() {
    pid_t pid = fork();
    if (pid < 0) sys_fail("fork");
    if (pid > 0) _exit(0);
    if (setsid() < 0) sys_fail("setsid");
    pid = fork();
    if (pid < 0) sys_fail("fork");
    if (pid > 0) _exit(0);
    if (chdir("/") != 0) sys_fail("chdir /");
    UniqueFd null(open("/dev/null", O_RDWR));
    if (!null) sys_fail("open /dev/null");
    for (int fd : {0, 1, 2})
        if (dup2(null.get(), fd) < 0) sys_fail("dup2");
}

// set_listener_nodelay - Nagle on the milter socket meets delayed ACKs and
// stalls every reply ~40 ms; accepted sockets inherit TCP_NODELAY on Linux.
int set_listener_nodelay() {
    int changed = 0;
    const int max_fd = static_cast<int>(sysconf(_SC_OPEN_MAX) > 4096 ? 4096 : sysconf(_SC_OPEN_MAX));
    for (int fd = 3; fd < max_fd; ++fd) {
        int listening = 0, domain = 0;
        socklen_t len = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
        len = sizeof domain;
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) continue;
        if (domain != AF_INET && domain != AF_INET6) continue;
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) ++changed;
    }
    return changed;
}

// open_milter_socket - create the listening socket while still privileged.
void open_milter_socket(const Config& config) {
    std::string spec = config.socket;
    if (spec.starts_with("/")) spec = "unix:" + spec;
    if (smfi_setconn(spec.data()) != MI_SUCCESS) throw std::runtime_error("smfi_setconn " + spec + " failed");
    if (smfi_settimeout(static_cast<int>(config.milter_timeout)) != MI_SUCCESS)
        throw std::runtime_error("smfi_settimeout failed");
    if (smfi_opensocket(true) != MI_SUCCESS)
        throw std::runtime_error("cannot open milter socket " + spec + " (in use, or directory missing?)");
    const std::string path = unix_path(config.socket);
    if (path.empty()) {
        const int n = set_listener_nodelay();
        spdlog::debug("TCP_NODELAY set on {} listening socket(s)", n);
        return;
    }
    if (chmod(path.c_str(), config.socket_mode) != 0) sys_fail("chmod " + path);
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    if (!config.user.empty()) {
        const passwd* pw = getpwnam(config.user.c_str());
        if (!pw) throw std::runtime_error("unknown User " + config.user);
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    if (!config.socket_group.empty()) {
        const group* gr = getgrnam(config.socket_group.c_str());
        if (!gr) throw std::runtime_error("unknown SocketGroup " + config.socket_group);
        gid = gr->gr_gid;
    }
    if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) && chown(path.c_str(), uid, gid) != 0)
        sys_fail("chown " + path);
}

// PidFile - write "pid\n" (0644).
PidFile::PidFile(std::string path) : path_(std::move(path)) {
    if (path_.empty()) return;
    UniqueFd fd(open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) sys_fail("open pid file " + path_);
    const std::string text = std::to_string(getpid()) + "\n";
    if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        sys_fail("write pid file " + path_);
}

// ~PidFile - remove the file (may fail after the privilege drop: logged).
PidFile::~PidFile() {
    if (!path_.empty() && unlink(path_.c_str()) != 0 && errno != ENOENT)
        spdlog::warn("cannot remove pid file {}: {}", path_, std::strerror(errno));
}

// drop_privileges - setgroups, setgid, setuid; then prove it stuck.
void drop_privileges(const std::string& user) {
    if (user.empty()) {
        if (geteuid() == 0) spdlog::warn("running as root: set User to drop privileges");
        return;
    }
    const passwd* pw = getpwnam(user.c_str());
    if (!pw) throw std::runtime_error("unknown User " + user);
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    if (geteuid() != 0) {
        if (geteuid() != uid) throw std::runtime_error("not root, cannot become User " + user);
        return;
    }
    if (initgroups(user.c_str(), gid) != 0) sys_fail("initgroups " + user);
    if (setgid(gid) != 0) sys_fail("setgid");
    if (setuid(uid) != 0) sys_fail("setuid");
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
        throw std::runtime_error("privilege drop failed: root could be regained");
    spdlog::info("running as user {} (uid {}, gid {})", user, uid, gid);
}

} // namespace icapm
