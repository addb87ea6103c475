// NAME
//   walker.cpp - parse a spooled message with GMime and list its leaves
// SUMMARY
//   The spool is handed to GMime as a persistent stream (a dup of the
//   spool's fd, or a memory copy of a small in-memory spool), so part
//   content stays where it is. The tree is walked depth first in MIME
//   order; every leaf is decoded in 64 KiB chunks through GMime's basic
//   filter into its own Spool while its size and SHA-256 are computed.
//   Part ids follow IMAP (RFC 3501): the body of a single-part message at
//   P is "P.1", the children of a multipart at P are "P.1", "P.2", ...,
//   with P empty at the top.
//   A message/rfc822 part that GMime left as a leaf because it carries a
//   base64 or quoted-printable transfer encoding is decoded and parsed
//   again, so what it contains is walked too. A multipart in which GMime
//   found no part at all (no or wrong boundary) becomes an item holding
//   its prologue and epilogue, which is where its body ended up.
//   The preamble and epilogue of every multipart that hold more than
//   whitespace are items of their own, named after the prefix its
//   children are numbered below: "preamble" and "epilogue" at the top,
//   "P.preamble", "P.epilogue" for a multipart whose children are P.n.
//   Text items (text/* leaves, leaves whose first bytes hold no NUL,
//   preambles and epilogues) are searched for uuencode, yEnc and BinHex
//   blocks (inline_encodings.cpp); each decoded block becomes an item
//   right after its text ("P.u1", "P.y2", "P.b3"), at most
//   kMaxInlineBlocks per text, each counting towards max_parts. Past
//   that bound the message is flagged ambiguous, so the raw message is
//   scanned as part "0" too.
//   Encryption is believed only when the bytes show it (encryption.cpp):
//   in a genuine PGP/MIME multipart/encrypted only the OpenPGP message
//   part is unscannable, and an application/pkcs7-mime part only when it
//   is CMS envelopedData; any other child of such a wrapper, or a
//   wrapper that fails the checks, is walked and scanned like any part.
//   Opaque signedData is scanned as it is, and its content is walked.
//   Hostile input: GMime itself stops nesting at a few hundred levels,
//   but builds an object of about 2 KB per MIME delimiter line and one
//   of about 450 bytes per header line, so 10 MB of bare "--b" or "X: y"
//   lines would cost gigabytes. A cheap line census bounds both before
//   GMime is called; then depth and part count are checked while
//   walking. Whenever a limit is hit the walk stops and the whole raw
//   message becomes one more item (part "0"), so the scanner still sees
//   every byte. GMime's critical parser warnings (conflicting headers,
//   invalid header lines, ...) mean a mail client may see other parts
//   than GMime did: the walk goes on, and the raw message is added as
//   part "0" too, for the scanner's own MIME parser to judge.
//   Known cost: GMime keeps multipart prologues and epilogues in memory
//   (and the top-level ones are copied into WalkResult), so a message
//   that is mostly prologue or epilogue costs about twice its size.
// DIAGNOSTICS
//   std::runtime_error when GMime cannot parse the message at all;
//   std::system_error (with errno) for temp file and stream I/O errors.
//   Limits never throw: they set limit_hit and limit_reason.
// CONCURRENCY
//   Each call owns its parser, streams and objects; GMime's globals are
//   only read after mime_init(). Different messages may be walked on
//   different threads. One spool must not be walked by two threads at
//   once: GMime's fs stream seeks the file offset that dup() shares.
#include "icap-milter/mime/walker.hpp"

#include "icap-milter/common/sha256.hpp"
#include "icap-milter/mime/encryption.hpp"
#include "icap-milter/mime/gobject_ptr.hpp"
#include "icap-milter/mime/inline_encodings.hpp"

#include <gmime/gmime.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <strings.h>
#include <system_error>

namespace icapm {

namespace {

constexpr std::size_t kChunk = 64 * 1024;

// A message is refused to GMime (and scanned whole) when it has more
// than this many candidate part starts per allowed part: each costs
// GMime an object, and 4x leaves room for text lines that merely start
// with "--" (signatures, SQL comments, CSS variables).
constexpr std::uint64_t kCensusFactor = 4;
constexpr std::uint64_t kCensusSlack = 64;
// Likewise each header field costs GMime about 450 bytes, so a 30 MB
// block of "X: y" lines would take 2.5 GB and 20 s. Real mail has a few
// dozen headers per part; 50 per part also leaves room for body lines
// that look like headers ("Note: ...", URLs).
constexpr std::uint64_t kHeaderFactor = 50;
constexpr std::uint64_t kHeaderSlack = 1000;
// Inline-encoded blocks decoded per text item; more make the message
// ambiguous (the raw message is scanned too) instead of more items.
constexpr unsigned kMaxInlineBlocks = 16;

// blank - nothing but whitespace (or nothing at all)?
bool blank(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
    });
}

// lower - ASCII lower-case copy (MIME tokens are case-insensitive ASCII).
std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// trim - drop surrounding blanks.
std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

// child_id - the MIME path of child n (1-based) below prefix.
std::string child_id(const std::string& prefix, int n) {
    return prefix.empty() ? std::to_string(n) : prefix + "." + std::to_string(n);
}

