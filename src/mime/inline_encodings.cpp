// NAME
//   inline_encodings.cpp - decode uuencode, yEnc and BinHex blocks in text
// SUMMARY
//   A line-driven state machine over the decoded bytes of a text part.
//   In text it looks for block headers; inside a block it decodes line by
//   line (uuencode, yEnc) or character by character (BinHex 4.0: 6-bit
//   characters, then the 0x90 run-length code, then the header whose
//   data fork length says which bytes are the file).
// DESCRIPTION
//   Written from the format descriptions: uuencode (length character,
//   then groups of four 6-bit characters offset by 32), yEnc 1.3 (bytes
//   offset by 42, "=" escapes offset by a further 64), BinHex 4.0 (RFC
//   1741: the 64-character alphabet, RLE marker 0x90, header of name,
//   version, type, creator, flags, data and resource fork lengths, CRC).
//   Lines longer than kMaxLine are handed on in pieces; only the first
//   piece of a line can start or end a block. CRCs and declared sizes
//   are not checked: a damaged block gives the bytes a lenient decoder
//   would give. Runs are appended in O(1) per run, so a BinHex run-length
//   bomb costs time in the bytes kept (max_bytes), not in those claimed.
// DIAGNOSTICS
//   None: hostile input yields fewer or shorter blocks, never an error.
#include "icap-milter/mime/inline_encodings.hpp"

#include <algorithm>
#include <array>

