// NAME
//   response.hpp - incremental ICAP response parser (pure, no I/O)
// SUMMARY
//   feed() takes bytes as they arrive and walks: status line, ICAP
//   headers (case-insensitive names, folded lines unfolded), the
//   Encapsulated header sections (HTTP status and headers), then the
//   chunked body, which is hashed and counted but never kept. A
//   "100 Continue" stops the parser until resume(). Every length and
//   count read from the network is bounded by ParserLimits.
// DIAGNOSTICS
//   Malformed or oversized input moves the parser to State::Error with a
//   reason in error(); the connection must then be dropped.
#pragma once

#include "icap-milter/common/ascii.hpp"

#include "icap-milter/common/sha256.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// HeaderField - one header after unfolding.
struct HeaderField {
    std::string name;                // as received
    std::string value;               // continuation lines joined by one space
    std::vector<std::string> lines;  // first-line value and each continuation, trimmed
};

// Headers - an ordered header list with case-insensitive lookup.
class Headers {
public:
    // find - first field called name, or nullptr.
    const HeaderField* find(std::string_view name) const noexcept;
    // find_all - every field called name, in order.
    std::vector<const HeaderField*> find_all(std::string_view name) const;
    // has_token - whether a comma-separated header lists token.
    bool has_token(std::string_view name, std::string_view token) const;
    const std::vector<HeaderField>& fields() const noexcept { return fields_; }
    void add(HeaderField f) { fields_.push_back(std::move(f)); }
    // add_line - one physical line; SP/HT-led lines continue the last field.
    // False (and *error) for a line that is not a valid header.
    bool add_line(std::string_view line, std::string* error);
    void clear() noexcept { fields_.clear(); }
    std::size_t size() const noexcept { return fields_.size(); }

private:
    std::vector<HeaderField> fields_;
};

// Encapsulated - the offsets of the Encapsulated header (RFC 3507 4.4.1).
struct Encapsulated {
    std::optional<std::size_t> req_hdr, res_hdr, req_body, res_body, null_body, opt_body;
    // body_offset - where the body entity starts (= length of the header sections).
    std::size_t body_offset() const noexcept;
    // has_body - a chunked body (req-body, res-body or opt-body) follows.
    bool has_body() const noexcept { return req_body || res_body || opt_body; }
};

// parse_encapsulated - validate "name=offset, ..."; nullopt + *error when malformed.
std::optional<Encapsulated> parse_encapsulated(std::string_view value, std::size_t max_offset,
                                               std::string* error);

// iequals (ASCII case-insensitive comparison) is in common/ascii.hpp.

// IcapResponse - everything kept from one final response.
struct IcapResponse {
    int status = 0;                  // ICAP status code
    std::string reason;              // reason phrase
    Headers headers;                 // ICAP headers
    bool after_continue = false;     // a 100 Continue came first
    std::optional<Encapsulated> encapsulated;
    int http_status = 0;             // encapsulated HTTP response status (0: none)
    std::string http_reason;
    Headers http_headers;            // encapsulated HTTP response headers
    bool has_body = false;           // a chunked body was present
    std::uint64_t body_length = 0;   // decoded body bytes
    Digest body_sha256{};            // SHA-256 of the decoded body
    bool connection_close = false;   // ICAP "Connection: close"
};

// ParserLimits - bounds on what a server may send.
struct ParserLimits {
    std::size_t max_header_bytes = 64 * 1024;   // status line + ICAP headers
    std::size_t max_header_lines = 200;         // physical lines, folds included
    std::size_t max_encap_bytes = 64 * 1024;    // encapsulated HTTP header sections
    std::size_t max_chunk_line = 1024;          // chunk-size line incl. extensions
    std::uint64_t max_chunk_size = 64ULL << 20; // one chunk
    std::uint64_t max_body = 4ULL << 30;        // all chunks of one response
    std::size_t max_trailer_bytes = 8 * 1024;   // trailer section after the last chunk
};

class ResponseParser {
public:
    enum class State { NeedMore, Continue, Done, Error };

    explicit ResponseParser(ParserLimits limits = {});

    // feed - consume all of data. Bytes after a 100 Continue are kept for
    // resume(); bytes after the final response are counted in excess().
    State feed(std::string_view data);
    // resume - leave State::Continue and parse the final response.
    State resume();

    State state() const noexcept { return state_; }
    const IcapResponse& response() const noexcept { return resp_; }
    const std::string& error() const noexcept { return error_; }
    // bytes_seen - every byte fed so far (0: the server said nothing yet).
    std::uint64_t bytes_seen() const noexcept { return seen_; }
    // excess - bytes received after the end of the final response.
    std::uint64_t excess() const noexcept { return excess_; }
    // in_headers - a response has started but its header part is incomplete.
    bool in_headers() const noexcept;

private:
    enum class Phase { Status, Headers, Encap, ChunkSize, ChunkData, ChunkEnd, Trailer, End };

    void fail(std::string why);
    bool take_line(std::string_view data, std::size_t& pos, std::size_t limit,
                   const char* what);
    void on_status_line();
    void on_header_line();
    void on_headers_end();
    void on_encap_sections();
    void on_chunk_size_line();
    void start_response();

    ParserLimits lim_;
    State state_ = State::NeedMore;
    Phase phase_ = Phase::Status;
    IcapResponse resp_;
    std::string error_;
    std::string line_;          // the line being assembled
    std::size_t line_raw_ = 0;  // bytes of the last whole line, terminator included
    std::size_t header_bytes_ = 0;
    std::size_t header_lines_ = 0;
    std::string encap_;         // encapsulated header sections
    std::size_t encap_need_ = 0;
    std::uint64_t chunk_left_ = 0;
    std::size_t trailer_bytes_ = 0;
    std::string held_;          // bytes received after a 100 Continue
    std::uint64_t seen_ = 0;
    std::uint64_t excess_ = 0;
    Sha256 sha_;
};

} // namespace icapm