// str - a possibly null C string as a string.
std::string str(const char* s) { return s ? std::string(s) : std::string(); }

// mime_type - "type/subtype" in lower case.
std::string mime_type(GMimeObject* o) {
    GMimeContentType* ct = g_mime_object_get_content_type(o);
    const char* type = ct ? g_mime_content_type_get_media_type(ct) : nullptr;
    const char* sub = ct ? g_mime_content_type_get_media_subtype(ct) : nullptr;
    return lower(type ? type : "application") + "/" + lower(sub ? sub : "octet-stream");
}

// content_type_param - a Content-Type parameter, lower case ("" if absent).
std::string content_type_param(GMimeObject* o, const char* name) {
    return lower(trim(str(g_mime_object_get_content_type_parameter(o, name))));
}

// filename - Content-Disposition filename, else Content-Type name.
std::string filename(GMimeObject* o) {
    const char* f = g_mime_object_get_content_disposition_parameter(o, "filename");
    if (!f || !*f) f = g_mime_object_get_content_type_parameter(o, "name");
    return str(f);
}

// lenient_encoding - what a forgiving mail client makes of a
// Content-Transfer-Encoding that GMime did not recognise ("base64;",
// "\"base64\"", "base64(x)"): decoding what such a client would decode
// keeps the scanner from seeing only the harmless-looking encoded text.
GMimeContentEncoding lenient_encoding(GMimeObject* o) {
    const char* raw = g_mime_object_get_header(o, "Content-Transfer-Encoding");
    if (!raw) return GMIME_CONTENT_ENCODING_DEFAULT;
    std::string clean;
    int comment = 0;
    for (const char* p = raw; *p && p - raw < 256; ++p) {
        if (*p == '(')
            ++comment;
        else if (*p == ')')
            comment -= comment > 0;
        else if (comment == 0 && *p != '"')
            clean += *p;
    }
    std::string_view v = trim(clean);
    std::string token = lower(v.substr(0, v.find_first_of(" \t;,")));
    if (token.empty()) return GMIME_CONTENT_ENCODING_DEFAULT;
    return g_mime_content_encoding_from_string(token.c_str());
}

// effective_encoding - GMime's reading of the encoding, else the lenient one.
GMimeContentEncoding effective_encoding(GMimeObject* o) {
    GMimeContentEncoding e = GMIME_IS_PART(o) ? g_mime_part_get_content_encoding(GMIME_PART(o))
                                              : GMIME_CONTENT_ENCODING_DEFAULT;
    return e != GMIME_CONTENT_ENCODING_DEFAULT ? e : lenient_encoding(o);
}

// transfer_encoding - the part's Content-Transfer-Encoding, normalised.
std::string transfer_encoding(GMimeObject* o) {
    GMimeContentEncoding e = effective_encoding(o);
    if (e != GMIME_CONTENT_ENCODING_DEFAULT) {
        if (const char* s = g_mime_content_encoding_to_string(e)) return lower(s);
    }
    // Unknown tokens are kept (bounded) for the log; absent means 7bit
    // (RFC 2045 section 6.1).
    const char* raw = g_mime_object_get_header(o, "Content-Transfer-Encoding");
    if (!raw) return "7bit";
    return lower(trim(std::string_view(raw).substr(0, 64)));
}

// disposition - "attachment", "inline", another token or "".
std::string disposition(GMimeObject* o) {
    return lower(trim(str(g_mime_object_get_disposition(o))));
}

// is_message_type - content types that carry a whole message.
bool is_message_type(const std::string& type) {
    return type == "message/rfc822" || type == "message/global" || type == "message/news";
}

// size_reason - the text for an item over the scan size limit.
std::string size_reason(std::uint64_t size, std::uint64_t max) {
    return "size limit (" + std::to_string(size) + " > " + std::to_string(max) + " bytes)";
}

// OptionsFree - release parser options.
struct OptionsFree {
    void operator()(GMimeParserOptions* p) const noexcept { g_mime_parser_options_free(p); }
};
using OptionsPtr = std::unique_ptr<GMimeParserOptions, OptionsFree>;

// warning_name - a GMime parser warning in words.
const char* warning_name(GMimeParserWarning w) {
    switch (w) {
    case GMIME_WARN_DUPLICATED_HEADER: return "duplicated header";
    case GMIME_WARN_DUPLICATED_PARAMETER: return "duplicated parameter";
    case GMIME_WARN_UNENCODED_8BIT_HEADER: return "unencoded 8-bit header";
    case GMIME_WARN_INVALID_CONTENT_TYPE: return "invalid Content-Type";
    case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE: return "invalid RFC 2047 header value";
    case GMIME_WARN_MALFORMED_MULTIPART: return "multipart without parts";
    case GMIME_WARN_TRUNCATED_MESSAGE: return "truncated message";
    case GMIME_WARN_MALFORMED_MESSAGE: return "malformed message";
    case GMIME_CRIT_INVALID_HEADER_NAME: return "invalid header line";
    case GMIME_CRIT_CONFLICTING_HEADER: return "conflicting header";
    case GMIME_CRIT_CONFLICTING_PARAMETER: return "conflicting parameter";
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY: return "multipart without boundary";
    case GMIME_WARN_INVALID_PARAMETER: return "invalid parameter";
    case GMIME_WARN_INVALID_ADDRESS_LIST: return "invalid address list";
    case GMIME_CRIT_NESTING_OVERFLOW: return "nesting overflow";
    case GMIME_WARN_PART_WITHOUT_CONTENT: return "part without content";
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT: return "part without headers or content";
    }
    return "unknown parser warning";
}