namespace icapm {

namespace {

constexpr std::size_t kMaxLine = 64 * 1024;
constexpr unsigned kBinHexWaitLines = 64; // lines between the banner and ':'

// kBinHexAlphabet - the 64 characters of BinHex 4.0, in value order.
constexpr std::string_view kBinHexAlphabet =
    "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr";

// binhex_table - character to 6-bit value, -1 for anything else.
const std::array<signed char, 256>& binhex_table() {
    static const std::array<signed char, 256> t = [] {
        std::array<signed char, 256> a{};
        a.fill(-1);
        for (std::size_t i = 0; i < kBinHexAlphabet.size(); ++i)
            a[static_cast<unsigned char>(kBinHexAlphabet[i])] = static_cast<signed char>(i);
        return a;
    }();
    return t;
}

// starts_with - prefix test.
bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// rtrim - drop trailing blanks and CR.
std::string_view rtrim(std::string_view s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// uu_begin - is l a uuencode header "begin MODE name"? name is set.
bool uu_begin(std::string_view l, std::string_view& name) {
    if (!starts_with(l, "begin ")) return false;
    std::size_t i = 6, digits = 0;
    while (i < l.size() && l[i] >= '0' && l[i] <= '7' && digits < 5) ++i, ++digits;
    if (digits < 1 || digits > 4) return false;
    if (i < l.size() && l[i] != ' ') return false;
    name = i < l.size() ? l.substr(i + 1) : std::string_view();
    return true;
}

} // namespace

// inline_kind_name - the encoding in words.
const char* inline_kind_name(InlineKind k) {
    switch (k) {
    case InlineKind::kUuencode: return "uuencode";
    case InlineKind::kYenc: return "yenc";
    case InlineKind::kBinHex: return "binhex";
    }
    return "unknown";
}

// sanitise_filename - last path component, printable ASCII, bounded.
std::string sanitise_filename(std::string_view raw, std::string_view fallback) {
    std::size_t slash = raw.find_last_of("/\\:");
    if (slash != std::string_view::npos) raw.remove_prefix(slash + 1);
    while (!raw.empty() && (raw.front() == ' ' || raw.front() == '\t' || raw.front() == '"'))
        raw.remove_prefix(1);
    raw = rtrim(raw);
    while (!raw.empty() && raw.back() == '"') raw.remove_suffix(1);
    std::string out;
    for (char ch : raw.substr(0, 128)) {
        auto c = static_cast<unsigned char>(ch);
        out += (c > 32 && c < 127) ? ch : '_';
    }
    if (out.empty() || out == "." || out == "..") return std::string(fallback);
    return out;
}

// InlineExtractor - set the bounds and the callback.
InlineExtractor::InlineExtractor(std::uint64_t max_bytes, unsigned max_blocks, Callback done)
    : max_bytes_(max_bytes), max_blocks_(max_blocks), done_(std::move(done)) {}

// feed - split into lines (bounded pieces) and hand them on.
void InlineExtractor::feed(std::string_view chunk) {
    while (!chunk.empty()) {
        std::size_t nl = chunk.find('\n');
        std::string_view part = chunk.substr(0, nl);
        std::size_t room = kMaxLine - line_.size();
        if (part.size() >= room) {
            // An overlong line: hand on a full piece, the rest follows.
            line_.append(part.substr(0, room));
            line(line_, line_continued_);
            line_.clear();
            line_continued_ = true;
            chunk.remove_prefix(room);
            continue;
        }
        line_.append(part);
        if (nl == std::string_view::npos) return;
        line(line_, line_continued_);
        line_.clear();
        line_continued_ = false;
        yenc_escape_ = false;
        chunk.remove_prefix(nl + 1);
    }
}

// finish - the last unterminated line, then close any open block.
void InlineExtractor::finish() {
    if (!line_.empty()) line(line_, line_continued_);
    line_.clear();
    line_continued_ = false;
    if (state_ != State::kText && state_ != State::kBinHexWait) close();
    state_ = State::kText;
}

// line - one line (or a piece of an overlong one) in the current state.
void InlineExtractor::line(std::string_view l, bool continued) {
    switch (state_) {
    case State::kText:
        if (!continued) text_line(l);
        return;
    case State::kUu:
        if (!continued) uu_line(l);
        return;
    case State::kYenc:
        if (!continued) {
            if (starts_with(l, "=yend")) {
                close();
                return;
            }
            if (starts_with(l, "=ybegin")) {
                close();
                text_line(l);
                return;
            }
            if (starts_with(l, "=ypart")) return;
        }
        yenc_bytes(l);
        return;
    case State::kBinHexWait: {
        if (continued) return;
        std::string_view t = l;
        while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
        if (!t.empty() && t.front() == ':') {
            if (start(InlineKind::kBinHex, {})) {
                state_ = State::kBinHex;
                binhex_chars(t.substr(1));
            } else {
                state_ = State::kText;
            }
            return;
        }
        if (++binhex_wait_ > kBinHexWaitLines) {
            state_ = State::kText;
            text_line(l);
        }
        return;
    }
    case State::kBinHex:
        binhex_chars(l);
        return;
    }
}

// text_line - look for the start of a block.
void InlineExtractor::text_line(std::string_view l) {
    std::string_view t = rtrim(l);
    std::string_view name;
    if (uu_begin(t, name)) {
        if (start(InlineKind::kUuencode, name)) state_ = State::kUu;
    } else if (starts_with(t, "=ybegin ")) {
        std::size_t at = t.find(" name=");
        name = at == std::string_view::npos ? std::string_view() : t.substr(at + 6);
        if (start(InlineKind::kYenc, name)) state_ = State::kYenc;
    } else if (t.find("(This file must be converted with BinHex") != std::string_view::npos) {
        state_ = State::kBinHexWait;
        binhex_wait_ = 0;
    }
}

// start - open a block unless max_blocks are done; false if refused.
bool InlineExtractor::start(InlineKind k, std::string_view name) {
    if (blocks_ >= max_blocks_) {
        ++skipped_;
        return false;
    }
    ++blocks_;
    cur_ = InlineBlock{};
    cur_.kind = k;
    static constexpr std::string_view kFallback[] = {"uuencoded.bin", "yenc.bin", "binhex.bin"};
    cur_.name = sanitise_filename(name, kFallback[static_cast<int>(k)]);
    yenc_escape_ = false;
    bits_ = 0;
    nbits_ = 0;
    rle_marker_ = have_last_ = false;
    last_ = 0;
    bh_header_.clear();
    bh_need_ = 0;
    bh_in_data_ = bh_done_ = false;
    bh_data_left_ = 0;
    return true;
}

// uu_line - one uuencoded line: length character, then 4 chars per 3 bytes.
void InlineExtractor::uu_line(std::string_view l) {
    std::string_view t = rtrim(l);
    if (t == "end") {
        close();
        return;
    }
    auto c0 = t.empty() ? 0 : static_cast<unsigned char>(t[0]);
    if (c0 < 32 || c0 > 96) {
        // Not uuencode any more (a missing "end"): the block is over and
        // the line is text again, maybe the next block's header.
        close();
        text_line(l);
        return;
    }
    unsigned n = (c0 - 32u) & 63u;
    if (n == 0) {
        close(); // the zero-length line before "end"
        return;
    }
    // value - the 6-bit value at pos; a short line reads as zero bits.
    auto value = [&l](std::size_t pos) -> unsigned {
        return pos < l.size() ? (static_cast<unsigned char>(l[pos]) - 32u) & 63u : 0u;
    };
    for (unsigned done = 0, pos = 1; done < n; done += 3, pos += 4) {
        unsigned v0 = value(pos), v1 = value(pos + 1), v2 = value(pos + 2), v3 = value(pos + 3);
        unsigned char b[3] = {static_cast<unsigned char>((v0 << 2) | (v1 >> 4)),
                              static_cast<unsigned char>(((v1 << 4) | (v2 >> 2)) & 0xff),
                              static_cast<unsigned char>(((v2 << 6) | v3) & 0xff)};
        for (unsigned k = 0; k < 3 && done + k < n; ++k) emit(b[k]);
    }
}

// yenc_bytes - decode yEnc data: byte - 42, after "=" a further - 64.
void InlineExtractor::yenc_bytes(std::string_view l) {
    for (char ch : l) {
        auto c = static_cast<unsigned char>(ch);
        if (yenc_escape_) {
            yenc_escape_ = false;
            emit(static_cast<unsigned char>(c - 64 - 42));
        } else if (c == '=') {
            yenc_escape_ = true;
        } else if (c != '\r' && c != '\n') {
            emit(static_cast<unsigned char>(c - 42));
        }
    }
}

// binhex_chars - 6-bit characters up to the closing ':'.
void InlineExtractor::binhex_chars(std::string_view l) {
    const auto& table = binhex_table();
    for (char ch : l) {
        auto c = static_cast<unsigned char>(ch);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        int v = table[c];
        if (v < 0) {
            close(); // ':' ends the block; anything else breaks it off
            return;
        }
        bits_ = ((bits_ << 6) | static_cast<unsigned>(v)) & 0xffffu;
        nbits_ += 6;
        if (nbits_ >= 8) {
            nbits_ -= 8;
            binhex_byte(static_cast<unsigned char>((bits_ >> nbits_) & 0xffu));
        }
    }
}

// binhex_byte - undo the run-length code: 0x90 n repeats the last byte.
void InlineExtractor::binhex_byte(unsigned char b) {
    if (rle_marker_) {
        rle_marker_ = false;
        if (b == 0) {
            binhex_out(0x90, 1);
            last_ = 0x90;
            have_last_ = true;
        } else if (have_last_ && b > 1) {
            binhex_out(last_, b - 1u);
        }
        return;
    }
    if (b == 0x90) {
        rle_marker_ = true;
        return;
    }
    binhex_out(b, 1);
    last_ = b;
    have_last_ = true;
}

// binhex_out - expanded bytes: header first, then the data fork.
void InlineExtractor::binhex_out(unsigned char b, std::uint64_t count) {
    while (count > 0 && !bh_in_data_) {
        bh_header_ += static_cast<char>(b);
        --count;
        if (bh_header_.size() == 1) {
            // name length, name, version, type 4, creator 4, flags 2,
            // data length 4, resource length 4, header CRC 2.
            bh_need_ = 1u + static_cast<unsigned char>(bh_header_[0]) + 1u + 4 + 4 + 2 + 4 + 4 + 2;
        }
        if (bh_header_.size() == bh_need_) {
            std::size_t n = static_cast<unsigned char>(bh_header_[0]);
            cur_.name = sanitise_filename(std::string_view(bh_header_).substr(1, n), "binhex.bin");
            std::size_t at = 1 + n + 1 + 4 + 4 + 2;
            std::uint64_t len = 0;
            for (std::size_t i = 0; i < 4; ++i)
                len = (len << 8) | static_cast<unsigned char>(bh_header_[at + i]);
            bh_in_data_ = true;
            bh_data_left_ = len;
            bh_done_ = len == 0;
        }
    }
    if (count == 0 || bh_done_) return;
    std::uint64_t take = std::min(count, bh_data_left_);
    emit(b, take);
    bh_data_left_ -= take;
    if (bh_data_left_ == 0) bh_done_ = true;
}

// emit - count decoded bytes, keep them up to max_bytes.
void InlineExtractor::emit(unsigned char b, std::uint64_t count) {
    cur_.size += count;
    std::uint64_t room = max_bytes_ > cur_.data.size() ? max_bytes_ - cur_.data.size() : 0;
    std::uint64_t keep = std::min(count, room);
    if (keep > 0) cur_.data.append(static_cast<std::size_t>(keep), static_cast<char>(b));
}

// close - report the block if it gave any bytes; back to text.
void InlineExtractor::close() {
    if (cur_.size > 0 && done_) done_(std::move(cur_));
    cur_ = InlineBlock{};
    state_ = State::kText;
}

} // namespace icapm
