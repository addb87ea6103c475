// NAME
//   census.hpp - one cheap pass over a raw message, counting lines by shape
// SUMMARY
//   GMime builds an object of about 2 KB per MIME delimiter line and one
//   of about 450 bytes per header line, so the walker counts those lines
//   before it lets GMime near a message. The same pass notes the line
//   shapes that MIME readers split differently: a bare CR inside a
//   delimiter or header line, a delimiter ending in a bare LF among CRLF
//   lines, a NUL in a header line, a Content-* header line longer than
//   RFC 5322's 998 bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// Census - counts of line shapes in one raw message.
struct Census {
    std::uint64_t delimiters = 0;       // lines beginning with "--"
    std::uint64_t content_types = 0;    // lines beginning with "Content-Type"
    std::uint64_t headers = 0;          // lines shaped like "Name:" or "Name :"
    std::uint64_t crlf_lines = 0;       // lines ending in CR LF
    std::uint64_t lf_delimiters = 0;    // "--" lines ending in a bare LF
    std::uint64_t bare_cr_delimiters = 0; // "--" lines holding a bare CR, or lines holding CR "--"
    std::uint64_t bare_cr_headers = 0;  // header lines holding a CR not followed by LF
    std::uint64_t nul_headers = 0;      // header lines holding a NUL byte
    std::uint64_t long_content_headers = 0; // "Content-" header lines over 998 bytes
};

// LineCensus - classifies lines by how they start, chunk by chunk: a few
// memchr() calls per line, byte loops only over header names.
class LineCensus {
public:
    // feed - the next bytes of the message.
    void feed(std::string_view chunk);
    // finish - the counts, including an unterminated last line.
    Census finish();

private:
    enum State { kName, kBlank, kHeader, kNo };

    void segment(const char* p, const char* e, bool line_ends);
    void step(char ch);
    void end_line(bool lf);

    Census c_;
    char head_[12] = {};
    std::size_t hlen_ = 0;
    std::uint64_t len_ = 0;
    std::size_t name_len_ = 0;
    State state_ = kName;
    bool pending_cr_ = false; // the last byte seen so far on this line is a CR
    bool inner_cr_ = false;   // this line holds a CR that no LF follows
    bool nul_ = false;        // this line holds a NUL
    bool cr_delimiter_ = false; // this line holds a bare CR followed by "--"
};

} // namespace icapm

namespace icapm {

// DelimiterLines - after GMime has found the boundaries of a message,
// a second pass finds lines that begin with "--" and one of them but go
// on with more than blanks (or "--" and blanks): RFC 2046 readers that
// match the boundary as a line prefix take such a line as a delimiter,
// GMime does not. Postfix turns a stray CR into a space, so "--b<CR>
// Content-Type: ..." arrives this way.
class DelimiterLines {
public:
    // DelimiterLines - check against these boundaries (longer than 190
    // bytes are ignored: RFC 2046 allows 70).
    explicit DelimiterLines(const std::vector<std::string>& boundaries);
    // feed - the next bytes of the message.
    void feed(std::string_view chunk);
    // finish - lines found that a prefix-matching reader splits at.
    std::uint64_t finish();

private:
    void end_line();

    std::vector<std::string> boundaries_;
    std::string head_;        // the first kHead bytes of the current line
    bool more_text_ = false;  // a non-blank byte after those
    std::uint64_t found_ = 0;
};

} // namespace icapm