// is_critical - GMime's own verdict that other software may read the
// message differently (the GMIME_CRIT_* codes).
bool is_critical(GMimeParserWarning w) {
    return w == GMIME_CRIT_INVALID_HEADER_NAME || w == GMIME_CRIT_CONFLICTING_HEADER ||
           w == GMIME_CRIT_CONFLICTING_PARAMETER || w == GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY ||
           w == GMIME_CRIT_NESTING_OVERFLOW || w == GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT;
}

// printable - a short, log-safe copy of hostile text.
std::string printable(const char* s, std::size_t max = 64) {
    std::string out;
    for (; s && *s && out.size() < max; ++s) {
        auto c = static_cast<unsigned char>(*s);
        out += (c >= 32 && c < 127) ? static_cast<char>(c) : '?';
    }
    return out;
}

// open_stream - a GMime stream over the spool's content.
GObjectPtr<GMimeStream> open_stream(const Spool& spool) {
    if (!spool.on_disk()) {
        std::string_view m = spool.memory();
        GMimeStream* s = m.empty() ? g_mime_stream_mem_new()
                                   : g_mime_stream_mem_new_with_buffer(m.data(), m.size());
        if (!s) throw std::runtime_error("mime: cannot create memory stream");
        return adopt(s);
    }
    UniqueFd fd(::fcntl(spool.fd(), F_DUPFD_CLOEXEC, 0));
    if (!fd) throw std::system_error(errno, std::generic_category(), "mime: dup spool fd");
    // Explicit bounds: the shared offset may have been moved by anyone.
    GMimeStream* s = g_mime_stream_fs_new_with_bounds(fd.get(), 0, static_cast<gint64>(spool.size()));
    if (!s) throw std::runtime_error("mime: cannot create file stream");
    fd.release(); // the stream owns (and closes) the dup now
    return adopt(s);
}

// Census - counts of lines that each make GMime allocate an object.
struct Census {
    std::uint64_t delimiters = 0;    // lines beginning with "--"
    std::uint64_t content_types = 0; // lines beginning with "Content-Type"
    std::uint64_t headers = 0;       // lines shaped like "Name:" or "Name :"
};

// LineCensus - classifies lines by how they start, chunk by chunk: two
// memchr() calls per line, byte loops only over header names.
class LineCensus {
public:
    // feed - the next bytes of the message.
    void feed(const char* p, const char* end) {
        while (p < end) {
            const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
            segment(p, nl ? nl : end, nl != nullptr);
            if (!nl) return;
            end_line();
            p = nl + 1;
        }
    }
    // finish - the counts, including an unterminated last line.
    Census finish() {
        if (len_ > 0) end_line();
        return c_;
    }

private:
    enum State { kName, kBlank, kHeader, kNo };

    // segment - part of one line; line_ends when a newline follows it.
    void segment(const char* p, const char* e, bool line_ends) {
        std::size_t n = static_cast<std::size_t>(e - p);
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
    void step(char ch) {
        auto c = static_cast<unsigned char>(ch);
        bool blank = c == ' ' || c == '\t';
        if (state_ == kName && c > 32 && c < 127 && ++name_len_ <= 998) return;
        if (blank && name_len_ > 0) {
            state_ = kBlank; // GMime also accepts "Name :"
            return;
        }
        state_ = kNo;
    }
    // end_line - count the finished line and start the next.
    void end_line() {
        if (hlen_ >= 2 && head_[0] == '-' && head_[1] == '-')
            ++c_.delimiters;
        else if (hlen_ == sizeof head_ && (head_[0] | 0x20) == 'c' &&
                 ::strncasecmp(head_, "content-type", sizeof head_) == 0)
            ++c_.content_types;
        if (state_ == kHeader) ++c_.headers;
        hlen_ = len_ = name_len_ = 0;
        state_ = kName;
    }

    Census c_;
    char head_[12] = {};
    std::size_t hlen_ = 0;
    std::uint64_t len_ = 0;
    std::size_t name_len_ = 0;
    State state_ = kName;
};

// take_census - one pass over the raw message.
Census take_census(const Spool& spool, std::vector<char>& buf) {
    LineCensus lc;
    auto src = spool.reader();
    for (std::size_t n; (n = src->read(buf)) > 0;) lc.feed(buf.data(), buf.data() + n);
    return lc.finish();
}

// Decoded - what decoding one leaf produced.
struct Decoded {
    std::uint64_t size = 0;
    Digest sha256{};
    std::shared_ptr<Spool> data; // null when not kept
};

// Walker - state of one walk: limits, counters, the result being built.
class Walker {
public:
    Walker(const WalkLimits& limits, WalkResult& result)
        : lim_(limits), res_(result), buf_(kChunk) {}

