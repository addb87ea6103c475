// NAME
//   check_scanners.hpp - icap-milter --check-scanners
// SUMMARY
//   OPTIONS to every configured scanner, one report block per server.
#pragma once

#include "icap-milter/config/config.hpp"

#include <cstdio>

namespace icapm {

// check_scanners - print each server's health, TLS details, ISTag,
// Preview, Max-Connections and round-trip time to out. Returns 0 when
// at least one server is usable (answers OPTIONS offering RESPMOD), 1
// when none is, 2 when the TLS settings cannot be loaded.
int check_scanners(const Config& config, std::FILE* out);

} // namespace icapm
