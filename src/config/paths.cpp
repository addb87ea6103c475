// NAME
//   paths.cpp - the installation paths chosen by ./configure
// SUMMARY
//   The only file built with configure's directories (Makefile.am passes
//   them as -DICAPM_SYSCONFDIR, -DICAPM_RUNSTATEDIR, -DICAPM_LOCALSTATEDIR),
//   so no other file carries a path of its own.
#include "icap-milter/config/paths.hpp"

#if !defined(ICAPM_SYSCONFDIR) || !defined(ICAPM_RUNSTATEDIR) || !defined(ICAPM_LOCALSTATEDIR)
#error "build with -DICAPM_SYSCONFDIR, -DICAPM_RUNSTATEDIR and -DICAPM_LOCALSTATEDIR (see Makefile.am)"
#endif

namespace icapm::paths {
namespace {

constexpr std::string_view kSysconfdir = ICAPM_SYSCONFDIR;
constexpr std::string_view kRunstatedir = ICAPM_RUNSTATEDIR;
constexpr std::string_view kLocalstatedir = ICAPM_LOCALSTATEDIR;

// replace_all - every occurrence of from in text replaced by to.
void replace_all(std::string& text, const std::string& from, const std::string& to) {
    if (from.empty()) return;
    for (std::size_t p = 0; (p = text.find(from, p)) != std::string::npos; p += to.size())
        text.replace(p, from.size(), to);
}

} // namespace

std::string config_file() { return std::string(kSysconfdir) + "/icap-milter/icap-milter.conf"; }

std::string run_directory() { return std::string(kRunstatedir) + "/icap-milter"; }

std::string state_directory() { return std::string(kLocalstatedir) + "/lib/icap-milter"; }

std::string templated(std::string_view text) {
    std::string out(text);
    replace_all(out, run_directory(), "@runstatedir@/icap-milter");
    replace_all(out, state_directory(), "@localstatedir@/lib/icap-milter");
    replace_all(out, std::string(kSysconfdir) + "/icap-milter", "@sysconfdir@/icap-milter");
    return out;
}

std::string substituted(std::string_view text) {
    std::string out(text);
    replace_all(out, "@runstatedir@", std::string(kRunstatedir));
    replace_all(out, "@localstatedir@", std::string(kLocalstatedir));
    replace_all(out, "@sysconfdir@", std::string(kSysconfdir));
    return out;
}

} // namespace icapm::paths