    // message - parse a raw message and walk its body at depth.
    bool message(const Spool& raw, const std::string& prefix, unsigned depth, bool top);
    // whole_message - append the part "0" item covering the raw message.
    void whole_message(const Spool& raw);
    // warn - note one GMime parser warning (called back during parsing).
    void warn(GMimeParserWarning code, const char* item);

private:
    void body(GMimeObject* body, const std::string& prefix, unsigned depth);
    void object(GMimeObject* o, const std::string& id, unsigned depth);
    void children(GMimeMultipart* mp, const std::string& id, const std::string& prefix,
                  unsigned depth);
    void leaf(GMimeObject* o, const std::string& id, unsigned depth);
    bool smime(ScanItem& it, Decoded& d, const std::string& id, unsigned depth);
    void boundless(GMimeMultipart* mp, const std::string& id);
    void encoded_message(GMimeObject* o, const std::string& id, unsigned depth);
    void inner_entity(const std::string& bytes, const std::string& id, unsigned depth);
    bool pgp_mime(GMimeMultipart* mp, Decoded& cipher);
    void pgp_ciphertext(GMimeObject* o, const std::string& id, const Decoded& d);
    void empty_item(GMimeObject* o, const std::string& id);
    void outside_text(const char* text, const std::string& id, const char* name);
    void inline_blocks(const Spool& data, const std::string& id, bool text);
    ScanItem describe(GMimeObject* o, const std::string& id, const std::string& type) const;
    // Observer - sees each decoded chunk; returning false stops decoding.
    using Observer = std::function<bool(std::string_view)>;
    bool decode_into(GMimePart* part, Sha256& hash, std::uint64_t& size, Spool* out,
                     std::uint64_t keep_max, const Observer& observe = {});
    Decoded decode(GMimePart* part, bool keep, std::uint64_t keep_max);
    std::shared_ptr<Spool> new_spool();
    void push(ScanItem item);
    void note(std::string text);
    bool count_part();
    bool depth_ok(unsigned depth);
    void hit(std::string reason);

