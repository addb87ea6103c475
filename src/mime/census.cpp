// NAME
//   census.cpp - one cheap pass over a raw message, counting lines by shape
// SUMMARY
//   Lines are split at LF. A CR counts as "bare" when anything but the
//   LF ending its line follows it; a CR that ends a chunk is settled by
//   the next chunk. Only the first 12 bytes of a line are kept (enough
//   for "Content-Type"), so memory is constant whatever the line length.
#include "icap-milter/mime/census.hpp"

#include <algorithm>
#include <cstring>
#include <strings.h>

namespace icapm {

// feed - split the chunk at LFs and classify each piece.
void LineCensus::feed(std::string_view chunk) {
    const char* p = chunk.data();
    const char* end = p + chunk.size();
    while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        segment(p, nl ? nl : end, nl != nullptr);
        if (!nl) return;
        end_line(true);
        p = nl + 1;
    }
}

// finish - count an unterminated last line and hand out the counts.
Census LineCensus::finish() {
    if (len_ > 0) end_line(false);
    return c_;
}

// segment - part of one line; line_ends when a newline follows it.
void LineCensus::segment(const char* p, const char* e, bool line_ends) {
    std::size_t n = static_cast<std::size_t>(e - p);
    if (n > 0) {
        if (pending_cr_) inner_cr_ = true; // a CR followed by more than its LF
        // Each CR inside the piece; one followed by "--" starts a
        // delimiter line for a reader that ends lines at a bare CR.
        for (const char* cr = static_cast<const char*>(std::memchr(p, '\r', n)); cr && cr < e - 1;
             cr = static_cast<const char*>(std::memchr(cr + 1, '\r', static_cast<std::size_t>(e - cr - 1)))) {
            inner_cr_ = true;
            if (e - cr > 2 && cr[1] == '-' && cr[2] == '-') cr_delimiter_ = true;
        }
        pending_cr_ = e[-1] == '\r';
        if (!nul_ && std::memchr(p, '\0', n)) nul_ = true;
    }
    std::size_t take = std::min(n, sizeof head_ - hlen_);
    std::memcpy(head_ + hlen_, p, take);
    hlen_ += take;
    len_ += n;
    if (state_ != kName && state_ != kBlank) return;
    const char* colon = static_cast<const char*>(std::memchr(p, ':', n));
    if (!colon && line_ends) {
        state_ = kNo; // the common body line: no colon at all
        return;
    }
    for (const char* q = p; q < (colon ? colon : e) && state_ != kNo; ++q) step(*q);
    if (colon && state_ != kNo) state_ = name_len_ > 0 ? kHeader : kNo;
}

// step - one byte before the colon: field-name chars, then blanks.
void LineCensus::step(char ch) {
    auto c = static_cast<unsigned char>(ch);
    bool blank = c == ' ' || c == '\t';
    if (state_ == kName && c > 32 && c < 127 && ++name_len_ <= 998) return;
    if (blank && name_len_ > 0) {
        state_ = kBlank; // GMime also accepts "Name :"
        return;
    }
    state_ = kNo;
}

// end_line - count the finished line and start the next; lf says an LF
// ended it (not the end of the message).
void LineCensus::end_line(bool lf) {
    bool crlf = lf && pending_cr_;
    bool delimiter = hlen_ >= 2 && head_[0] == '-' && head_[1] == '-';
    if (crlf) ++c_.crlf_lines;
    if (delimiter) {
        ++c_.delimiters;
        if (lf && !crlf) ++c_.lf_delimiters;
        if (inner_cr_ || (!lf && pending_cr_)) ++c_.bare_cr_delimiters;
    } else if (cr_delimiter_) {
        ++c_.bare_cr_delimiters;
    } else if (hlen_ == sizeof head_ && (head_[0] | 0x20) == 'c' &&
               ::strncasecmp(head_, "content-type", sizeof head_) == 0) {
        ++c_.content_types;
    }
    if (state_ == kHeader) {
        ++c_.headers;
        if (inner_cr_ || (!lf && pending_cr_)) ++c_.bare_cr_headers;
        if (nul_) ++c_.nul_headers;
        std::uint64_t text = len_ - (crlf ? 1 : 0);
        if (text > 998 && hlen_ >= 8 && ::strncasecmp(head_, "content-", 8) == 0) ++c_.long_content_headers;
    }
    hlen_ = len_ = name_len_ = 0;
    state_ = kName;
    pending_cr_ = inner_cr_ = nul_ = cr_delimiter_ = false;
}

} // namespace icapm

namespace icapm {

namespace {
constexpr std::size_t kHead = 200;

// blank_text - only blanks (CR included, as it ends the line)?
bool blank_text(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}
} // namespace

// DelimiterLines - keep the boundaries that fit the kept line head.
DelimiterLines::DelimiterLines(const std::vector<std::string>& boundaries) {
    for (const auto& b : boundaries)
        if (!b.empty() && b.size() + 4 <= kHead &&
            std::find(boundaries_.begin(), boundaries_.end(), b) == boundaries_.end())
            boundaries_.push_back(b);
}

// feed - keep each line's head; past it only note non-blank bytes.
void DelimiterLines::feed(std::string_view chunk) {
    while (!chunk.empty()) {
        std::size_t nl = chunk.find('\n');
        std::string_view piece = chunk.substr(0, nl);
        std::size_t take = std::min(piece.size(), kHead - head_.size());
        head_.append(piece.substr(0, take));
        if (!more_text_ && take < piece.size() && !blank_text(piece.substr(take))) more_text_ = true;
        if (nl == std::string_view::npos) return;
        end_line();
        chunk.remove_prefix(nl + 1);
    }
}

// finish - the count, the last line included.
std::uint64_t DelimiterLines::finish() {
    if (!head_.empty()) end_line();
    return found_;
}

// end_line - "--" boundary, then blanks or "--" and blanks, is a
// delimiter for every reader; "--" boundary and anything else only for
// some.
void DelimiterLines::end_line() {
    if (head_.size() > 2 && head_[0] == '-' && head_[1] == '-') {
        std::string_view line(head_);
        for (const auto& b : boundaries_) {
            if (line.compare(2, b.size(), b) != 0) continue;
            std::string_view rest = line.substr(2 + b.size());
            if (rest.substr(0, 2) == "--") rest.remove_prefix(2);
            if (more_text_ || !blank_text(rest)) {
                ++found_;
                break;
            }
        }
    }
    head_.clear();
    more_text_ = false;
}

} // namespace icapm
