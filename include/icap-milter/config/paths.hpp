// NAME
//   paths.hpp - the installation paths chosen by ./configure
// SUMMARY
//   The default config file, the run directory (socket, pid file) and the
//   state directory (a suggested quarantine) follow configure's
//   sysconfdir, runstatedir and localstatedir; src/config/paths.cpp is
//   built with them (-DICAPM_SYSCONFDIR=...). The shipped docs name them
//   as @sysconfdir@, @runstatedir@ and @localstatedir@, which the build
//   substitutes when it makes the man pages and the sample config;
//   templated() turns the built-in values back into those placeholders,
//   so docs and golden files compare the same on every build.
#pragma once

#include <string>
#include <string_view>

namespace icapm::paths {

// config_file - SYSCONFDIR/icap-milter/icap-milter.conf, read when no -c is given.
std::string config_file();

// run_directory - RUNSTATEDIR/icap-milter: the default socket and pid file live here.
std::string run_directory();

// state_directory - LOCALSTATEDIR/lib/icap-milter: where a quarantine store belongs.
std::string state_directory();

// templated - text with each built-in directory above replaced by its
// placeholder form ("@runstatedir@/icap-milter", ...).
std::string templated(std::string_view text);

// substituted - the inverse: each placeholder replaced by its built-in
// directory, as the build does for the man pages and the sample config.
std::string substituted(std::string_view text);

} // namespace icapm::paths