    const WalkLimits& lim_;
    WalkResult& res_;
    std::vector<char> buf_;
    bool stopped_ = false;
    std::uint64_t parts_ = 0;
    std::uint64_t mem_used_ = 0; // RAM held by spools of finished items
    std::uint64_t warnings_ = 0;
    std::uint64_t critical_ = 0; // critical warnings so far
};

// on_warning - GMime's warning callback; user_data is the Walker.
void on_warning(gint64, GMimeParserWarning code, const gchar* item, gpointer user_data) {
    static_cast<Walker*>(user_data)->warn(code, item);
}

// warn - keep the first few warnings (a hostile message can raise one per
// line) and flag the ambiguous ones.
void Walker::warn(GMimeParserWarning code, const char* item) {
    if (is_critical(code)) {
        res_.ambiguous = true;
        ++critical_;
    }
    std::string w = warning_name(code);
    if (item && *item) w += " (" + printable(item) + ")";
    note(std::move(w));
}

// note - keep the first few notes for the log (a hostile message can
// raise one per line), then only count them.
void Walker::note(std::string text) {
    constexpr std::uint64_t kKept = 16;
    ++warnings_;
    if (warnings_ <= kKept)
        res_.warnings.push_back(std::move(text));
    else if (warnings_ == kKept + 1)
        res_.warnings.push_back("more warnings not shown");
}

// hit - record the first limit and stop walking.
void Walker::hit(std::string reason) {
    if (stopped_) return;
    stopped_ = true;
    res_.limit_hit = true;
    res_.limit_reason = std::move(reason);
}

// count_part - count one more object; false once max_parts is passed.
bool Walker::count_part() {
    if (stopped_) return false;
    if (++parts_ > lim_.max_parts) {
        hit("part count limit (more than " + std::to_string(lim_.max_parts) + " parts)");
        return false;
    }
    return true;
}

// depth_ok - may objects live at this nesting depth?
bool Walker::depth_ok(unsigned depth) {
    if (stopped_) return false;
    if (depth > lim_.max_depth) {
        hit("depth limit (more than " + std::to_string(lim_.max_depth) + " levels of nesting)");
        return false;
    }
    return true;
}

// new_spool - a spool for one decoded part, within the message's RAM budget.
std::shared_ptr<Spool> Walker::new_spool() {
    std::uint64_t left = lim_.total_memory_limit > mem_used_ ? lim_.total_memory_limit - mem_used_ : 0;
    std::size_t limit = static_cast<std::size_t>(std::min<std::uint64_t>(lim_.memory_limit, left));
    return std::make_shared<Spool>(lim_.temp_dir, limit);
}

// push - add an item, charging its in-memory bytes to the budget.
void Walker::push(ScanItem item) {
    if (item.data && !item.data->on_disk()) mem_used_ += item.data->size();
    res_.items.push_back(std::move(item));
}

// message - parse raw with GMime and walk the body; false if unparsable.
bool Walker::message(const Spool& raw, const std::string& prefix, unsigned depth, bool top) {
    std::uint64_t room = lim_.max_parts > parts_ ? lim_.max_parts - parts_ : 0;
    Census c = take_census(raw, buf_);
    std::uint64_t budget = kCensusFactor * room + kCensusSlack;
    if (c.delimiters + c.content_types > budget) {
        hit("part count limit (" + std::to_string(c.delimiters) + " boundary and " +
            std::to_string(c.content_types) + " Content-Type lines, too many for " +
            std::to_string(lim_.max_parts) + " parts)");
        return true;
    }
    std::uint64_t header_budget = kHeaderFactor * room + kHeaderSlack;
    if (c.headers > header_budget) {
        hit("header limit (" + std::to_string(c.headers) + " header lines, more than " +
            std::to_string(header_budget) + " for " + std::to_string(lim_.max_parts) + " parts)");
        return true;
    }

    // Declared first so it outlives the objects parsed with it.
    OptionsPtr options(g_mime_parser_options_new());
    g_mime_parser_options_set_warning_callback(options.get(), on_warning, this);
    GObjectPtr<GMimeStream> stream = open_stream(raw);
    GObjectPtr<GMimeParser> parser = adopt(g_mime_parser_new_with_stream(stream.get()));
    g_mime_parser_set_persist_stream(parser.get(), TRUE);
    g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
    GObjectPtr<GMimeMessage> msg = adopt(g_mime_parser_construct_message(parser.get(), options.get()));
    if (!msg) return false;

    GMimeObject* b = g_mime_message_get_mime_part(msg.get());
    if (!b) {
        if (top) hit("no MIME body found");
        return true;
    }
    if (top && GMIME_IS_MULTIPART(b)) {
        res_.preamble = str(g_mime_multipart_get_prologue(GMIME_MULTIPART(b)));
        res_.epilogue = str(g_mime_multipart_get_epilogue(GMIME_MULTIPART(b)));
    }
    body(b, prefix, depth);
    return true;
}

// body - walk a message body: a multipart's children are numbered
// directly below the message, anything else is part 1 of it.
void Walker::body(GMimeObject* b, const std::string& prefix, unsigned depth) {
    if (GMIME_IS_MULTIPART(b)) {
        if (!count_part()) return;
        children(GMIME_MULTIPART(b), child_id(prefix, 1), prefix, depth + 1);
        return;
    }
    object(b, child_id(prefix, 1), depth);
}

// children - walk the parts of multipart id, which live at depth and
// are numbered below prefix.
void Walker::children(GMimeMultipart* mp, const std::string& id, const std::string& prefix,
                      unsigned depth) {
    if (!depth_ok(depth)) return;
    int n = g_mime_multipart_get_count(mp);
    if (n == 0) {
        boundless(mp, id);
        return;
    }
    // Of a genuine PGP/MIME message only the ciphertext (the second
    // part) is left unscanned; of anything else calling itself
    // multipart/encrypted, every part is walked.
    Decoded cipher;
    int cipher_at = -1;
    if (mime_type(GMIME_OBJECT(mp)) == "multipart/encrypted") {
        if (pgp_mime(mp, cipher))
            cipher_at = 1;
        else
            note("multipart/encrypted that is not PGP/MIME: scanned as multipart");
    }
    // Named after the prefix, not id: a multipart and its first child
    // share an id ("1"), their preambles must not.
    std::string outside = prefix.empty() ? std::string() : prefix + ".";
    outside_text(g_mime_multipart_get_prologue(mp), outside + "preamble", "preamble.txt");
    for (int i = 0; i < n && !stopped_; ++i) {
        GMimeObject* child = g_mime_multipart_get_part(mp, i);
        if (!child) continue;
        if (i == cipher_at) {
            if (count_part()) pgp_ciphertext(child, child_id(prefix, i + 1), cipher);
        } else {
            object(child, child_id(prefix, i + 1), depth);
        }
    }
    outside_text(g_mime_multipart_get_epilogue(mp), outside + "epilogue", "epilogue.txt");
}

// pgp_mime - is mp PGP/MIME (RFC 3156)? protocol application/pgp-encrypted,
// exactly two leaves: a control part saying "Version: 1", then an
// application/octet-stream holding one encrypted OpenPGP message. The
// second part's decoded size and hash are left in cipher.
bool Walker::pgp_mime(GMimeMultipart* mp, Decoded& cipher) {
    if (content_type_param(GMIME_OBJECT(mp), "protocol") != "application/pgp-encrypted") return false;
    if (g_mime_multipart_get_count(mp) != 2) return false;
    GMimeObject* control = g_mime_multipart_get_part(mp, 0);
    GMimeObject* data = g_mime_multipart_get_part(mp, 1);
    if (!control || !data || !GMIME_IS_PART(control) || !GMIME_IS_PART(data)) return false;
    if (mime_type(control) != "application/pgp-encrypted" ||
        mime_type(data) != "application/octet-stream")
        return false;
    constexpr std::uint64_t kControlMax = 1024;
    Decoded c = decode(GMIME_PART(control), true, kControlMax);
    if (!c.data || c.data->size() > kControlMax) return false;
    std::string body;
    auto r = c.data->reader();
    for (std::size_t n; (n = r->read(buf_)) > 0;) body.append(buf_.data(), n);
    if (!is_pgp_control_body(body)) return false;
    // One pass: hash the ciphertext while checking it, stop at the first
    // byte that cannot be OpenPGP.
    OpenPgpCheck check;
    Sha256 hash;
    bool complete = decode_into(GMIME_PART(data), hash, cipher.size, nullptr, 0,
                                [&check](std::string_view chunk) { return check.feed(chunk); });
    if (!complete || !check.finish()) return false;
    cipher.sha256 = hash.finish();
    return true;
}

// pgp_ciphertext - the OpenPGP message of a genuine PGP/MIME part: kept
// out of the scan, with its decoded size and hash.
void Walker::pgp_ciphertext(GMimeObject* o, const std::string& id, const Decoded& d) {
    ScanItem it = describe(o, id, mime_type(o));
    it.size = d.size;
    it.sha256 = d.sha256;
    it.scannable = false;
    it.unscannable_reason = "encrypted (PGP/MIME)";
    push(std::move(it));
}

// object - one node of the tree: container, message or leaf.
void Walker::object(GMimeObject* o, const std::string& id, unsigned depth) {
    if (!count_part()) return;
    std::string type = mime_type(o);
    if (GMIME_IS_MULTIPART(o)) {
        children(GMIME_MULTIPART(o), id, id, depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(o)) {
        if (!depth_ok(depth + 1)) return;
        GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
        GMimeObject* b = inner ? g_mime_message_get_mime_part(inner) : nullptr;
        if (b)
            body(b, id, depth + 1);
        else
            empty_item(o, id);
    } else if (GMIME_IS_PART(o)) {
        if (is_message_type(type))
            encoded_message(o, id, depth);
        else
            leaf(o, id, depth);
    }
    // GMime has no other kinds of object; anything new is skipped rather
    // than guessed at.
}

// describe - the descriptive fields of an item.
ScanItem Walker::describe(GMimeObject* o, const std::string& id, const std::string& type) const {
    ScanItem it;
    it.part_id = id;
    it.filename = filename(o);
    it.content_type = type;
    it.transfer_encoding = transfer_encoding(o);
    it.disposition = disposition(o);
    return it;
}

// empty_item - an item with no content (a message part without a message).
void Walker::empty_item(GMimeObject* o, const std::string& id) {
    ScanItem it = describe(o, id, mime_type(o));
    it.sha256 = Sha256().finish();
    it.data = new_spool();
    push(std::move(it));
}

// decode_into - stream-decode a part's content, hashing every byte and
// copying it to out while the total stays within keep_max; observe sees
// every chunk and may stop the decoding (then false is returned).
bool Walker::decode_into(GMimePart* part, Sha256& hash, std::uint64_t& size, Spool* out,
                         std::uint64_t keep_max, const Observer& observe) {
    GMimeDataWrapper* wrapper = g_mime_part_get_content(part);
    GMimeStream* raw = wrapper ? g_mime_data_wrapper_get_stream(wrapper) : nullptr;
    if (!raw) return true; // a part without content decodes to nothing
    if (g_mime_stream_reset(raw) == -1)
        throw std::system_error(errno, std::generic_category(), "mime: rewind part stream");
    GObjectPtr<GMimeStream> filtered = adopt(g_mime_stream_filter_new(raw));
    GMimeContentEncoding enc = effective_encoding(GMIME_OBJECT(part));
    if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
        enc == GMIME_CONTENT_ENCODING_UUENCODE) {
        GObjectPtr<GMimeFilter> f = adopt(g_mime_filter_basic_new(enc, FALSE));
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered.get()), f.get());
    }
    for (bool eof = false; !eof;) {
        // GMime's filter hands out about 3 KiB per read; gather a full
        // buffer so the spool sees one write (and SHA-256 one update)
        // per 64 KiB instead of per 3 KiB.
        std::size_t fill = 0;
        while (fill < buf_.size()) {
            errno = 0;
            ssize_t n = g_mime_stream_read(filtered.get(), buf_.data() + fill, buf_.size() - fill);
            if (n > 0) {
                fill += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && !g_mime_stream_eos(filtered.get()))
                throw std::system_error(errno ? errno : EIO, std::generic_category(),
                                        "mime: read part content");
            eof = true;
            break;
        }
        if (fill == 0) break;
        std::string_view chunk(buf_.data(), fill);
        if (observe && !observe(chunk)) return false;
        hash.update(chunk);
        size += chunk.size();
        if (out) {
            if (size <= keep_max) {
                out->append(chunk);
            } else {
                out->clear(); // over the limit: keep hashing, stop storing
                out = nullptr;
            }
        }
    }
    return true;
}

