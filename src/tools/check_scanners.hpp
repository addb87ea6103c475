// NAME
//   check_scanners.hpp - icap-milter --check-scanners
// SUMMARY
//   OPTIONS to every configured scanner and, with ScannerSelfTest on, its
//   self-test (the EICAR canaries); one report block per server.
#pragma once

#include "icap-milter/config/config.hpp"

#include <cstdio>

namespace icapm {

// check_scanners - print each server's health, TLS details, ISTag,
// Preview, Max-Connections, round-trip time and self-test (each canary,
// trusted size, misses, c-icap fix) to out. Returns 0 when at least one
// server is usable (answers OPTIONS offering RESPMOD and, with the
// self-test on, detects plain EICAR), 1 when none is, 2 when the TLS
// settings cannot be loaded.
int check_scanners(const Config& config, std::FILE* out);

} // namespace icapm
