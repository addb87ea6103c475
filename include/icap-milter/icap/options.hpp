// NAME
//   options.hpp - parse an ICAP OPTIONS reply into ServerOptions
// DIAGNOSTICS
//   A non-200 reply means the service is unavailable: nullopt with the
//   status in *error. Header values are bounded and made printable.
#pragma once

#include "icap-milter/icap/response.hpp"
#include "icap-milter/icap/server_options.hpp"

#include <optional>
#include <string>

namespace icapm {

// Bounds applied to what OPTIONS may announce.
inline constexpr std::size_t kMaxIstag = 32;
inline constexpr std::size_t kMaxPreviewOffered = 1024 * 1024;
inline constexpr std::chrono::seconds kMaxOptionsTtl{30 * 24 * 3600};

// parse_server_options - Methods, ISTag, Preview, Allow, Options-TTL,
// Max-Connections, Service and readable version info.
std::optional<ServerOptions> parse_server_options(const IcapResponse& r, std::string* error);

// clean_istag - quotes stripped, printable, cut to kMaxIstag characters.
std::string clean_istag(std::string_view raw);

} // namespace icapm