// decode - decode one part into a fresh spool (if keep) plus size and hash.
Decoded Walker::decode(GMimePart* part, bool keep, std::uint64_t keep_max) {
    Decoded d;
    Sha256 hash;
    if (keep) d.data = new_spool();
    decode_into(part, hash, d.size, d.data.get(), keep_max);
    d.sha256 = hash.finish();
    if (d.size > keep_max) d.data.reset();
    return d;
}

// leaf - one ordinary part: decoded, hashed, kept if it may be scanned.
void Walker::leaf(GMimeObject* o, const std::string& id, unsigned depth) {
    std::string type = mime_type(o);
    ScanItem it = describe(o, id, type);
    Decoded d = decode(GMIME_PART(o), true, lim_.max_scan_size);
    it.size = d.size;
    it.sha256 = d.sha256;
    if (d.size > lim_.max_scan_size) {
        // Too big to check for ciphertext, and too big to scan anyway.
        it.scannable = false;
        it.unscannable_reason = size_reason(d.size, lim_.max_scan_size);
    } else if (is_pkcs7_mime_type(type) && smime(it, d, id, depth)) {
        return;
    } else {
        it.data = std::move(d.data);
    }
    std::shared_ptr<const Spool> data = it.data;
    push(std::move(it));
    if (data) inline_blocks(*data, id, type.compare(0, 5, "text/") == 0);
}

