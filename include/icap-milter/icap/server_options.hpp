// NAME
//   server_options.hpp - what an ICAP OPTIONS reply told us
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace icapm {

// ServerOptions - parsed OPTIONS response of one service.
struct ServerOptions {
    std::vector<std::string> methods;          // e.g. {"RESPMOD"}
    std::string istag;                         // without quotes
    std::optional<std::size_t> preview;        // Preview: N, if offered
    bool allow_204 = false;                    // Allow: 204 present
    std::chrono::seconds ttl{0};               // Options-TTL (0 = none given)
    std::optional<unsigned> max_connections;   // Max-Connections, if given
    std::string service;                       // Service: header text
    std::string version_info;                  // readable engine/definition version, if any
    // Transfer-* lists (file extensions) are recorded for the log only:
    // skipping items a server would ignore would let them through unscanned.
    std::string transfer_preview;              // Transfer-Preview
    std::string transfer_ignore;               // Transfer-Ignore
    std::string transfer_complete;             // Transfer-Complete
    bool supports(std::string_view method) const;
};

} // namespace icapm
