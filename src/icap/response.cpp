// NAME
//   response.cpp - incremental ICAP response parser
// SUMMARY
//   A byte-driven state machine over one ICAP response (or a 100 Continue
//   and then the final response). The body is never stored: each chunk
//   is hashed and counted, so a server echoing a large file costs no
//   memory. Lines may end in CRLF or a bare LF.
// DIAGNOSTICS
//   Every violation (bad status line, header without a colon, too many or
//   too long header lines, bad Encapsulated offsets, chunk sizes of more
//   than 16 hex digits or beyond the limits, data after a chunk) sets
//   State::Error with a one-line reason. The parser never throws on input.
#include "icap-milter/icap/response.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace icapm {

namespace {

// is_token_char - RFC 7230 tchar, the only bytes allowed in a header name.
bool is_token_char(unsigned char c) noexcept {
    if (c >= '0' && c <= '9') return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// hex_value - value of one hex digit, or -1.
int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// parse_status_code - three digits at s[0..2] followed by end or a space.
int parse_status_code(std::string_view s) noexcept {
    if (s.size() < 3) return -1;
    int code = 0;
    for (int i = 0; i < 3; ++i) {
        if (s[i] < '0' || s[i] > '9') return -1;
        code = code * 10 + (s[i] - '0');
    }
    if (s.size() > 3 && s[3] != ' ') return -1;
    return code < 100 ? -1 : code;
}

} // namespace

// find - first header of that name.
const HeaderField* Headers::find(std::string_view name) const noexcept {
    for (const auto& f : fields_)
        if (iequals(f.name, name)) return &f;
    return nullptr;
}

// find_all - all headers of that name.
std::vector<const HeaderField*> Headers::find_all(std::string_view name) const {
    std::vector<const HeaderField*> out;
    for (const auto& f : fields_)
        if (iequals(f.name, name)) out.push_back(&f);
    return out;
}

// has_token - e.g. has_token("Connection", "close") over all such headers.
bool Headers::has_token(std::string_view name, std::string_view token) const {
    for (const auto* f : find_all(name)) {
        std::string_view v = f->value;
        while (!v.empty()) {
            auto comma = v.find(',');
            if (iequals(trim(v.substr(0, comma)), token)) return true;
            if (comma == std::string_view::npos) break;
            v.remove_prefix(comma + 1);
        }
    }
    return false;
}

// add_line - one physical header line; a line starting with SP or HT
// continues the previous field (RFC 7230 obs-fold) and is unfolded.
bool Headers::add_line(std::string_view line, std::string* error) {
    for (char c : line) {
        if (c == '\0' || c == '\r') {
            *error = "control byte in header line";
            return false;
        }
    }
    if (line.empty()) {
        *error = "empty header line";
        return false;
    }
    if (line.front() == ' ' || line.front() == '\t') {
        if (fields_.empty()) {
            *error = "continuation line before any header";
            return false;
        }
        auto part = trim(line);
        HeaderField& f = fields_.back();
        if (!part.empty()) {
            if (!f.value.empty()) f.value.push_back(' ');
            f.value.append(part);
        }
        f.lines.emplace_back(part);
        return true;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
        *error = "header line without a colon";
        return false;
    }
    auto name = line.substr(0, colon);
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
            return is_token_char(static_cast<unsigned char>(c));
        })) {
        *error = "invalid header name";
        return false;
    }
    auto value = trim(line.substr(colon + 1));
    fields_.push_back(HeaderField{std::string(name), std::string(value), {std::string(value)}});
    return true;
}

// body_offset - offset of the body entity, i.e. total header section length.
std::size_t Encapsulated::body_offset() const noexcept {
    if (res_body) return *res_body;
    if (req_body) return *req_body;
    if (opt_body) return *opt_body;
    return null_body.value_or(0);
}