// outside_text - a multipart's preamble or epilogue as an item of its
// own (unless it is only whitespace), searched for inline blocks too.
void Walker::outside_text(const char* text, const std::string& id, const char* name) {
    if (!text || blank(text) || !count_part()) return;
    std::string_view v(text);
    ScanItem it;
    it.part_id = id;
    it.filename = name;
    it.content_type = "text/plain";
    it.transfer_encoding = "7bit";
    it.size = v.size();
    Sha256 hash;
    hash.update(v);
    it.sha256 = hash.finish();
    if (it.size > lim_.max_scan_size) {
        it.scannable = false;
        it.unscannable_reason = size_reason(it.size, lim_.max_scan_size);
        push(std::move(it));
        return;
    }
    std::shared_ptr<Spool> data = new_spool();
    data->append(v);
    it.data = data;
    push(std::move(it));
    inline_blocks(*data, id, true);
}

// inline_blocks - decode the uuencode, yEnc and BinHex blocks in a text
// item's bytes into items of their own below id. Anything but text/*
// is searched only when its first bytes hold no NUL. The hash of a
// block over max_scan_size covers the bytes kept, not all it decodes to.
void Walker::inline_blocks(const Spool& data, const std::string& id, bool text) {
    unsigned n = 0;
    InlineExtractor ex(lim_.max_scan_size, kMaxInlineBlocks, [&](InlineBlock&& b) {
        if (!count_part()) return;
        static constexpr const char* kLetter[] = {"u", "y", "b"};
        ScanItem it;
        it.part_id = id + "." + kLetter[static_cast<int>(b.kind)] + std::to_string(++n);
        it.filename = std::move(b.name);
        it.content_type = "application/octet-stream";
        it.transfer_encoding = std::string("x-") + inline_kind_name(b.kind);
        it.disposition = "attachment";
        it.size = b.size;
        Sha256 hash;
        hash.update(b.data);
        it.sha256 = hash.finish();
        if (b.size > lim_.max_scan_size) {
            it.scannable = false;
            it.unscannable_reason = size_reason(b.size, lim_.max_scan_size);
        } else {
            std::shared_ptr<Spool> s = new_spool();
            s->append(b.data);
            it.data = std::move(s);
        }
        b.data = std::string();
        push(std::move(it));
    });
    auto r = data.reader();
    bool first = true;
    for (std::size_t got; !stopped_ && (got = r->read(buf_)) > 0; first = false) {
        std::string_view chunk(buf_.data(), got);
        if (first && !text && chunk.find('\0') != std::string_view::npos) return;
        ex.feed(chunk);
    }
    if (stopped_) return;
    ex.finish();
    if (ex.skipped() > 0) {
        res_.ambiguous = true;
        note("part " + id + ": " + std::to_string(ex.skipped()) +
             " more inline-encoded blocks than " + std::to_string(kMaxInlineBlocks) +
             ", not decoded: whole message scanned too");
    }
}

// smime - an application/pkcs7-mime leaf, judged by its bytes whatever
// its smime-type says: envelopedData is unscannable, compressedData too
// (the scanner cannot inflate it); signedData is scanned as it is and
// its content walked below it (id.1, ...). True when the item has been
// pushed; false leaves a plain leaf to the caller.
bool Walker::smime(ScanItem& it, Decoded& d, const std::string& id, unsigned depth) {
    std::string der;
    if (d.data) {
        der.reserve(static_cast<std::size_t>(d.data->size()));
        auto r = d.data->reader();
        for (std::size_t n; (n = r->read(buf_)) > 0;) der.append(buf_.data(), n);
    }
    CmsInfo cms = inspect_cms(der);
    der = std::string();
    switch (cms.kind) {
    case CmsKind::kEnveloped:
    case CmsKind::kCompressed:
        it.scannable = false;
        it.unscannable_reason =
            cms.kind == CmsKind::kEnveloped ? "encrypted (S/MIME)" : "compressed (S/MIME)";
        push(std::move(it));
        return true;
    case CmsKind::kSigned:
        it.data = std::move(d.data);
        push(std::move(it));
        if (cms.has_content && !cms.content.empty()) inner_entity(cms.content, id, depth);
        return true;
    case CmsKind::kNotCms:
        note("application/pkcs7-mime that is not CMS: scanned as a part");
        return false;
    case CmsKind::kOther:
        break;
    }
    return false;
}

