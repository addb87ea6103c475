// NAME
//   request.hpp - ICAP request writer (pure: builds bytes, no I/O)
// SUMMARY
//   OPTIONS and RESPMOD header blocks (RFC 3507) plus the chunk framing
//   helpers the session uses to stream a body. RESPMOD always carries
//   "Allow: 204" and never an ICAP Transfer-Encoding header; the body of
//   the encapsulated HTTP response is chunked by the caller.
// DIAGNOSTICS
//   None: every input is bounded or escaped, so building cannot fail.
#pragma once

#include "icap-milter/net/uri.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace icapm {

// Host name used in the synthetic "GET http://<host>/<file>" request line.
inline constexpr std::string_view kSyntheticHttpHost = "icap-milter";

// Longest filename (bytes, before escaping) put into the synthetic URL.
inline constexpr std::size_t kMaxUrlFilename = 255;

// Body terminators: the last chunk, with and without the preview "ieof".
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";
inline constexpr std::string_view kLastChunkIeof = "0; ieof\r\n\r\n";
inline constexpr std::string_view kChunkEnd = "\r\n";

// RespmodHead - what goes into one RESPMOD header block.
struct RespmodHead {
    std::string_view user_agent = "icap-milter";
    std::string_view filename;              // raw; escaped here
    std::uint64_t content_length = 0;       // size of the whole body
    std::optional<std::size_t> preview;     // bytes sent as preview, if any
};

// RespmodFrame - the header block and where its parts begin.
struct RespmodFrame {
    std::string bytes;        // ICAP head + HTTP request head + HTTP response head
    std::size_t icap_head = 0;   // length of the ICAP part (up to the blank line)
    std::size_t res_hdr = 0;     // Encapsulated res-hdr offset
    std::size_t res_body = 0;    // Encapsulated res-body offset
};

// icap_request_uri - "icap://host:port/service" (IPv6 literals bracketed).
std::string icap_request_uri(const IcapUri& uri);

// build_options_request - a complete OPTIONS request ("null-body=0").
std::string build_options_request(const IcapUri& uri, std::string_view user_agent);

// build_respmod_head - RESPMOD headers plus the encapsulated HTTP headers;
// the chunked body follows.
RespmodFrame build_respmod_head(const IcapUri& uri, const RespmodHead& head);

// url_encode_filename - percent-encode all but RFC 3986 unreserved bytes,
// after cutting to kMaxUrlFilename bytes; "unnamed" when empty.
std::string url_encode_filename(std::string_view filename);

// chunk_header - "<hex size>\r\n" for a chunk of n bytes (n > 0).
std::string chunk_header(std::size_t n);

// header_safe - value with CR, LF and other control bytes replaced, so a
// configured string can never inject a header line.
std::string header_safe(std::string_view value, std::size_t max_len = 256);

} // namespace icapm