// parse_encapsulated - strict: known names, no repeats, header sections
// before exactly one body entity, offsets starting at 0 and increasing.
std::optional<Encapsulated> parse_encapsulated(std::string_view value, std::size_t max_offset,
                                               std::string* error) {
    Encapsulated e;
    bool have_body = false;
    bool first = true;
    std::size_t last = 0;
    while (true) {
        auto comma = value.find(',');
        auto item = trim(value.substr(0, comma));
        auto eq = item.find('=');
        if (item.empty() || eq == std::string_view::npos) {
            *error = "malformed Encapsulated entry";
            return std::nullopt;
        }
        auto name = trim(item.substr(0, eq));
        auto num = trim(item.substr(eq + 1));
        if (num.empty() || num.size() > 9 ||
            !std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            *error = "bad Encapsulated offset";
            return std::nullopt;
        }
        std::size_t off = 0;
        for (char c : num) off = off * 10 + static_cast<std::size_t>(c - '0');
        if (off > max_offset) {
            *error = fmt::format("Encapsulated offset {} beyond limit {}", off, max_offset);
            return std::nullopt;
        }
        if (have_body) {
            *error = "Encapsulated entry after the body entity";
            return std::nullopt;
        }
        if (first ? off != 0 : off <= last) {
            *error = "Encapsulated offsets not increasing from 0";
            return std::nullopt;
        }
        std::optional<std::size_t>* slot = nullptr;
        bool is_body = false;
        if (iequals(name, "req-hdr")) {
            slot = &e.req_hdr;
            if (e.res_hdr) slot = nullptr; // req-hdr must precede res-hdr
        } else if (iequals(name, "res-hdr")) {
            slot = &e.res_hdr;
        } else if (iequals(name, "req-body")) {
            slot = &e.req_body, is_body = true;
        } else if (iequals(name, "res-body")) {
            slot = &e.res_body, is_body = true;
        } else if (iequals(name, "null-body")) {
            slot = &e.null_body, is_body = true;
        } else if (iequals(name, "opt-body")) {
            slot = &e.opt_body, is_body = true;
        }
        if (!slot || slot->has_value()) {
            *error = "unknown, repeated or misplaced Encapsulated entry";
            return std::nullopt;
        }
        *slot = off;
        have_body = is_body;
        first = false;
        last = off;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    if (!have_body) {
        *error = "Encapsulated has no body entity";
        return std::nullopt;
    }
    return e;
}

// ResponseParser - ready for the first byte of a response.
ResponseParser::ResponseParser(ParserLimits limits) : lim_(limits) {}

// fail - enter the error state once, keeping the first reason.
void ResponseParser::fail(std::string why) {
    if (state_ == State::Error) return;
    state_ = State::Error;
    error_ = std::move(why);
}

// in_headers - started a response but not yet through its header part.
bool ResponseParser::in_headers() const noexcept {
    if (state_ != State::NeedMore) return false;
    return (phase_ == Phase::Status && !line_.empty()) || phase_ == Phase::Headers ||
           phase_ == Phase::Encap;
}

// take_line - gather bytes up to '\n' into line_, at most limit bytes in
// total (terminator included). True when line_ holds a whole line, which
// is returned without its CRLF or LF.
bool ResponseParser::take_line(std::string_view data, std::size_t& pos, std::size_t limit,
                               const char* what) {
    auto nl = data.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? data.size() : nl + 1;
    std::size_t n = end - pos;
    if (line_.size() + n > limit) {
        fail(fmt::format("{} too long (limit {} bytes)", what, limit));
        return false;
    }
    line_.append(data.substr(pos, n));
    pos = end;
    if (nl == std::string_view::npos) return false;
    line_raw_ = line_.size();
    line_.pop_back();
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    return true;
}

// start_response - forget the previous (100 Continue) response.
void ResponseParser::start_response() {
    bool cont = resp_.after_continue;
    resp_ = IcapResponse{};
    resp_.after_continue = cont;
    header_bytes_ = 0;
    header_lines_ = 0;
    line_.clear();
    encap_.clear();
    phase_ = Phase::Status;
}

// on_status_line - "ICAP/1.0 NNN reason", nothing else.
void ResponseParser::on_status_line() {
    std::string_view l = line_;
    constexpr std::string_view prefix = "ICAP/1.0 ";
    int code = l.substr(0, prefix.size()) == prefix ? parse_status_code(l.substr(prefix.size())) : -1;
    if (code < 0) {
        fail("malformed ICAP status line");
        return;
    }
    resp_.status = code;
    auto reason = l.size() > prefix.size() + 3 ? l.substr(prefix.size() + 4) : std::string_view{};
    resp_.reason = std::string(trim(reason.substr(0, 128)));
    phase_ = Phase::Headers;
}

// on_header_line - one ICAP header line, or the blank line ending them.
void ResponseParser::on_header_line() {
    if (line_.empty()) {
        on_headers_end();
        return;
    }
    if (++header_lines_ > lim_.max_header_lines) {
        fail(fmt::format("more than {} ICAP header lines", lim_.max_header_lines));
        return;
    }
    std::string err;
    if (!resp_.headers.add_line(line_, &err)) fail("ICAP headers: " + err);
}

// on_headers_end - decide what follows the ICAP headers.
void ResponseParser::on_headers_end() {
    if (resp_.status == 100) {
        // Stop here: the caller sends the rest of the body, then resume()s.
        resp_.after_continue = true;
        state_ = State::Continue;
        return;
    }
    resp_.connection_close = resp_.headers.has_token("Connection", "close");
    auto encs = resp_.headers.find_all("Encapsulated");
    if (encs.size() > 1) {
        fail("more than one Encapsulated header");
        return;
    }
    if (encs.empty()) {
        // c-icap omits it on 204 and on errors: no body follows.
        resp_.body_sha256 = sha_.finish();
        phase_ = Phase::End;
        state_ = State::Done;
        return;
    }
    std::string err;
    resp_.encapsulated = parse_encapsulated(encs.front()->value, lim_.max_encap_bytes, &err);
    if (!resp_.encapsulated) {
        fail(err);
        return;
    }
    encap_need_ = resp_.encapsulated->body_offset();
    encap_.clear();
    if (encap_need_ > 0)
        phase_ = Phase::Encap;
    else
        on_encap_sections();
}

// on_encap_sections - parse the encapsulated HTTP response header, if any.
void ResponseParser::on_encap_sections() {
    const Encapsulated& e = *resp_.encapsulated;
    if (e.res_hdr) {
        std::string_view sec = std::string_view(encap_).substr(*e.res_hdr, e.body_offset() - *e.res_hdr);
        bool first = true, ended = false;
        std::size_t lines = 0;
        while (!sec.empty()) {
            auto nl = sec.find('\n');
            if (nl == std::string_view::npos) break;
            auto line = sec.substr(0, nl);
            sec.remove_prefix(nl + 1);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (first) {
                first = false;
                // "HTTP/1.x NNN reason"
                if (line.size() < 9 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ' ||
                    (line[7] != '0' && line[7] != '1') || parse_status_code(line.substr(9)) < 0) {
                    fail("malformed encapsulated HTTP status line");
                    return;
                }
                resp_.http_status = parse_status_code(line.substr(9));
                resp_.http_reason = line.size() > 13 ? std::string(trim(line.substr(13, 128))) : "";
                continue;
            }
            if (line.empty()) {
                ended = true;
                break;
            }
            if (++lines > lim_.max_header_lines) {
                fail("too many encapsulated HTTP header lines");
                return;
            }
            std::string err;
            if (!resp_.http_headers.add_line(line, &err)) {
                fail("encapsulated HTTP headers: " + err);
                return;
            }
        }
        if (first || !ended || !sec.empty()) {
            fail("encapsulated HTTP header does not fill its section");
            return;
        }
    }
    encap_.clear();
    encap_.shrink_to_fit();
    if (e.has_body()) {
        resp_.has_body = true;
        phase_ = Phase::ChunkSize;
    } else {
        resp_.body_sha256 = sha_.finish();
        phase_ = Phase::End;
        state_ = State::Done;
    }
}

// on_chunk_size_line - "<hex>[ ;ext]"; extensions (e.g. ieof) are ignored.
void ResponseParser::on_chunk_size_line() {
    std::string_view l = line_;
    std::size_t i = 0;
    std::uint64_t size = 0;
    while (i < l.size() && hex_value(l[i]) >= 0) {
        if (i == 16) {
            fail("chunk size longer than 16 hex digits");
            return;
        }
        size = (size << 4) | static_cast<unsigned>(hex_value(l[i]));
        ++i;
    }
    if (i == 0) {
        fail("malformed chunk size line");
        return;
    }
    auto rest = trim(l.substr(i));
    if (!rest.empty() && rest.front() != ';') {
        fail("malformed chunk size line");
        return;
    }
    if (size == 0) {
        trailer_bytes_ = 0;
        phase_ = Phase::Trailer;
        return;
    }
    if (size > lim_.max_chunk_size) {
        fail(fmt::format("chunk of {} bytes exceeds limit {}", size, lim_.max_chunk_size));
        return;
    }
    if (size > lim_.max_body - resp_.body_length) {
        fail(fmt::format("response body exceeds limit {}", lim_.max_body));
        return;
    }
    chunk_left_ = size;
    phase_ = Phase::ChunkData;
}

// feed - run the state machine over data.
ResponseParser::State ResponseParser::feed(std::string_view data) {
    seen_ += data.size();
    std::size_t pos = 0;
    while (pos < data.size()) {
        if (state_ == State::Error) return state_;
        if (state_ == State::Continue) {
            // Kept for resume(); the caller resumes at once, so this stays small.
            if (held_.size() + (data.size() - pos) > lim_.max_header_bytes + lim_.max_encap_bytes) {
                fail("too much data after 100 Continue");
                return state_;
            }
            held_.append(data.substr(pos));
            return state_;
        }
        if (state_ == State::Done) {
            excess_ += data.size() - pos;
            return state_;
        }
        switch (phase_) {
        case Phase::Status:
        case Phase::Headers: {
            // header_bytes_ counts whole lines; take_line bounds the current one.
            if (!take_line(data, pos, lim_.max_header_bytes - header_bytes_, "ICAP header block")) break;
            header_bytes_ += line_raw_;
            if (phase_ == Phase::Status)
                on_status_line();
            else
                on_header_line();
            line_.clear();
            break;
        }
        case Phase::Encap: {
            std::size_t n = std::min(encap_need_ - encap_.size(), data.size() - pos);
            encap_.append(data.substr(pos, n));
            pos += n;
            if (encap_.size() == encap_need_) on_encap_sections();
            break;
        }
        case Phase::ChunkSize:
            if (take_line(data, pos, lim_.max_chunk_line, "chunk size line")) {
                on_chunk_size_line();
                line_.clear();
            }
            break;
        case Phase::ChunkData: {
            std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_left_, data.size() - pos));
            sha_.update(data.substr(pos, n));
            resp_.body_length += n;
            chunk_left_ -= n;
            pos += n;
            if (chunk_left_ == 0) phase_ = Phase::ChunkEnd;
            break;
        }
        case Phase::ChunkEnd:
            if (take_line(data, pos, 2, "chunk data")) {
                if (!line_.empty()) fail("chunk data longer than its size");
                line_.clear();
                phase_ = Phase::ChunkSize;
            }
            break;
        case Phase::Trailer: {
            if (!take_line(data, pos, lim_.max_trailer_bytes - trailer_bytes_, "chunk trailer")) break;
            trailer_bytes_ += line_raw_;
            if (line_.empty()) {
                resp_.body_sha256 = sha_.finish();
                phase_ = Phase::End;
                state_ = State::Done;
            }
            line_.clear();
            break;
        }
        case Phase::End:
            state_ = State::Done;
            break;
        }
    }
    return state_;
}

// resume - parse the final response that follows a 100 Continue.
ResponseParser::State ResponseParser::resume() {
    if (state_ != State::Continue) return state_;
    state_ = State::NeedMore;
    start_response();
    std::string held = std::move(held_);
    held_.clear();
    seen_ -= held.size(); // feed() counts them again
    return feed(held);
}

} // namespace icapm