// inner_entity - the MIME entity inside opaque signedData, walked like a
// message below id; if GMime makes nothing of it the signedData item,
// already scanned, still covers its bytes.
void Walker::inner_entity(const std::string& bytes, const std::string& id, unsigned depth) {
    if (!depth_ok(depth + 1)) return;
    std::shared_ptr<Spool> s = new_spool();
    s->append(bytes);
    std::uint64_t held = s->on_disk() ? 0 : s->size();
    mem_used_ += held;
    message(*s, id, depth + 1, false);
    mem_used_ -= held;
}

// boundless - a multipart in which GMime found no part (no boundary
// parameter, or a boundary that never occurs): its whole body ended up
// as prologue and epilogue, so those become the item, or the bytes would
// reach no scanner.
void Walker::boundless(GMimeMultipart* mp, const std::string& id) {
    GMimeObject* o = GMIME_OBJECT(mp);
    ScanItem it = describe(o, id, mime_type(o));
    std::shared_ptr<Spool> data = new_spool();
    Sha256 hash;
    for (const char* text : {g_mime_multipart_get_prologue(mp), g_mime_multipart_get_epilogue(mp)}) {
        if (!text) continue;
        std::string_view v(text);
        hash.update(v);
        it.size += v.size();
        if (it.size <= lim_.max_scan_size) data->append(v);
    }
    it.sha256 = hash.finish();
    if (it.size > lim_.max_scan_size) {
        it.scannable = false;
        it.unscannable_reason = size_reason(it.size, lim_.max_scan_size);
        data.reset();
    } else {
        it.data = data;
    }
    push(std::move(it));
    // Its text is searched for inline blocks like any text part.
    if (data) inline_blocks(*data, id, true);
}

// encoded_message - a message/rfc822 with base64 or quoted-printable
// transfer encoding: GMime leaves it opaque, so decode it and walk the
// message inside; if that cannot be parsed (or only with critical
// warnings), the decoded bytes are also scanned as a leaf.
void Walker::encoded_message(GMimeObject* o, const std::string& id, unsigned depth) {
    if (!depth_ok(depth + 1)) return;
    Decoded d = decode(GMIME_PART(o), true, std::numeric_limits<std::uint64_t>::max());
    // The temporary copy may hold RAM while the inner parts are walked.
    std::uint64_t held = d.data->on_disk() ? 0 : d.data->size();
    std::uint64_t critical_before = critical_;
    mem_used_ += held;
    bool parsed = d.size > 0 && message(*d.data, id, depth + 1, false);
    mem_used_ -= held;
    // If GMime had to guess (say the "message" is really an executable
    // whose bytes it read as bad headers and dropped), the decoded bytes
    // are scanned as they are as well.
    if (parsed && (critical_ == critical_before || stopped_)) return;

    ScanItem it = describe(o, id, mime_type(o));
    it.size = d.size;
    it.sha256 = d.sha256;
    if (d.size > lim_.max_scan_size) {
        it.scannable = false;
        it.unscannable_reason = size_reason(d.size, lim_.max_scan_size);
    } else {
        it.data = std::move(d.data);
    }
    push(std::move(it));
}

// whole_message - the fallback item: the raw message, copied and hashed.
void Walker::whole_message(const Spool& raw) {
    ScanItem it;
    it.part_id = "0";
    it.filename = "message.eml";
    it.content_type = "message/rfc822";
    it.transfer_encoding = "binary";
    bool keep = raw.size() <= lim_.max_scan_size;
    // Charged to nobody: this copy replaces the parts that were not made.
    auto copy = keep ? std::make_shared<Spool>(lim_.temp_dir, lim_.memory_limit) : nullptr;
    Sha256 hash;
    auto src = raw.reader();
    for (std::size_t n; (n = src->read(buf_)) > 0;) {
        std::string_view chunk(buf_.data(), n);
        hash.update(chunk);
        if (copy) copy->append(chunk);
    }
    it.size = raw.size();
    it.sha256 = hash.finish();
    if (keep) {
        it.data = std::move(copy);
    } else {
        it.scannable = false;
        it.unscannable_reason = size_reason(raw.size(), lim_.max_scan_size);
    }
    res_.items.push_back(std::move(it));
}

} // namespace

// mime_init - g_mime_init() exactly once, whichever thread gets here first.
void mime_init() {
    static std::once_flag once;
    std::call_once(once, [] { g_mime_init(); });
}

// walk_message - parse, walk, and fall back to the whole message on limits.
WalkResult walk_message(const Spool& message, const WalkLimits& limits) {
    mime_init();
    WalkResult result;
    Walker w(limits, result);
    if (!w.message(message, "", 0, true))
        throw std::runtime_error("mime: message cannot be parsed");
    if (result.limit_hit) {
        w.whole_message(message);
    } else if (result.ambiguous) {
        // The parts were scanned; the raw copy is a second opinion only,
        // so a message too big for it must not turn into "unscanned".
        if (message.size() <= limits.max_scan_size)
            w.whole_message(message);
        else
            result.warnings.push_back("too large for a whole-message rescan");
    }
    return result;
}

} // namespace icapm
